"""A module that takes 60 s to import: a zygote preloading it is still starting when a run
is cancelled (tests/training/test_local_executor.py)."""

import time

time.sleep(60)
