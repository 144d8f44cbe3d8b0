"""What every stream drift detector shares: one value in, a flag out.

The surface follows river's detectors (``update`` then read ``drift_detected``)
so code written against river ports over, but the state is plain Python so a
detector pickles, has no runtime dependency and resets on demand. A detector
restarts its statistics lazily, on the update *after* the one that fired, so
``drift_detected`` stays readable until the next value arrives.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np

from aiwarden.errors import DataError, check_param

__all__ = ["DriftDetector"]


def _fmt(value: float) -> str:
    return f"{value:g}"


def int_param(value: object, name: str, owner: str, low: int, high: int | None = None) -> int:
    """Validate an integer parameter (bools rejected) and return it as ``int``."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    ok = ok and value >= low and (high is None or value <= high)  # type: ignore[operator]
    expected = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
    check_param(ok, name, owner, expected, value)
    return int(value)  # type: ignore[call-overload]


def real_param(
    value: object,
    name: str,
    owner: str,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """Validate a finite real parameter against an interval and return it as ``float``."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low  # type: ignore[operator]
    if ok and high is not None:
        ok = value < high if open_high else value <= high  # type: ignore[operator]
    if low is not None and high is not None:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        expected = f"a float in {left}{_fmt(low)}, {_fmt(high)}{right}"
    elif low is not None:
        expected = f"a float {'>' if open_low else '>='} {_fmt(low)}"
    elif high is not None:
        expected = f"a float {'<' if open_high else '<='} {_fmt(high)}"
    else:
        expected = "a finite float"
    check_param(ok, name, owner, expected, value)
    return float(value)  # type: ignore[arg-type]


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return float(value["float"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def non_finite(owner: str, value: object) -> DataError:
    """The error for a NaN/inf event: it would silently poison every later statistic."""
    return DataError(
        f"{owner} cannot take a non-finite value; got {value!r}. "
        "Drop or impute missing values before streaming them."
    )


class DriftDetector(ABC):
    """Base class: ``update(x)`` one value at a time, then read ``drift_detected``.

    Subclasses list their constructor arguments in ``_param_names`` (used by
    ``repr`` and ``params``), implement ``update`` and ``_restart``, and may
    override ``_scan`` with a tighter loop for ``detect``.

    Examples
    --------
    Feeding a stream in chunks gives the same detections as feeding it whole:

    >>> import numpy as np
    >>> from aiwarden.engine.detectors import ADWIN
    >>> rng = np.random.default_rng(0)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 3000), rng.normal(2.0, 1.0, 3000)])
    >>> whole = ADWIN().detect(stream)
    >>> detector = ADWIN()
    >>> chunks = np.split(stream, 3)
    >>> chunked = [2000 * k + i for k, chunk in enumerate(chunks) for i in detector.detect(chunk)]
    >>> whole == chunked, detector.n_seen
    (True, 6000)
    >>> whole
    [3039]
    """

    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._drift = False
        self._n_seen = 0

    # -- read-only state ---------------------------------------------------------------
    @property
    def drift_detected(self) -> bool:
        """True only right after the ``update`` on which drift was detected."""
        return self._drift

    @property
    def n_seen(self) -> int:
        """Values passed to ``update``/``detect`` since construction or ``reset()``."""
        return self._n_seen

    @property
    def params(self) -> dict[str, object]:
        """Constructor arguments, so ``type(d)(**d.params)`` builds a fresh twin."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Parameters and running statistics as JSON-safe data (no pickle).

        A server stores this between batches of a stream and resumes with
        :meth:`from_state`; the resumed detector fires at exactly the positions
        an uninterrupted one would. Infinite floats become ``{"float": "inf"}``
        because JSON has no literal for them.

        Examples
        --------
        >>> import json
        >>> from aiwarden.engine.detectors import DDM
        >>> d = DDM()
        >>> _ = d.detect([0, 1, 0, 0] * 20)
        >>> twin = DDM.from_state(json.loads(json.dumps(d.state_dict())))
        >>> twin.detect([1] * 10) == d.detect([1] * 10)
        True
        """
        state = {k: _encode(v) for k, v in vars(self).items() if k.startswith("_")}
        return {"detector": type(self).__name__, "params": dict(self.params), "state": state}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`state_dict` (same class, same fields)."""
        owner = f"{cls.__name__}.from_state"
        ok = isinstance(data, Mapping) and data.get("detector") == cls.__name__
        check_param(ok, "data", owner, f"a state_dict() of a {cls.__name__}",
                    data.get("detector") if isinstance(data, Mapping) else data)
        params, state = data.get("params"), data.get("state")
        check_param(isinstance(params, Mapping), "params", owner, "a mapping", params)
        check_param(isinstance(state, Mapping), "state", owner, "a mapping", state)
        detector = cls(**params)  # validates the parameters
        expected = {k for k in vars(detector) if k.startswith("_")}
        check_param(set(state) == expected, "state", owner,
                    f"the fields {sorted(expected)}", sorted(state))
        for key, value in state.items():
            setattr(detector, key, _decode(value))
        return detector

    # -- streaming ---------------------------------------------------------------------
    @abstractmethod
    def update(self, x: float) -> None:
        """Feed one value; afterwards ``drift_detected`` tells whether drift fired on it."""

    @abstractmethod
    def _restart(self) -> None:
        """Clear the statistics and flags (not ``n_seen``): the state after a drift."""

    def reset(self) -> None:
        """Forget everything, as if freshly constructed with the same parameters."""
        self._restart()
        self._n_seen = 0

    def detect(self, stream: Iterable[float] | np.ndarray) -> list[int]:
        """Feed a whole stream and return the positions (0-based, in ``stream``) that fired.

        The detector keeps its state, so a long stream can be fed in chunks; add
        the chunk offset to the returned positions. Values are validated up front
        (vectorised) so the per-event loop does no checking.
        """
        if not isinstance(stream, np.ndarray) and not hasattr(stream, "__len__"):
            stream = list(stream)
        try:
            arr = np.asarray(stream, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{type(self).__name__}.detect needs a 1-D stream of numbers: {exc}"
            ) from None
        if arr.ndim != 1:
            raise DataError(
                f"{type(self).__name__}.detect needs a 1-D stream; got shape {arr.shape}."
            )
        if arr.size == 0:
            return []
        self._check_values(arr)
        return self._scan_array(arr)

    def _scan_array(self, arr: np.ndarray) -> list[int]:
        """``_scan`` of a validated float64 array; a detector with a compiled loop takes
        the array as is."""
        return self._scan(arr.tolist())

    def _check_values(self, arr: np.ndarray) -> None:
        bad = ~np.isfinite(arr)
        if bad.any():
            raise non_finite(type(self).__name__, float(arr[int(np.argmax(bad))]))

    def _scan(self, values: list[float]) -> list[int]:
        update = self.update
        hits: list[int] = []
        for i, x in enumerate(values):
            update(x)
            if self._drift:
                hits.append(i)
        return hits
