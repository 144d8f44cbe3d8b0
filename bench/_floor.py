"""The floor: a bare numpy pass over the same data, single thread.

Numerical column: ``np.quantile`` (100 quantile bins) on reference, then ``np.searchsorted`` +
``np.bincount`` on current. Categorical column: ``np.unique(..., return_inverse=True)`` on
reference (+ ``np.bincount`` of the inverse), then ``np.searchsorted`` against the reference
categories + ``np.bincount`` on current. Column extraction from the DataFrame is timed too, since
every contender starts from the same frames. No statistic, no decision: this is the least work
any univariate drift report has to do, done with plain numpy calls.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FloorResult", "FloorRun", "floor_pass", "time_floor"]

_PROBS = np.linspace(0.0, 1.0, 101)  # 100 quantile bins


def _strings(s: pd.Series) -> np.ndarray:
    # Fixed-width unicode sorts ~10x faster than an object array of Python strings.
    return np.asarray(s.array, dtype=object).astype(str)


def _numerical(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    edges = np.quantile(ref, _PROBS)
    idx = np.searchsorted(edges[1:-1], cur, side="right")
    return np.bincount(idx, minlength=len(edges) - 1)


def _categorical(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    cats, inverse = np.unique(ref, return_inverse=True)
    ref_counts = np.bincount(inverse, minlength=len(cats))
    idx = np.searchsorted(cats, cur)
    idx[idx == len(cats)] = 0
    seen = cats[idx] == cur
    cur_counts = np.bincount(idx[seen], minlength=len(cats))
    return ref_counts, cur_counts, int(len(cur) - seen.sum())


@dataclass(frozen=True)
class FloorRun:
    numerical_seconds: float
    categorical_seconds: float
    cpu_seconds: float  # process CPU time: steadier than wall time on a busy machine

    @property
    def seconds(self) -> float:
        return self.numerical_seconds + self.categorical_seconds


def floor_pass(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
) -> FloorRun:
    """Run the pass once over every column."""
    c0, t0 = time.process_time(), time.perf_counter()
    for col in numerical:
        _numerical(reference[col].to_numpy(), current[col].to_numpy())
    t1 = time.perf_counter()
    for col in categorical:
        _categorical(_strings(reference[col]), _strings(current[col]))
    t2, c2 = time.perf_counter(), time.process_time()
    return FloorRun(t1 - t0, t2 - t1, c2 - c0)


@dataclass(frozen=True)
class FloorResult:
    seconds: float  # median wall time over the runs
    cpu_seconds: float  # median CPU time over the runs
    numerical_seconds: float  # split of the median run
    categorical_seconds: float
    runs: list[float]

    @classmethod
    def from_runs(cls, runs: Sequence[FloorRun]) -> FloorResult:
        ordered = sorted(runs, key=lambda r: r.seconds)
        mid = ordered[len(ordered) // 2]
        cpu = sorted(r.cpu_seconds for r in runs)[len(runs) // 2]
        return cls(
            seconds=mid.seconds,
            cpu_seconds=cpu,
            numerical_seconds=mid.numerical_seconds,
            categorical_seconds=mid.categorical_seconds,
            runs=[r.seconds for r in runs],
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "numerical_seconds": self.numerical_seconds,
            "categorical_seconds": self.categorical_seconds,
            "runs": self.runs,
        }


def time_floor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    repeats: int = 3,
) -> FloorResult:
    """Median of ``repeats`` passes (numpy's sort / quantile / unique are single-threaded)."""
    return FloorResult.from_runs(
        [floor_pass(reference, current, numerical, categorical) for _ in range(repeats)]
    )
