"""Page–Hinkley: a CUSUM test on deviations from the running mean (Page, 1954).

Cheap (O(1) per value, no window) and good at abrupt mean shifts. The
cumulative sums fade by ``alpha`` so an old, long-gone excursion cannot mask a
new one. Semantics and operation order follow river 0.26 so detection indices
agree with river exactly.
"""

from __future__ import annotations

from typing import ClassVar

from aiwarden.engine.detectors._base import DriftDetector, int_param, non_finite, real_param
from aiwarden.errors import check_param

__all__ = ["PageHinkley"]

_MODES = ("up", "down", "both")


class PageHinkley(DriftDetector):
    """Page–Hinkley test for a change in the mean of a real-valued stream.

    Parameters
    ----------
    min_instances : int, default 30
        Values needed (since the last restart) before drift can fire.
    delta : float, default 0.005
        Tolerated drift per value: deviations smaller than this never accumulate.
    threshold : float, default 50.0
        Cumulative deviation (lambda) that signals drift; larger means fewer
        false alarms and later detections.
    alpha : float, default 0.9999
        Fading factor in (0, 1] applied to the cumulative sums each value.
    mode : {"both", "up", "down"}, default "both"
        Which direction of mean change to watch.

    Notes
    -----
    ``threshold`` and ``delta`` are in the units of the stream. On stationary
    noise with standard deviation sigma the statistic behaves like a reflected
    random walk whose excursions are roughly exponential with mean
    ``sigma**2 / (2 * delta)``, so false alarms are rare only when ``threshold``
    is many times that: with the defaults, sigma = 0.1 gives none on seeded
    100,000-value streams while sigma = 1 fires every ~1,600 values. A shift
    of size ``s`` is flagged after roughly ``threshold / s`` values.

    Examples
    --------
    >>> import numpy as np
    >>> from aiwarden.engine.detectors import PageHinkley
    >>> rng = np.random.default_rng(7)
    >>> stream = np.concatenate([rng.normal(0.0, 0.1, 1000), rng.normal(0.5, 0.1, 1000)])
    >>> PageHinkley().detect(stream)
    [1099]
    >>> PageHinkley(mode="down").detect(stream), PageHinkley(mode="down").detect(-stream)
    ([], [1099])
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "min_instances",
        "delta",
        "threshold",
        "alpha",
        "mode",
    )

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        owner = type(self).__name__
        self.min_instances = int_param(min_instances, "min_instances", owner, 1)
        self.delta = real_param(delta, "delta", owner, 0.0)
        self.threshold = real_param(threshold, "threshold", owner, 0.0, open_low=True)
        self.alpha = real_param(alpha, "alpha", owner, 0.0, 1.0, open_low=True)
        check_param(mode in _MODES, "mode", owner, "one of 'up', 'down', 'both'", mode)
        self.mode = mode
        super().__init__()
        self._restart()

    @property
    def estimation(self) -> float:
        """Running mean of the stream since the last restart (0.0 before any value)."""
        return self._mean

    def _restart(self) -> None:
        self._drift = False
        self._n = 0.0  # values since restart, a float as in the running-mean update
        self._mean = 0.0
        self._sum_up = 0.0  # faded sum of (x - mean - delta); rises on an increase
        self._sum_down = 0.0  # faded sum of (x - mean + delta); falls on a decrease
        self._min_up = float("inf")
        self._max_down = -1.0  # river's starting value, kept for identical detections

    def update(self, x: float) -> None:
        """Add ``x`` to the running mean and the two cumulative sums, then test them."""
        x = float(x)
        if x - x != 0.0:
            raise non_finite(type(self).__name__, x)
        if self._drift:
            self._restart()
        self._n_seen += 1
        n = self._n + 1.0
        self._n = n
        mean = self._mean + (1.0 / n) * (x - self._mean)
        self._mean = mean
        dev = x - mean
        up = self.alpha * self._sum_up + dev - self.delta
        down = self.alpha * self._sum_down + dev + self.delta
        self._sum_up, self._sum_down = up, down
        if up < self._min_up:
            self._min_up = up
        if down > self._max_down:
            self._max_down = down
        if n >= self.min_instances:
            mode = self.mode
            self._drift = (mode != "down" and up - self._min_up > self.threshold) or (
                mode != "up" and self._max_down - down > self.threshold
            )

    def _scan(self, values: list[float]) -> list[int]:
        # Same arithmetic as ``update`` with the state held in locals for speed.
        alpha, delta, threshold = self.alpha, self.delta, self.threshold
        min_n = self.min_instances
        watch_up, watch_down = self.mode != "down", self.mode != "up"
        hits: list[int] = []
        if self._drift:
            self._restart()
        n, mean = self._n, self._mean
        sum_up, sum_down, min_up, max_down = (
            self._sum_up,
            self._sum_down,
            self._min_up,
            self._max_down,
        )
        drift = False
        for i, x in enumerate(values):
            if drift:
                n, mean, sum_up, sum_down = 0.0, 0.0, 0.0, 0.0
                min_up, max_down, drift = float("inf"), -1.0, False
            n += 1.0
            mean = mean + (1.0 / n) * (x - mean)
            dev = x - mean
            sum_up = alpha * sum_up + dev - delta
            sum_down = alpha * sum_down + dev + delta
            if sum_up < min_up:
                min_up = sum_up
            if sum_down > max_down:
                max_down = sum_down
            if n >= min_n and (
                (watch_up and sum_up - min_up > threshold)
                or (watch_down and max_down - sum_down > threshold)
            ):
                drift = True
                hits.append(i)
        self._n, self._mean = n, mean
        self._sum_up, self._sum_down, self._min_up, self._max_down = (
            sum_up,
            sum_down,
            min_up,
            max_down,
        )
        self._drift = drift
        self._n_seen += len(values)
        return hits
