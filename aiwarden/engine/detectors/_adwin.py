"""ADWIN: adaptive windowing over a numeric stream (Bifet & Gavaldà, 2007).

ADWIN keeps a window of recent values compressed into an exponential histogram
(level ``i`` holds summaries of ``2**i`` values, at most ``max_buckets + 1`` per
level before the two oldest merge), so memory and the cut search are
logarithmic in the window length. Every ``clock`` values it tries every split
of the window into old/new halves and fires when their means differ by more
than a Hoeffding/Bernstein-style bound at confidence ``delta``.

The arithmetic (including the operation order) follows river 0.26 so the
detection indices agree with river exactly; like river, the window restarts
empty on the update after a detection. ``detect`` on a stream of 4,096 values or more
runs the same loop compiled (``_adwin_kernel``) when numba is installed: ~40x the
Python loop, ~9x river's ``update``. With numba (and ``clock`` >= 8) ``update`` buffers
values up to the next clock tick and runs them through the same compiled loop in one call,
on a window kept in its arrays: ~4x the Python ``update``, ~0.7x river's per value
(docs/engine.md); without numba it is the Python update below.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import log, sqrt
from typing import Any, ClassVar

import numpy as np

from aiwarden.engine.detectors._adwin_kernel import LEVELS, kernel
from aiwarden.engine.detectors._base import DriftDetector, int_param, non_finite, real_param

__all__ = ["ADWIN"]

# |gap| > sqrt(b) + l (l >= 0) implies gap**2 > b * (1 - 1e-12) even after rounding.
_SQUARED_SLACK = 1.0 - 1e-12
#: ``detect`` hands streams at least this long to the compiled loop (when numba is
#: installed): below it, moving the window in and out of arrays costs more than it saves.
_KERNEL_MIN = 4096
#: ``update`` buffers values up to the next clock tick (with numba) from this clock on.
_LAZY_MIN_CLOCK = 8


class ADWIN(DriftDetector):
    """Adaptive-window drift detector for a real-valued stream (error, loss, metric).

    Parameters
    ----------
    delta : float, default 0.002
        Confidence of the cut test, in (0, 1); smaller means fewer false alarms
        and later detections.
    clock : int, default 32
        Check for a cut every ``clock`` values; larger is cheaper but later.
    max_buckets : int, default 5
        Summaries kept per histogram level before the two oldest merge; more
        means finer cut points and more memory.
    min_window_length : int, default 5
        Both halves of a candidate cut must hold at least this many values.
    grace_period : int, default 10
        No check until the window holds more than this many values.

    Notes
    -----
    False alarms are rare: with the defaults, seeded stationary streams of
    100,000 Gaussian or Bernoulli values raise none. Costs O(log window) memory;
    the update is O(1) amortised plus an O(log window) cut search every ``clock``
    values.

    Examples
    --------
    >>> import numpy as np
    >>> from aiwarden.engine.detectors import ADWIN
    >>> rng = np.random.default_rng(7)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(1.0, 1.0, 1000)])
    >>> ADWIN().detect(stream)
    [1055]
    >>> detector = ADWIN(delta=0.01)
    >>> for x in [0.0] * 200 + [5.0] * 100:
    ...     detector.update(x)
    ...     if detector.drift_detected:
    ...         print(detector.n_seen - 1)
    223
    """

    # Kept out of ``vars()`` (so out of ``state_dict``): values ``update`` has taken but not
    # yet run through the window, the updates left until the next clock tick, the window
    # as the compiled loop's arrays while ``update`` runs on them (None: the lists hold it),
    # and whether ``update`` buffers at all.
    __slots__ = ("_arrays", "_due", "_lazy", "_pending")

    _param_names: ClassVar[tuple[str, ...]] = (
        "delta",
        "clock",
        "max_buckets",
        "min_window_length",
        "grace_period",
    )

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        owner = type(self).__name__
        self.delta = real_param(delta, "delta", owner, 0.0, 1.0, open_low=True, open_high=True)
        self.clock = int_param(clock, "clock", owner, 1)
        self.max_buckets = int_param(max_buckets, "max_buckets", owner, 1)
        self.min_window_length = int_param(min_window_length, "min_window_length", owner, 1)
        self.grace_period = int_param(grace_period, "grace_period", owner, 0)
        super().__init__()
        self._restart()
        # Buffer only with the compiled loop and a clock long enough to spread its call
        # over (with clock 1 every update is a tick and buffering would only add work).
        self._lazy = self.clock >= _LAZY_MIN_CLOCK and kernel() is not None

    def _restart(self) -> None:
        self._pending: list[float] = []
        self._arrays: tuple[np.ndarray, ...] | None = None
        self._due = self.clock
        self._drift = False
        # Histogram levels, finest (single values) first; within a level, oldest first.
        # Level 0 holds raw values, whose sum of squares is 0: ``variances[0]`` stays empty.
        self._totals: list[list[float]] = [[]]
        self._variances: list[list[float]] = [[]]
        self._width = 0.0  # values in the window (a float: it enters float arithmetic)
        self._total = 0.0  # their sum
        self._variance = 0.0  # their sum of squared deviations from the mean
        self._tick = 0

    @property
    def width(self) -> int:
        """Number of values currently in the adaptive window."""
        self._flush()
        return int(self._width)

    @property
    def estimation(self) -> float:
        """Mean of the values in the window (0.0 when empty)."""
        self._flush()
        return self._total / self._width if self._width else 0.0

    @property
    def drift_detected(self) -> bool:
        """True only right after the ``update`` on which drift was detected."""
        # Buffered values came after the last tick, and a drift fires only on a tick.
        return self._drift and not self._pending

    @property
    def n_seen(self) -> int:
        """Values passed to ``update``/``detect`` since construction or ``reset()``."""
        return self._n_seen + len(self._pending)

    def state_dict(self) -> dict[str, Any]:
        self._sync()
        return super().state_dict()

    def update(self, x: float) -> None:
        """Add ``x`` to the window; on a clock tick, cut the window if it changed.

        With numba, values wait in a buffer until the next clock tick (no cut can happen
        between ticks, so ``drift_detected`` is False on them) and then go through the
        compiled loop in one call: the same steps in the same order as below.
        """
        x = float(x)
        if x - x != 0.0:
            raise non_finite(type(self).__name__, x)
        if self._lazy:
            pending = self._pending
            pending.append(x)
            if len(pending) >= self._due:
                self._flush()
            return
        # Same steps as one iteration of ``_scan``, kept separate because setting
        # up the batch loop would double the cost of a single update.
        if self._drift:
            self._restart()
        self._n_seen += 1
        width = self._width + 1.0
        if width > 1.0:
            d = x - self._total / (width - 1.0)
            self._variance += (width - 1.0) * d * d / width
        self._width = width
        self._total += x
        level0 = self._totals[0]
        level0.append(x)
        if len(level0) > self.max_buckets:
            self._merge_level0()
        self._tick += 1
        if self._tick % self.clock == 0 and width > self.grace_period:
            self._drift = self._cut()

    def _flush(self) -> None:
        """Run the buffered values through the compiled loop on the array window."""
        pending = self._pending
        if not pending:
            return
        arrays = self._arrays
        if arrays is None:
            arrays = self._arrays = self._window_arrays()
        tot, var, cnt, state, ints, hits = arrays
        n = len(pending)
        if hits.size < n:
            hits = np.empty(n, dtype=np.int64)
            self._arrays = (tot, var, cnt, state, ints, hits)
        kernel()(np.array(pending), tot, var, cnt, state, ints, hits,  # type: ignore[misc]
                 self.clock, float(self.grace_period), self.max_buckets,
                 float(self.min_window_length), self.delta)
        self._pending = []
        self._n_seen += n
        self._width, self._total, self._variance = state.tolist()
        _, tick, drift = ints.tolist()
        self._tick, self._drift = tick, bool(drift)
        self._due = self.clock if drift else self.clock - tick % self.clock

    def _sync(self) -> None:
        """Flush the buffer and move an array window back into the lists."""
        self._flush()
        if self._arrays is not None:
            tot, var, cnt, _, ints, _ = self._arrays
            self._arrays = None
            self._lists_from(tot, var, cnt, int(ints[0]))

    def _window_arrays(self) -> tuple[np.ndarray, ...]:
        """The list window as the compiled loop's arrays (plus scalars and a hit buffer)."""
        full = self.max_buckets + 1
        tot, var = np.zeros((LEVELS, full)), np.zeros((LEVELS, full))
        cnt = np.zeros(LEVELS, dtype=np.int64)
        for level, ts in enumerate(self._totals):
            tot[level, : len(ts)] = ts
            cnt[level] = len(ts)
        for level, vs in enumerate(self._variances[1:], start=1):
            var[level, : len(vs)] = vs
        state = np.array([self._width, self._total, self._variance])
        ints = np.array([len(self._totals), self._tick, self._drift], dtype=np.int64)
        return tot, var, cnt, state, ints, np.empty(max(self.clock, 1), dtype=np.int64)

    def _lists_from(self, tot: np.ndarray, var: np.ndarray, cnt: np.ndarray,
                    levels: int) -> None:
        self._totals = [tot[level, : cnt[level]].tolist() for level in range(levels)]
        self._variances = [[]] + [var[level, : cnt[level]].tolist()
                                  for level in range(1, levels)]

    def _scan(self, values: Sequence[float]) -> list[int]:
        # The per-value running sums live in locals; the merges (every other value)
        # and the cut search (every ``clock`` values) are methods working on ``self``.
        self._sync()
        clock, grace, full = self.clock, self.grace_period, self.max_buckets + 1
        if self._drift:
            self._restart()
        level0 = self._totals[0]
        width, total, variance, tick = self._width, self._total, self._variance, self._tick
        hits: list[int] = []
        drift = False
        for i, x in enumerate(values):
            if drift:
                self._restart()
                level0 = self._totals[0]
                width, total, variance, tick, drift = 0.0, 0.0, 0.0, 0, False
            # Streaming sum of squares (Babcock et al.): x's share uses the old mean.
            width += 1.0
            if width > 1.0:
                d = x - total / (width - 1.0)
                variance += (width - 1.0) * d * d / width
            total += x
            level0.append(x)
            if len(level0) == full:
                self._merge_level0()
            tick += 1
            if tick % clock == 0 and width > grace:
                self._width, self._total, self._variance = width, total, variance
                if self._cut():
                    drift = True
                    hits.append(i)
                    width, total, variance = self._width, self._total, self._variance
        self._width, self._total, self._variance, self._tick = width, total, variance, tick
        self._drift = drift
        self._n_seen += len(values)
        return hits

    def _scan_array(self, arr: np.ndarray) -> list[int]:
        run = kernel() if len(arr) >= _KERNEL_MIN else None
        if run is None:
            return self._scan(arr.tolist())
        self._sync()
        tot, var, cnt, state, ints, _ = self._window_arrays()
        hits = np.empty(len(arr), dtype=np.int64)
        n_hits = run(np.ascontiguousarray(arr), tot, var, cnt, state, ints, hits, self.clock,
                     float(self.grace_period), self.max_buckets,
                     float(self.min_window_length), self.delta)
        self._lists_from(tot, var, cnt, int(ints[0]))
        self._width, self._total, self._variance = (float(v) for v in state)
        self._tick, self._drift = int(ints[1]), bool(ints[2])
        self._n_seen += len(arr)
        return hits[:n_hits].tolist()

    def _merge_level0(self) -> None:
        """Merge the two oldest single values into level 1, then cascade upwards.

        Single values carry no sum of squares (``variances[0]`` stays empty), so
        the merged one is the spread term alone: the same rounding as river's
        ``0 + 0 + 1 * 0.5 * (a - b) ** 2`` written out.
        """
        totals = self._totals
        level0 = totals[0]
        a, b = level0[0], level0[1]
        del level0[:2]
        if len(totals) == 1:
            totals.append([])
            self._variances.append([])
        level1 = totals[1]
        level1.append(a + b)
        self._variances[1].append(0.5 * (a - b) * (a - b))
        if len(level1) > self.max_buckets:
            self._compress(1)

    def _compress(self, level: int) -> None:
        """Merge the two oldest summaries of each full level (from ``level`` >= 1) upwards."""
        totals, variances = self._totals, self._variances
        full = self.max_buckets + 1
        while len(ts := totals[level]) == full:
            vs = variances[level]
            a, b = ts[0], ts[1]
            size = float(1 << level)
            gap = a / size - b / size
            merged_variance = vs[0] + vs[1] + size * 0.5 * gap * gap
            del ts[:2], vs[:2]
            level += 1
            if level == len(totals):
                totals.append([])
                variances.append([])
            totals[level].append(a + b)
            variances[level].append(merged_variance)

    def _cut(self) -> bool:
        """Drop the oldest summary while some split's means differ significantly."""
        totals = self._totals
        min_len = float(self.min_window_length)
        offset = min_len - 1.0  # n - min_len + 1 == n - offset exactly: all are integers
        fired = False
        while self._width >= 2.0:  # one value cannot be split (and log(log(1)) is undefined)
            width = self._width
            spread = self._variance / width
            if not spread >= 0.0:
                break  # rounding made it negative: river's bound is NaN and never fires
            # Terms of the bound that depend on the whole window only; hoisting
            # them changes no rounding.
            delta_prime = log(2.0 * log(width) / self.delta)
            linear = 2.0 / 3.0 * delta_prime
            n0, n1, u0, u1 = 0.0, width, 0.0, self._total
            cut = False
            for level in range(len(totals) - 1, -1, -1):
                size = float(1 << level)
                # The newest value always stays on the new side of the split.
                for t in totals[level] if level else totals[0][:-1]:
                    n0 += size
                    n1 -= size
                    u0 += t
                    u1 -= t
                    if n1 < min_len:
                        break
                    if n0 < min_len:
                        continue
                    m = 1.0 / (n0 - offset) + 1.0 / (n1 - offset)
                    gap = u0 / n0 - u1 / n1
                    bound = 2.0 * m * spread * delta_prime
                    # Cheap necessary condition first (sound despite rounding), then
                    # river's exact test.
                    if gap * gap > bound * _SQUARED_SLACK and abs(gap) > sqrt(bound) + linear * m:
                        cut = True
                        break
                else:
                    continue
                break
            if not cut:
                break
            self._drop_oldest()
            fired = True
        return fired

    def _drop_oldest(self) -> None:
        """Remove the oldest summary and its share of the sum and the sum of squares."""
        level = len(self._totals) - 1
        ts, vs = self._totals[level], self._variances[level]
        size = float(1 << level)
        u, v = ts[0], vs[0] if level else 0.0
        mu = u / size
        self._width -= size
        self._total -= u
        width = self._width
        mu_window = self._total / width
        self._variance -= v + size * width * (mu - mu_window) * (mu - mu_window) / (size + width)
        del ts[0], vs[:1]
        if not ts:
            self._totals.pop()
            self._variances.pop()
