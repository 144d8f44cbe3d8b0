"""A scikit-learn step that waits on every call: the planted defect of the infra gate's test
(tests/training/test_infra_gate_server.py).

It stands for a transform that blocks per request (a remote feature lookup, a model far too
big for its latency budget) while the model behind it is sound, so only the latency budget
may refuse it. A wait, not a busy loop: a sleep is never shorter than asked, however fast or
loaded the machine, so the candidate is slower than its budget on every run. skops saves it
as a type of its own: a server loads it only when its operator names this module in
``AIWARDEN_TRUSTED_MODULES`` and the type in ``AIWARDEN_SKOPS_TRUSTED``.
"""

from __future__ import annotations

import time
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin


class PerCallWait(TransformerMixin, BaseEstimator):
    """Passes its rows through unchanged, ``seconds`` after it was called; only on calls of
    more than ``above_rows`` rows when that is set (a model fine on the infra gate's batch
    of 200 and its single rows that hangs on the whole holdout)."""

    def __init__(self, seconds: float = 1.0, above_rows: int = 0) -> None:
        self.seconds = seconds
        self.above_rows = above_rows

    def fit(self, x: Any, y: Any = None) -> PerCallWait:
        return self

    def fit_transform(self, x: Any, y: Any = None, **fit_params: Any) -> Any:
        """Training does not wait: the wait stands for serving (a lookup per request)."""
        return x

    def transform(self, x: Any) -> Any:
        if len(x) > self.above_rows:
            time.sleep(self.seconds)
        return x
