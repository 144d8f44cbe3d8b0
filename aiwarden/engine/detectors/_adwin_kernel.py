"""ADWIN's loop compiled with numba, when numba is installed (`aiwarden[fast]`).

river's ADWIN core is compiled (Rust); ours in Python costs ~0.5 µs a value. ``detect``
on a long stream and the buffered ``ADWIN.update`` hand their values to this kernel instead:
the same steps in the same order (every add, multiply and ``log`` is the IEEE/libm one, and
numba without ``fastmath`` neither reorders nor fuses them), so the detections and the window
are bit-for-bit those of ``ADWIN._scan`` and of river.

The whole detector, with the buffer ``update`` packs its values into, lives in one block of
memory (a :class:`Window`: int slots, float slots, buffer), so a buffered ``update`` makes a
call with one array and one int (numba unwraps every argument at every call, and a clock's
worth of ``update`` calls, 32 by default, share the cost of one). Level ``l`` keeps its
summaries in a ring of ``full`` slots from ``TOT + l * full`` (totals; the sums of squares
``LEVELS * full`` further on), the oldest at slot ``i[HEAD + l]``: merging the two oldest
moves the head instead of shifting the level (which took half of the loop's time).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from math import log, sqrt
from typing import Any, NamedTuple

import numpy as np

from aiwarden.engine._once import once

__all__ = ["LEVELS", "Kernel", "Window", "kernel", "new_window"]

#: Histogram levels the arrays hold: level ``i`` summarises ``2**i`` values each.
LEVELS = 64
_SLACK = 1.0 - 1e-12  # see _adwin._SQUARED_SLACK
_KEEP: list[Any] = []

# Float slots: the running sums, then the parameters the loop reads as floats.
WIDTH, TOTAL, VARIANCE, GRACE, MIN_LEN, DELTA, TOT = range(7)
# Int slots: levels in use, values since restart, drift flag, parameters, then the number of
# summaries per level and the slot of each level's oldest. DUE is written by the loop: values
# ``update`` may buffer next.
NLEV, TICK, DRIFT, CLOCK, BUCKETS, CAP, DUE, CNT = range(8)
HEAD = CNT + LEVELS
HIT = HEAD + LEVELS  # where a buffered run writes the position that fired
INTS = HIT + 1  # int slots, ahead of the float slots in a Window's block


class Window(NamedTuple):
    """ADWIN's state as the compiled loop's arrays: views of one block of memory."""

    f: np.ndarray  # float64: WIDTH.., then totals, then sums of squares (LEVELS x full each)
    i: np.ndarray  # int64: NLEV.., then per-level counts and heads (LEVELS each), HIT
    block: np.ndarray  # float64 over all of it: the ints, the floats, then the buffer
    raw: bytearray  # the block's bytes, which ``update`` packs its values into
    offset: int  # where the buffer starts in ``raw``

    def level(self, level: int) -> tuple[list[float], list[float]]:
        """Totals and sums of squares of one level, oldest first."""
        full = int(self.i[BUCKETS]) + 1
        n, at = int(self.i[CNT + level]), TOT + level * full
        slots = at + (int(self.i[HEAD + level]) + np.arange(n)) % full
        return self.f[slots].tolist(), self.f[slots + LEVELS * full].tolist()


def new_window(clock: int, grace: float, max_buckets: int, min_len: float, delta: float,
               cap: int) -> Window:
    """An empty window; ``cap`` bounds how many values ``update`` buffers between calls."""
    floats = TOT + 2 * LEVELS * (max_buckets + 1)
    raw = bytearray(8 * (INTS + floats + cap))  # zeros
    block = np.frombuffer(raw)
    f, i = block[INTS : INTS + floats], block[:INTS].view(np.int64)
    f[GRACE], f[MIN_LEN], f[DELTA] = grace, min_len, delta
    i[NLEV], i[CLOCK], i[BUCKETS], i[CAP] = 1, clock, max_buckets, cap
    i[DUE] = min(clock, cap)
    return Window(f, i, block, raw, 8 * (INTS + floats))


class Kernel(NamedTuple):
    """The compiled entry points."""

    #: ``step(block, n)``: run the ``n`` values packed into a Window's buffer.
    step: Callable[[np.ndarray, int], int]
    #: ``scan(values, n, block, hits)``: run a stream, writing the positions that fired.
    scan: Callable[[np.ndarray, int, np.ndarray, np.ndarray], int]


@once
def kernel() -> Kernel | None:
    """The compiled loop, or None without numba (or with ``AIWARDEN_NO_NUMBA`` set).

    What is returned are the compiled functions' own entry points for the one signature
    each is used with: calling them skips the dispatcher's type matching, a third of the
    cost of a short call.
    """
    if os.environ.get("AIWARDEN_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    f64, i64 = numba.types.float64, numba.types.int64
    jit = numba.njit(cache=True, nogil=True)
    # Called from the entry points below by their module names, so compiled first.
    globals()["_surely_no_cut"] = jit(_surely_no_cut)
    globals()["_run"] = jit(_run)

    def entry(function: Callable[..., int], signature: Any) -> Any:
        compiled = numba.njit(signature, cache=True, nogil=True)(function)
        _KEEP.append(compiled)  # the entry point's code lives as long as its dispatcher
        return getattr(compiled.overloads[signature.args], "entry_point", compiled)

    return Kernel(entry(_step, i64(f64[::1], i64)),
                  entry(_scan, i64(f64[::1], i64, f64[::1], i64[::1])))


def _step(block: np.ndarray, n: int) -> int:
    """Run the ``n`` values packed into the buffer of the Window whose block this is."""
    i = block[:INTS].view(np.int64)
    floats = TOT + 2 * LEVELS * (i[BUCKETS] + 1)
    return _run(block[INTS + floats :], n, block[INTS : INTS + floats], i, i[HIT:])


def _scan(values: np.ndarray, n: int, block: np.ndarray, hits: np.ndarray) -> int:
    """Run ``values[:n]`` through a Window, writing the positions that fired to ``hits``."""
    i = block[:INTS].view(np.int64)
    floats = TOT + 2 * LEVELS * (i[BUCKETS] + 1)
    return _run(values, n, block[INTS : INTS + floats], i, hits)


def _run(values: np.ndarray, n: int, f: np.ndarray, i: np.ndarray, hits: np.ndarray) -> int:
    """Feed ``values[:n]`` to the window ``(f, i)`` and write the positions that fired to
    ``hits``; returns how many there were plus, times 2**32, the values ``update`` may
    buffer next (one number: returning a tuple costs more than decoding it)."""
    full = i[BUCKETS] + 1
    clock = i[CLOCK]
    var0 = TOT + LEVELS * full  # first sum of squares; totals start at TOT
    grace, min_len, delta = f[GRACE], f[MIN_LEN], f[DELTA]
    width, total, variance = f[WIDTH], f[TOTAL], f[VARIANCE]
    nlev, tick, drift = i[NLEV], i[TICK], i[DRIFT]
    offset = min_len - 1.0
    n_hits = 0
    phase = tick % clock  # tick % clock, kept without a division per value
    # Level 0's count and head, touched by every value, live in registers (the arrays may
    # share memory, so the compiler re-reads them after every store); written back before
    # the cut search and at the end.
    c0, h0 = i[CNT], i[HEAD]
    for k in range(n):
        x = values[k]
        if drift:
            for level in range(nlev):
                i[CNT + level] = 0
                i[HEAD + level] = 0
            nlev, width, total, variance, tick, drift, phase = 1, 0.0, 0.0, 0.0, 0, 0, 0
            c0 = h0 = 0
        width += 1.0
        if width > 1.0:
            d = x - total / (width - 1.0)
            variance += (width - 1.0) * d * d / width
        total += x
        slot = h0 + c0
        if slot >= full:
            slot -= full
        f[TOT + slot] = x
        f[var0 + slot] = 0.0  # a single value has no spread
        c0 += 1
        # Merge the two oldest of each full level upwards. At level 0 (size 1, spreads 0)
        # this is ADWIN._merge_level0's 0.5 * (a - b) * (a - b) to the bit: a / 1.0 is a
        # and 0.0 + 0.0 + y is y for y >= 0.
        if c0 == full:
            size = 1.0  # 2**level
            inverse = 1.0  # 1 / size, exactly: a power of two's inverse is one, and
            # a * inverse rounds as a / size does (both are the exact quotient rounded once)
            first = h0
            second = first + 1 if first + 1 < full else 0
            a, b = f[TOT + first], f[TOT + second]
            gap = a * inverse - b * inverse
            merged_variance = f[var0 + first] + f[var0 + second] + size * 0.5 * gap * gap
            h0 = first + 2 - full if first + 2 >= full else first + 2
            c0 -= 2
            level = 0
            carry = True
            while carry:  # put the merged pair on the next level; merge there if now full
                level += 1
                size *= 2.0
                inverse *= 0.5
                if level == nlev:
                    nlev += 1
                    i[CNT + level] = 0
                    i[HEAD + level] = 0
                at = level * full
                c = i[CNT + level]
                slot = i[HEAD + level] + c
                if slot >= full:
                    slot -= full
                f[TOT + at + slot] = a + b
                f[var0 + at + slot] = merged_variance
                i[CNT + level] = c + 1
                carry = c + 1 == full
                if carry:
                    first = i[HEAD + level]
                    second = first + 1 if first + 1 < full else 0
                    a, b = f[TOT + at + first], f[TOT + at + second]
                    gap = a * inverse - b * inverse
                    merged_variance = f[var0 + at + first] + f[var0 + at + second] \
                        + size * 0.5 * gap * gap
                    i[HEAD + level] = first + 2 - full if first + 2 >= full else first + 2
                    i[CNT + level] -= 2
        tick += 1
        phase += 1
        if phase == clock:
            phase = 0
        if phase == 0 and width > grace:
            i[CNT], i[HEAD] = c0, h0
            fired = False
            while width >= 2.0:
                spread = variance / width
                if not spread >= 0.0:
                    break
                delta_prime = log(2.0 * log(width) / delta)
                linear = 2.0 / 3.0 * delta_prime
                scale = 2.0 * spread * delta_prime
                n0, n1, u0, u1 = 0.0, width, 0.0, total
                cut = False
                stop = False
                for level in range(nlev - 1, -1, -1):
                    size = float(1 << level)
                    # The newest value always stays on the new side of the split.
                    m = i[CNT + level] if level else i[CNT] - 1
                    at = TOT + level * full
                    slot = i[HEAD + level]
                    for _ in range(m):
                        t = f[at + slot]
                        slot = slot + 1 if slot + 1 < full else 0
                        n0 += size
                        n1 -= size
                        u0 += t
                        u1 -= t
                        if n1 < min_len:
                            stop = True
                            break
                        if n0 < min_len:
                            continue
                        if _surely_no_cut(u0, u1, n0, n1, n0 - offset, n1 - offset, scale):
                            continue
                        mm = 1.0 / (n0 - offset) + 1.0 / (n1 - offset)
                        gap = u0 / n0 - u1 / n1
                        bound = 2.0 * mm * spread * delta_prime
                        if gap * gap > bound * _SLACK and abs(gap) > sqrt(bound) + linear * mm:
                            cut = True
                            stop = True
                            break
                    if stop:
                        break
                if not cut:
                    break
                # Drop the oldest summary and its share of the sums.
                level = nlev - 1
                at = level * full + i[HEAD + level]
                size = float(1 << level)
                u = f[TOT + at]
                v = f[var0 + at] if level else 0.0
                mu = u / size
                width -= size
                total -= u
                mu_window = total / width
                variance -= v + size * width * (mu - mu_window) * (mu - mu_window) / (size + width)
                head = i[HEAD + level] + 1
                i[HEAD + level] = 0 if head == full else head
                i[CNT + level] -= 1
                if i[CNT + level] == 0:
                    i[HEAD + level] = 0
                    nlev -= 1
                fired = True
            c0, h0 = i[CNT], i[HEAD]
            if fired:
                drift = 1
                hits[n_hits] = k
                n_hits += 1
    i[CNT], i[HEAD] = c0, h0
    f[WIDTH], f[TOTAL], f[VARIANCE] = width, total, variance
    i[NLEV], i[TICK], i[DRIFT] = nlev, tick, drift
    # After a drift the next value restarts the window (tick 0); a tick ends every buffer.
    due = min(i[CAP], clock if drift else clock - tick % clock)
    i[DUE] = due
    return n_hits | due << 32


def _surely_no_cut(u0: float, u1: float, n0: float, n1: float, a: float, b: float,
                   scale: float) -> bool:
    """True only when river's test cannot fire at this split, decided without its four
    divisions (most of the cut search's time); False sends the split to the exact test.

    The exact test needs ``gap**2 > bound * _SLACK`` with ``gap = u0/n0 - u1/n1`` and
    ``bound = scale * (1/a + 1/b)``. Times ``(n0 n1)**2 a b`` that is
    ``d**2 a b > scale (a + b) (n0 n1)**2`` with ``d = u0 n1 - u1 n0``. ``d`` and the
    computed gap both round, by at most ``2**-53 * s`` (``s = |u0| n1 + |u1| n0``) each,
    so ``|d| + 1e-12 s`` bounds ``|gap| n0 n1`` from above; every other product rounds
    relatively by ~1e-16 a step, far inside the 1e-6 margin. Out of the range where
    products stay normal floats (overflow, underflow, NaN) it answers False.
    """
    d = u0 * n1 - u1 * n0
    top = abs(d) + 1e-12 * (abs(u0) * n1 + abs(u1) * n0)
    if not 1e-140 < top < 1e140:
        return False
    n01 = n0 * n1
    rhs = scale * (a + b) * n01 * n01
    return 1e-250 < rhs < 1e250 and top * top * (a * b) < rhs * 0.999999
