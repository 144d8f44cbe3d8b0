"""Concept-drift detectors for a stream of errors or metric values.

ADWIN (adaptive window, any real-valued stream), Page–Hinkley (CUSUM on the
running mean) and DDM (binary error rate, with a warning zone). All share the
:class:`DriftDetector` surface: ``update(x)`` then ``drift_detected``, or
``detect(stream)`` for the positions that fired. Detection indices match
river 0.26 exactly for the same parameters; river is not needed at runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiwarden.engine.detectors._adwin import ADWIN
from aiwarden.engine.detectors._base import DriftDetector
from aiwarden.engine.detectors._ddm import DDM
from aiwarden.engine.detectors._page_hinkley import PageHinkley
from aiwarden.errors import check_param

__all__ = ["ADWIN", "DDM", "DETECTORS", "DriftDetector", "PageHinkley", "make_detector"]

#: Registry of detector names to classes (read-only).
DETECTORS: Mapping[str, type[DriftDetector]] = MappingProxyType(
    {"adwin": ADWIN, "ddm": DDM, "page_hinkley": PageHinkley}
)


def make_detector(name: str, **params: object) -> DriftDetector:
    """Build a registered detector by name, so configs can say ``"adwin"``.

    Examples
    --------
    >>> from aiwarden.engine.detectors import make_detector
    >>> make_detector("page_hinkley", threshold=20.0)
    PageHinkley(min_instances=30, delta=0.005, threshold=20.0, alpha=0.9999, mode='both')
    >>> make_detector("cusum")
    Traceback (most recent call last):
    ...
    aiwarden.errors.ParameterError: The 'name' parameter of make_detector must be one of \
'adwin', 'ddm', 'page_hinkley'. Got 'cusum' instead.
    """
    valid = ", ".join(repr(key) for key in sorted(DETECTORS))
    known = isinstance(name, str) and name in DETECTORS
    check_param(known, "name", "make_detector", f"one of {valid}", name)
    cls = DETECTORS[name]
    allowed = cls._param_names
    options = ", ".join(map(repr, allowed))
    for key in params:
        check_param(key in allowed, "params", "make_detector", f"among {options}", key)
    return cls(**params)
