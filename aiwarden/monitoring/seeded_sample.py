"""Seeded samples of a window's rows, the same for the same window on every read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_U64 = (1 << 64) - 1


def window_rng(*parts: int | float) -> np.random.Generator:
    """A generator seeded by the window (e.g. a version id and the window's bounds). numpy
    takes only non-negative seed words, and a window may start before 1970 (an ISO date
    of 1960, epoch -1): each part is taken modulo 2**64, which leaves any positive part as
    it was."""
    return np.random.default_rng([int(p) & _U64 for p in parts])


def sample_positions(n: int, k: int, seed: Sequence[int | float]) -> np.ndarray:
    """Sorted positions of ``k`` of ``n`` rows (all of them when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(window_rng(*seed).choice(n, k, replace=False))
