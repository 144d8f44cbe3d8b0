"""ADWIN: adaptive windowing over a numeric stream (Bifet & Gavaldà, 2007).

ADWIN keeps a window of recent values compressed into an exponential histogram
(level ``i`` holds summaries of ``2**i`` values, at most ``max_buckets + 1`` per
level before the two oldest merge), so memory and the cut search are
logarithmic in the window length. Every ``clock`` values it tries every split
of the window into old/new halves and fires when their means differ by more
than a Hoeffding/Bernstein-style bound at confidence ``delta``.

The arithmetic (including the operation order) follows river 0.26 so the
detection indices agree with river exactly; like river, the window restarts
empty on the update after a detection.

With numba (the ``fast`` extra) the window lives in the compiled loop's arrays
(``_adwin_kernel``): ``update`` appends the value to a list and, once a clock's worth
has come (no cut can fire between clock ticks), packs them into a float buffer and runs
them through the loop in one short call; ``detect`` hands it the whole stream. The
window goes back into lists only for ``state_dict`` and pickling, so checkpoints keep
one format. Without numba, ``update`` and ``detect`` are the Python loops below.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from math import log, sqrt
from typing import Any, ClassVar, Self

import numpy as np

from aiwarden.engine.detectors import _adwin_kernel as k
from aiwarden.engine.detectors._base import DriftDetector, int_param, non_finite, real_param
from aiwarden.errors import DataError

__all__ = ["ADWIN"]

# |gap| > sqrt(b) + l (l >= 0) implies gap**2 > b * (1 - 1e-12) even after rounding.
_SQUARED_SLACK = 1.0 - 1e-12
#: ``detect`` hands a stream at least this long to the compiled loop even when the window
#: is in lists (a fresh or restored detector): below it, moving the window into the arrays
#: costs more than it saves. A window already in the arrays always stays there.
_KERNEL_MIN = 4096
#: Most values ``update`` buffers between two compiled calls (with a larger ``clock`` it
#: calls the loop more than once per tick).
_BUFFER_MAX = 1024


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

    # Kept out of ``vars()`` (so out of ``state_dict``): the values ``update`` has taken and
    # not yet run, how many make a run, and for the compiled loop (``_run``, None without
    # numba) the window as its arrays (None: the lists hold it), the float buffer the
    # values are packed into, its packer, how many it holds and the hit slot.
    __slots__ = ("_cap", "_due", "_pack", "_pending", "_run", "_win")

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
        self._compiled_path()
        self._restart()

    def _compiled_path(self) -> None:
        """The buffer, and the compiled loop's pieces (unused without numba)."""
        self._run = k.kernel()
        self._pending: list[float] = []
        self._win: k.Window | None = None
        self._cap = min(self.clock, _BUFFER_MAX)
        # Into the window's bytes (cheaper for struct to write into than an array).
        self._pack = struct.Struct(f"{self._cap}d").pack_into
        self._due = self._next_due(0, False)

    def _next_due(self, tick: int, drift: bool) -> int:
        """Values ``update`` buffers before the next call: up to the next clock tick, where
        ``drift_detected`` must be known (after a drift the next value restarts at tick 0)."""
        return min(self._cap, self.clock if drift else self.clock - tick % self.clock)

    def _restart(self) -> None:
        self._pending.clear()
        self._win = None
        self._due = self._cap
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
        return int(self._win.f[k.WIDTH] if self._win is not None else self._width)

    @property
    def estimation(self) -> float:
        """Mean of the values in the window (0.0 when empty)."""
        self._flush()
        win = self._win
        width, total = (win.f[k.WIDTH], win.f[k.TOTAL]) if win else (self._width, self._total)
        return float(total / width) if width else 0.0

    @property
    def drift_detected(self) -> bool:
        """True only right after the ``update`` on which drift was detected."""
        # Buffered values came after the last tick, and a drift fires only on a tick.
        return self._drift and not self._pending

    @property
    def n_seen(self) -> int:
        """Values passed to ``update``/``detect`` since construction or ``reset()``."""
        return self._n_seen + len(self._pending)

    # -- checkpoints: the lists are the saved form ---------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._sync_lists()
        return super().state_dict()

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Self:
        detector = super().from_state(data)
        detector._due = detector._next_due(detector._tick, detector._drift)
        return detector

    def __getstate__(self) -> dict[str, Any]:
        self._sync_lists()
        return dict(vars(self))

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._compiled_path()
        self._due = self._next_due(self._tick, self._drift)

    # -- streaming -------------------------------------------------------------------------
    def update(self, x: float) -> None:
        """Add ``x`` to the window; on a clock tick, cut the window if it changed.

        Values wait in a list until the next clock tick (no cut can happen between ticks,
        so ``drift_detected`` is False on them) and then go through the loop, compiled or
        not, in one call: checking and appending is all most updates do.
        """
        try:
            if x - x:  # NaN or infinite (a finite number gives 0)
                raise non_finite(type(self).__name__, x)
        except TypeError:  # not a number: what float() takes (a string of digits) or its error
            x = float(x)
            if x - x:
                raise non_finite(type(self).__name__, x) from None
        pending = self._pending
        pending.append(x)
        if len(pending) >= self._due:
            self._flush()

    def _flush(self) -> None:
        """Run the buffered values through the loop. They end at the next clock tick at
        the latest, so the last of them is the only one that can fire."""
        pending = self._pending
        if not pending:
            return
        n = len(pending)
        run = self._run
        if run is None:
            values = self._floats(pending)
            pending.clear()
            self._scan(values)
            self._due = self._next_due(self._tick, self._drift)
            return
        _, _, block, raw, offset = self._win or self._to_window()
        try:
            if n == self._cap:
                self._pack(raw, offset, *pending)
            else:
                struct.pack_into(f"{n}d", raw, offset, *pending)
        except (TypeError, OverflowError, struct.error):
            self._floats(pending)  # raises the DataError that names the value
            raise
        ran = run.step(block, n)
        pending.clear()
        self._n_seen += n
        self._drift = ran & 1 == 1
        self._due = ran >> 32

    def _floats(self, pending: list[float]) -> list[float]:
        """The buffered values as floats. ``update``'s cheap check lets a few non-reals
        through (a complex, a timedelta, an int past float's range): the first is dropped
        from the buffer and named."""
        out = []
        for at, value in enumerate(pending):
            try:
                out.append(float(value))
            except (TypeError, OverflowError):
                del pending[at]
                raise DataError(f"{type(self).__name__} needs real numbers; got "
                                f"{value!r}, dropped (the values before and after it "
                                "are kept).") from None
        return out

    def _to_window(self) -> k.Window:
        """Move the list window into the compiled loop's arrays, which hold it from now on."""
        win = k.new_window(self.clock, float(self.grace_period), self.max_buckets,
                           float(self.min_window_length), self.delta, self._cap)
        full = self.max_buckets + 1
        for level, (ts, vs) in enumerate(zip(self._totals, [[], *self._variances[1:]],
                                             strict=True)):
            at = k.TOT + level * full
            win.f[at : at + len(ts)] = ts
            win.f[at + k.LEVELS * full : at + k.LEVELS * full + len(vs)] = vs
            win.i[k.CNT + level] = len(ts)
        win.f[k.WIDTH], win.f[k.TOTAL], win.f[k.VARIANCE] = self._width, self._total, self._variance
        win.i[k.NLEV], win.i[k.TICK], win.i[k.DRIFT] = len(self._totals), self._tick, self._drift
        win.i[k.DUE] = self._next_due(self._tick, self._drift)
        self._win = win
        return win

    def _sync_lists(self) -> None:
        """Run the buffer, then copy the array window into the lists (which the Python
        loops, ``state_dict`` and pickling read); the arrays stay the live copy."""
        self._flush()
        win = self._win
        if win is None:
            return
        levels = [win.level(level) for level in range(int(win.i[k.NLEV]))]
        self._totals = [ts for ts, _ in levels]
        self._variances = [[]] + [vs for _, vs in levels[1:]]
        self._width, self._total, self._variance = win.f[: k.VARIANCE + 1].tolist()
        self._tick = int(win.i[k.TICK])

    def _scan_array(self, arr: np.ndarray) -> list[int]:
        self._flush()
        run = self._run
        if run is None or (self._win is None and len(arr) < _KERNEL_MIN):
            hits = self._scan(arr.tolist())
            self._due = self._next_due(self._tick, self._drift)
            return hits
        win = self._win or self._to_window()
        found = np.empty(len(arr), dtype=np.int64)
        ran = run.scan(np.ascontiguousarray(arr, dtype=np.float64), len(arr), win.block, found)
        self._n_seen += len(arr)
        self._drift = bool(win.i[k.DRIFT])
        self._due = ran >> 32
        return found[: ran & 0xFFFFFFFF].tolist()  # type: ignore[no-any-return]

    def _scan(self, values: Sequence[float]) -> list[int]:
        # The Python loop, on the list window. The per-value running sums live in locals;
        # the merges (every other value) and the cut search (every ``clock`` values) are
        # methods working on ``self``.
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
