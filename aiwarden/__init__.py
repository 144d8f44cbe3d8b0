"""aiwarden: keep production models honest.

The pure computation lives in :mod:`aiwarden.engine`; nothing here does work at
import time.
"""

__version__ = "0.1.0"
