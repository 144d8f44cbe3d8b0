"""Compile shap's numba code before the first black-box explanation needs it.

The first Permutation SHAP call of a process compiles shap's masking code with numba: 18 to
68 s measured on a loaded 2-CPU host, paid by whoever asks first. shap's functions are
``@njit`` without ``cache=True``, so ``NUMBA_CACHE_DIR`` cannot keep them across processes
(measured: no change); the cost can only be moved off the request path. ``warm_up`` does
the same work on a two-row explanation of a tiny linear function; a server runs it in a
thread at start when a model is opted in to scheduled checks (attribution_watch.py).
"""

from __future__ import annotations

import threading
import time

import numpy as np

__all__ = ["warm_up", "warm_up_in_background"]

_done = threading.Event()
_lock = threading.Lock()


class _Line:
    """A model shap can call: predict on a frame or an array (no scikit-learn needed)."""

    def predict(self, x: object) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ np.array([1.0, -2.0, 0.5])


class _Odds(_Line):
    """The same line as a binary classifier: shap compiles the two-output case apart."""

    classes = (0, 1)

    def predict_proba(self, x: object) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.predict(x)))
        return np.column_stack([1 - p, p])


def warm_up() -> float:
    """Compile shap's Permutation path (numba) once per process; seconds it took (0 when
    already done). Needs the explain extra."""
    from aiwarden.explain.rows import explain_rows

    if _done.is_set():
        return 0.0
    with _lock:  # a second caller waits for the first instead of compiling twice
        if _done.is_set():
            return 0.0
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20, 3))
        for model, task in ((_Line(), "regression"), (_Odds(), "classification")):
            explain_rows(model, x[:2], x, method="permutation", background_size=10,
                         max_evals=20, task=task)
        _done.set()
        return time.perf_counter() - start


def warm_up_in_background() -> threading.Thread | None:
    """Start :func:`warm_up` in a daemon thread when shap is installed (else None)."""
    import importlib.util

    if _done.is_set() or importlib.util.find_spec("shap") is None:
        return None
    t = threading.Thread(target=_quiet_warm_up, name="aiwarden-shap-warm-up", daemon=True)
    t.start()
    return t


def _quiet_warm_up() -> None:
    import logging

    try:
        seconds = warm_up()
        logging.getLogger(__name__).info("shap warmed up in %.1f s", seconds)
    except Exception:  # a failure here only means the first request pays the compile
        logging.getLogger(__name__).warning("shap warm-up failed", exc_info=True)
