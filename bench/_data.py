"""Seeded reference / current data for the engine benchmark, with known planted drift.

20 numerical features (normal, lognormal, uniform, Poisson counts) and 5 categorical string
features (cardinalities 3, 10, 50, 200, 1000, Zipf-like shares). Drift is planted in 5
numerical and 2 categorical features; every other column is drawn from exactly the same
distribution in reference and current, so any flag on it is a false alarm.

The frames are also written to Parquet under ``bench/.data/`` so that the peers, which run in
their own virtual environments, read exactly the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORICAL",
    "DATA_DIR",
    "NUMERICAL",
    "PLANTED",
    "load",
    "make_data",
    "parquet_paths",
    "write_parquet",
]

DATA_DIR = Path(__file__).resolve().parent / ".data"
# Bump when the generator changes so stale Parquet files are not reused.
_VERSION = 1

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class _Numeric:
    name: str
    reference: Sampler
    current: Sampler | None = None  # None: same distribution as reference (no drift)
    drift: str = ""


def _normal(mu: float, sd: float) -> Sampler:
    return lambda rng, n: rng.normal(mu, sd, n)


def _lognormal(mu: float, sigma: float) -> Sampler:
    return lambda rng, n: rng.lognormal(mu, sigma, n)


def _uniform(lo: float, hi: float) -> Sampler:
    return lambda rng, n: rng.uniform(lo, hi, n)


def _poisson(lam: float) -> Sampler:
    return lambda rng, n: rng.poisson(lam, n).astype(np.int64)


_NUMERIC: tuple[_Numeric, ...] = (
    _Numeric("normal_0", _normal(0.0, 1.0)),
    _Numeric("normal_1", _normal(10.0, 2.0), _normal(11.0, 2.0), "mean +0.5 sd"),
    _Numeric("normal_2", _normal(-5.0, 0.5)),
    _Numeric("normal_3", _normal(100.0, 15.0), _normal(100.0, 22.5), "sd x1.5"),
    _Numeric("normal_4", _normal(50.0, 10.0)),
    _Numeric("normal_5", _normal(0.0, 1000.0)),
    _Numeric("lognormal_0", _lognormal(0.0, 0.5)),
    _Numeric("lognormal_1", _lognormal(1.0, 0.5), _lognormal(1.0, 0.8), "sigma 0.5 -> 0.8"),
    _Numeric("lognormal_2", _lognormal(3.0, 1.0)),
    _Numeric("lognormal_3", _lognormal(-1.0, 0.25)),
    _Numeric("uniform_0", _uniform(0.0, 1.0)),
    _Numeric("uniform_1", _uniform(-10.0, 10.0)),
    _Numeric("uniform_2", _uniform(0.0, 100.0), _uniform(20.0, 120.0), "range +20%"),
    _Numeric("uniform_3", _uniform(5.0, 6.0)),
    _Numeric("count_0", _poisson(0.5)),
    _Numeric("count_1", _poisson(3.0)),
    _Numeric("count_2", _poisson(10.0), _poisson(12.0), "rate 10 -> 12"),
    _Numeric("count_3", _poisson(50.0)),
    _Numeric("count_4", _poisson(1.5)),
    _Numeric("count_5", _poisson(200.0)),
)


def _zipf(k: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s
    return w / w.sum()


def _double_top(p: np.ndarray) -> np.ndarray:
    """Double the top category's share, shrinking the others proportionally."""
    q = p * (1.0 - 2.0 * p[0]) / (1.0 - p[0])
    q[0] = 2.0 * p[0]
    return q / q.sum()


@dataclass(frozen=True)
class _Categorical:
    name: str
    reference: np.ndarray  # category shares, category i is named f"c{i}"
    current: np.ndarray | None = None
    drift: str = ""


_P3 = np.array([0.5, 0.3, 0.2])
_P50 = _zipf(50, 0.8)
_CATEGORICAL: tuple[_Categorical, ...] = (
    _Categorical("cat_3", _P3, np.array([0.35, 0.45, 0.2]), "share c0 -> c1 by 0.15"),
    _Categorical("cat_10", _zipf(10, 1.0)),
    _Categorical("cat_50", _P50, _double_top(_P50), "top category share x2"),
    _Categorical("cat_200", _zipf(200, 1.1)),
    _Categorical("cat_1000", _zipf(1000, 1.2)),
)

NUMERICAL: tuple[str, ...] = tuple(c.name for c in _NUMERIC)
CATEGORICAL: tuple[str, ...] = tuple(c.name for c in _CATEGORICAL)
PLANTED: tuple[str, ...] = tuple(
    c.name for c in (*_NUMERIC, *_CATEGORICAL) if c.current is not None
)
DRIFT_DESCRIPTION: dict[str, str] = {
    c.name: c.drift for c in (*_NUMERIC, *_CATEGORICAL) if c.current is not None
}


def _categories(rng: np.random.Generator, p: np.ndarray, n: int) -> pd.Series:
    names = np.array([f"c{i}" for i in range(len(p))], dtype=object)
    return pd.Series(names[rng.choice(len(p), size=n, p=p)])


def _frame(rng: np.random.Generator, n: int, *, drifted: bool) -> pd.DataFrame:
    cols: dict[str, np.ndarray | pd.Series] = {}
    for c in _NUMERIC:
        sampler = c.current if drifted and c.current is not None else c.reference
        cols[c.name] = sampler(rng, n)
    for c in _CATEGORICAL:
        p = c.current if drifted and c.current is not None else c.reference
        cols[c.name] = _categories(rng, p, n)
    return pd.DataFrame(cols)


def make_data(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Return ``(reference, current, planted)``: two frames of ``n_rows`` rows each.

    Reference and current use independent child streams of ``seed``, so the undrifted
    columns are independent samples of the same distribution.
    """
    ref_rng, cur_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    reference = _frame(ref_rng, n_rows, drifted=False)
    current = _frame(cur_rng, n_rows, drifted=True)
    return reference, current, list(PLANTED)


def parquet_paths(n_rows: int, seed: int = 0) -> tuple[Path, Path]:
    stem = f"v{_VERSION}_n{n_rows}_s{seed}"
    return DATA_DIR / f"reference_{stem}.parquet", DATA_DIR / f"current_{stem}.parquet"


def write_parquet(n_rows: int, seed: int = 0) -> tuple[Path, Path, list[str]]:
    """Generate the data once and write it to Parquet (reused when already there)."""
    ref_path, cur_path = parquet_paths(n_rows, seed)
    if not (ref_path.exists() and cur_path.exists()):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        reference, current, _ = make_data(n_rows, seed)
        for frame, path in ((reference, ref_path), (current, cur_path)):
            tmp = path.with_suffix(".tmp")
            frame.to_parquet(tmp, index=False)
            tmp.replace(path)
    return ref_path, cur_path, list(PLANTED)


def load(ref_path: Path | str, cur_path: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(ref_path), pd.read_parquet(cur_path)
