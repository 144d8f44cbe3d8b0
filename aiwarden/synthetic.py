"""Seeded synthetic data with known answers, for tests, benchmarks and the demo.

Every generator returns the ground truth beside the data (which columns were
shifted, by how much), so a drift detector can be scored rather than eyeballed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CalibrationScenario", "calibration_reference", "calibration_windows"]

_NUMERICAL = {
    "normal": lambda r, n: r.normal(50.0, 10.0, n),
    "lognormal": lambda r, n: r.lognormal(3.0, 0.7, n),
    "uniform": lambda r, n: r.uniform(-1.0, 1.0, n),
    "counts": lambda r, n: r.poisson(12.0, n).astype(np.float64),
    "skewed": lambda r, n: r.gamma(2.0, 3.0, n),
}
_CATEGORIES = ("a", "b", "c", "d", "e")
_SHARES = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _std(name: str) -> float:
    big = _NUMERICAL[name](np.random.default_rng(12345), 2_000_000)
    return float(big.std())


@dataclass(frozen=True)
class CalibrationScenario:
    """One window: its rows and which columns were shifted."""

    data: pd.DataFrame
    shifted: tuple[str, ...]


def calibration_reference(n: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """Reference rows: five numerical shapes and one five-level categorical (30 % 'a')."""
    rng = np.random.default_rng(seed)
    cols = {name: gen(rng, n) for name, gen in _NUMERICAL.items()}
    cols["category"] = rng.choice(np.array(_CATEGORIES), n, p=_SHARES)
    return pd.DataFrame(cols)


def calibration_windows(
    n_windows: int = 200, rows: int = 10_000, *, mean_shift: float = 0.0,
    share_shift: float = 0.0, seed: int = 1,
) -> Iterator[CalibrationScenario]:
    """Windows from the reference distribution, optionally shifted.

    ``mean_shift`` moves every numerical column's mean by that many standard deviations;
    ``share_shift`` moves that much probability onto category 'a' (30 % -> 40 % for
    0.10), taken from the others in proportion.
    """
    rng = np.random.default_rng(seed)
    stds = {name: _std(name) for name in _NUMERICAL}
    shares = _SHARES.copy()
    if share_shift:
        rest = shares[1:] / shares[1:].sum()
        shares = np.concatenate([[shares[0] + share_shift], rest * (1 - shares[0] - share_shift)])
    shifted = tuple(_NUMERICAL) * bool(mean_shift) + ("category",) * bool(share_shift)
    for _ in range(n_windows):
        cols = {name: gen(rng, rows) + mean_shift * stds[name] for name, gen in _NUMERICAL.items()
                if name != "counts"}
        # Counts stay whole numbers: their mean moves through the Poisson rate instead.
        cols["counts"] = rng.poisson(12.0 + mean_shift * stds["counts"], rows).astype(float)
        cols["category"] = rng.choice(np.array(_CATEGORIES), rows, p=shares)
        yield CalibrationScenario(pd.DataFrame(cols), shifted)
