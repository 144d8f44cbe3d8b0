"""DDM: the drift detection method of Gama et al. (2004) for a 0/1 error stream.

While a model's concept holds, its running error rate ``p`` (with binomial
standard deviation ``s``) should only fall. DDM remembers the point where
``p + s`` was lowest and warns / fires when ``p + s`` climbs more than
``warning_threshold`` / ``drift_threshold`` of those standard deviations above
it. Semantics and operation order follow river 0.26 so detection indices agree
with river exactly.
"""

from __future__ import annotations

from math import sqrt
from typing import ClassVar

import numpy as np

from aiwarden.engine.detectors._base import DriftDetector, int_param, real_param
from aiwarden.errors import DataError

__all__ = ["DDM"]


def _not_binary(value: object) -> DataError:
    return DataError(f"DDM needs a stream of 0/1 outcomes (1 = error, 0 = correct); got {value!r}.")


class DDM(DriftDetector):
    """Drift (and warning) detector for a binary error stream.

    Parameters
    ----------
    warm_start : int, default 30
        Values needed (since the last restart) before warning or drift can fire.
    warning_threshold : float, default 2.0
        Standard deviations above the best ``p + s`` that raise a warning; at most
        ``drift_threshold``.
    drift_threshold : float, default 3.0
        Standard deviations above the best ``p + s`` that signal drift.

    Notes
    -----
    As in river, a stream that is error-free at the end of the warm start has
    ``s = 0`` at its best point, so the first later error fires immediately.
    DDM is the most alarm-prone of the three: the best ``p + s`` ratchets down by
    chance, so on seeded stationary streams with error rate 0.1 the defaults
    raise one or two false alarms per 100,000 values (sometimes within the first
    few hundred); at error rate 0.3 false alarms are several times rarer. A
    larger ``warm_start`` removes the early ones.

    Examples
    --------
    >>> import numpy as np
    >>> from aiwarden.engine.detectors import DDM
    >>> rng = np.random.default_rng(7)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3])
    >>> DDM().detect(errors)
    [1039]
    >>> detector = DDM()
    >>> for i, e in enumerate(errors):
    ...     detector.update(e)
    ...     if detector.drift_detected:
    ...         break
    >>> i, detector.drift_detected, detector.warning_detected
    (1039, True, False)
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "warm_start",
        "warning_threshold",
        "drift_threshold",
    )

    def __init__(
        self,
        warm_start: int = 30,
        warning_threshold: float = 2.0,
        drift_threshold: float = 3.0,
    ) -> None:
        owner = type(self).__name__
        self.warm_start = int_param(warm_start, "warm_start", owner, 0)
        self.drift_threshold = real_param(
            drift_threshold, "drift_threshold", owner, 0.0, open_low=True
        )
        self.warning_threshold = real_param(
            warning_threshold, "warning_threshold", owner, 0.0, self.drift_threshold, open_low=True
        )
        super().__init__()
        self._restart()

    @property
    def warning_detected(self) -> bool:
        """True while the error rate sits in the warning zone (never on a drift update)."""
        return self._warning

    @property
    def estimation(self) -> float:
        """Running error rate since the last restart (0.0 before any value)."""
        return self._p

    def _restart(self) -> None:
        self._drift = False
        self._warning = False
        self._n = 0.0  # values since restart, a float as in the running-mean update
        self._p = 0.0  # running error rate
        self._p_min = 0.0  # p and s where p + s was lowest (set once warm)
        self._s_min = 0.0
        self._ps_min = float("inf")

    def update(self, x: float) -> None:
        """Add one outcome (1 = error) and test the error rate against its best point."""
        if x != 0 and x != 1:
            raise _not_binary(x)
        x = float(x)
        if self._drift:
            self._restart()
        self._n_seen += 1
        n = self._n + 1.0
        self._n = n
        p = self._p + (1.0 / n) * (x - self._p)
        self._p = p
        s = sqrt(p * (1.0 - p) / n)
        if n > self.warm_start:
            ps = p + s
            if ps <= self._ps_min:
                self._p_min, self._s_min, self._ps_min = p, s, p + s
            self._warning = ps > self._p_min + self.warning_threshold * self._s_min
            if ps > self._p_min + self.drift_threshold * self._s_min:
                self._drift = True
                self._warning = False

    def _check_values(self, arr: np.ndarray) -> None:
        bad = (arr != 0.0) & (arr != 1.0)
        if bad.any():
            raise _not_binary(float(arr[int(np.argmax(bad))]))

    def _scan(self, values: list[float]) -> list[int]:
        # Same arithmetic as ``update`` with the state held in locals for speed.
        warm, w_thr, d_thr = self.warm_start, self.warning_threshold, self.drift_threshold
        hits: list[int] = []
        if self._drift:
            self._restart()
        n, p, p_min, s_min, ps_min = self._n, self._p, self._p_min, self._s_min, self._ps_min
        warning = self._warning
        drift = False
        for i, x in enumerate(values):
            if drift:
                n, p, p_min, s_min, ps_min = 0.0, 0.0, 0.0, 0.0, float("inf")
                drift = warning = False
            n += 1.0
            p = p + (1.0 / n) * (x - p)
            s = sqrt(p * (1.0 - p) / n)
            if n > warm:
                ps = p + s
                if ps <= ps_min:
                    p_min, s_min, ps_min = p, s, p + s
                if ps > p_min + d_thr * s_min:
                    drift, warning = True, False
                    hits.append(i)
                else:
                    warning = ps > p_min + w_thr * s_min
        self._n, self._p, self._p_min, self._s_min, self._ps_min = n, p, p_min, s_min, ps_min
        self._drift, self._warning = drift, warning
        self._n_seen += len(values)
        return hits
