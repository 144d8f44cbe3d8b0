"""A bound on the decoded pixels one request brings and all requests hold at once.

Why: a request's cost is its decoded pixels, not its image count or its bytes: 20 PNGs of
49 megapixels (a few MB of zeros each) kept the measuring workers busy ~15 s while every
other image request waited. The pixels are read from each image's header
(:func:`aiwarden.images.decoded_pixels`, a large JPEG at its draft scale) before any is
decoded, then:

- a request whose images together exceed ``per_request`` is refused whole
  (:class:`TooManyPixels`, a server answers 413 naming the first image beyond the budget):
  the client splits the batch; nothing of it is stored, so nothing accepted is lost;
- a request that would take the pixels held by requests being measured beyond ``in_flight``
  waits up to ``max_wait`` seconds, then :class:`PixelsBusy` (429 with Retry-After from the
  pixel rate measured so far).

0 turns a bound off. ``in_flight`` is raised to ``per_request`` if lower, so every request
the first bound admits can run when the server is idle.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator, Sequence

from aiwarden.errors import AiwardenError
from aiwarden.images._pool import PoolBusy

__all__ = ["PixelBudget", "PixelsBusy", "TooManyPixels"]

#: Pixels per second assumed before a request has been timed (PNG decode plus properties
#: on one worker measured ~65 M/s; the Retry-After only needs the order of magnitude).
DEFAULT_RATE = 50e6


class TooManyPixels(AiwardenError):
    """The request's images decode to more pixels than one request may bring."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class PixelsBusy(PoolBusy):
    """The requests being measured hold too many pixels for this one to start now."""

    def __init__(self, message: str, retry_after: int, index: int) -> None:
        super().__init__(message, retry_after)
        self.index = index


def _mp(pixels: float) -> str:
    return f"{pixels / 1e6:.1f} MP"


class PixelBudget:
    """Admission of image requests by decoded pixels (module docstring); thread-safe."""

    def __init__(self, per_request: int, in_flight: int, max_wait: float = 0.25) -> None:
        self.per_request = max(0, int(per_request))
        self.in_flight = max(0, int(in_flight))
        if self.in_flight and self.per_request:
            self.in_flight = max(self.in_flight, self.per_request)
        self.max_wait = max_wait
        self.used = 0
        self._rate = 0.0  # moving average of pixels measured per second
        self._cond = threading.Condition()

    def check(self, pixels: Sequence[int], names: str = "rows") -> int:
        """The request's total; :class:`TooManyPixels` naming ``{names}[i]``, the first
        image whose pixels take the running total beyond ``per_request``."""
        total = 0
        for i, p in enumerate(pixels):
            total += int(p)
            if self.per_request and total > self.per_request:
                raise TooManyPixels(
                    f"{names}[{i}]: the request's images decode to {_mp(sum(pixels))} "
                    f"({_mp(total)} up to and including this one), more than the "
                    f"{_mp(self.per_request)} one request may bring (setting "
                    f"image_request_megapixels). Nothing was stored: send {names}[{i}:] in "
                    f"another request.", i)
        return total

    @contextlib.contextmanager
    def hold(self, pixels: Sequence[int], names: str = "rows") -> Iterator[None]:
        """Hold the request's pixels while it is measured: :meth:`check`, then wait up to
        ``max_wait`` for room among the requests in flight, else :class:`PixelsBusy`."""
        total = self.check(pixels, names)
        if self.in_flight and total:
            deadline = time.monotonic() + self.max_wait
            with self._cond:
                while self.used + total > self.in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._cond.wait(left):
                        if self.used + total <= self.in_flight:
                            break
                        raise self._busy(pixels, total, names)
                self.used += total
        began = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - began
            with self._cond:
                if self.in_flight and total:
                    self.used -= total
                    self._cond.notify_all()
                if total and took > 0:
                    rate = total / took
                    self._rate = rate if not self._rate else 0.8 * self._rate + 0.2 * rate

    def _busy(self, pixels: Sequence[int], total: int, names: str) -> PixelsBusy:
        """Called holding the lock: the first image that does not fit in what is free."""
        free, run, index = self.in_flight - self.used, 0, 0
        for index, p in enumerate(pixels):  # noqa: B007 - the index is the answer
            run += int(p)
            if run > free:
                break
        wait = int(min(60, max(1, math.ceil((self.used + total - self.in_flight)
                                            / (self._rate or DEFAULT_RATE)))))
        return PixelsBusy(
            f"{names}[{index}]: the images being measured hold {_mp(self.used)} of the "
            f"server's {_mp(self.in_flight)} (setting image_inflight_megapixels); this "
            f"request's {_mp(total)} did not fit within {self.max_wait:g} s. Nothing of it "
            f"was stored: retry in {wait} s.", wait, index)
