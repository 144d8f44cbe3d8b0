"""Columns with known shapes for measuring the drift rule: light, heavy-tailed and discrete.

Each column is drawn by a sampler ``(rng, n, shift)`` whose ``shift`` moves the column's
mean by that many of its true standard deviations, in a way that keeps the column's
nature: continuous columns are translated, counts and few-level integers change their
rate, so they stay whole numbers. ``bench/drift_calibration.py`` and
``tests/engine/test_drift_calibration.py`` score the rule on them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["CALIBRATION_COLUMNS", "calibration_frame"]

Sampler = Callable[[np.random.Generator, int, float], np.ndarray]

_LN_SD = float(np.sqrt((np.exp(1.5**2) - 1) * np.exp(1.5**2)))  # lognormal(0, 1.5)
_LOMAX_A = 2.5
_LOMAX_SD = float(np.sqrt(_LOMAX_A / ((_LOMAX_A - 1) ** 2 * (_LOMAX_A - 2))))
_NB_N, _NB_MEAN = 0.5, 3.0  # negative binomial counts: variance = mean + mean^2 / n
_NB_SD = float(np.sqrt(_NB_MEAN + _NB_MEAN**2 / _NB_N))
_LEVELS_P = 0.3
_LEVELS_SD = float(np.sqrt(3 * _LEVELS_P * (1 - _LEVELS_P)))
_CATEGORIES = np.array(["a", "b", "c", "d", "e"])
_SHARES = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _negbin(r: np.random.Generator, n: int, s: float) -> np.ndarray:
    mean = _NB_MEAN + s * _NB_SD
    return r.negative_binomial(_NB_N, _NB_N / (_NB_N + mean), n).astype(np.float64)


def _category(r: np.random.Generator, n: int, s: float) -> np.ndarray:
    """``s`` here moves that much probability onto 'a', taken from the others in proportion."""
    rest = _SHARES[1:] / _SHARES[1:].sum()
    p = np.concatenate([[_SHARES[0] + s], rest * (1 - _SHARES[0] - s)])
    return r.choice(_CATEGORIES, n, p=p)


CALIBRATION_COLUMNS: dict[str, tuple[str, Sampler]] = {
    # name: (family, sampler)
    "normal": ("light", lambda r, n, s: r.normal(50.0 + 10.0 * s, 10.0, n)),
    "uniform": ("light", lambda r, n, s: r.uniform(-1.0, 1.0, n) + s * 2 / np.sqrt(12)),
    "gamma": ("skewed", lambda r, n, s: r.gamma(2.0, 3.0, n) + s * 3.0 * np.sqrt(2.0)),
    "lognormal": ("skewed", lambda r, n, s: r.lognormal(3.0, 0.7, n)
                  + s * float(np.sqrt((np.exp(0.49) - 1) * np.exp(6.49)))),
    "lognormal_heavy": ("heavy", lambda r, n, s: r.lognormal(0.0, 1.5, n) + s * _LN_SD),
    "pareto": ("heavy", lambda r, n, s: r.pareto(_LOMAX_A, n) + s * _LOMAX_SD),
    "student_t3": ("heavy", lambda r, n, s: r.standard_t(3, n) + s * np.sqrt(3.0)),
    "counts": ("discrete", lambda r, n, s: r.poisson(12.0 + s * np.sqrt(12.0), n)
               .astype(np.float64)),
    "counts_heavy": ("discrete", _negbin),
    "levels": ("discrete", lambda r, n, s: r.binomial(3, _LEVELS_P + s * _LEVELS_SD / 3, n)
               .astype(np.float64)),
    "category": ("categorical", _category),
}


def calibration_frame(n: int, rng: np.random.Generator, mean_shift: float = 0.0,
                      share_shift: float = 0.0) -> pd.DataFrame:
    """``n`` rows of every calibration column; numerical means moved by ``mean_shift`` sd,
    category 'a' given ``share_shift`` more probability."""
    return pd.DataFrame({
        name: sampler(rng, n, share_shift if family == "categorical" else mean_shift)
        for name, (family, sampler) in CALIBRATION_COLUMNS.items()})
