"""Pure monitoring engine: schema, profiles, drift, quality, performance, slices, detectors.

No I/O and no server imports: it works in a notebook on a DataFrame exactly as it
works inside the server. Heavier parts (scikit-learn based) load on first use.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from aiwarden.engine import Reference
>>> rng = np.random.default_rng(1)
>>> train = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
>>> ref = Reference.fit(train)
>>> prof = ref.profile(train.assign(x=train.x + 1.0))
>>> ref.compare(prof).drifted_features
('x',)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from aiwarden.engine.drift import ColumnDrift, DriftReport, DriftSettings
from aiwarden.engine.profile import (
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
    Profile,
)
from aiwarden.engine.quality import Finding, QualityReport, QualitySettings
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Column, ColumnType, Role, Schema, Task, infer_schema

_LAZY = {
    "ClassificationStats": "performance",
    "RegressionStats": "performance",
    "CBPE": "cbpe",
    "CBPEResult": "cbpe",
    "ExpectedClassificationStats": "cbpe",
    "MetricEstimate": "cbpe",
    "DLE": "dle",
    "RealisedPerformance": "_results",
    "DLEResult": "dle",
    "ExpectedRegressionStats": "dle",
    "Condition": "slices",
    "Slice": "slices",
    "SliceReport": "slices",
    "find_failing_slices": "slices",
    "DomainClassifierDrift": "multivariate",
    "DomainClassifierResult": "multivariate",
    "PCAReconstructionDrift": "multivariate",
    "PCAReconstructionResult": "multivariate",
    "ADWIN": "detectors",
    "DDM": "detectors",
    "PageHinkley": "detectors",
    "DriftDetector": "detectors",
    "make_detector": "detectors",
}

__all__ = [
    "ADWIN",
    "CBPE",
    "DDM",
    "DLE",
    "CBPEResult",
    "CategoricalProfile",
    "ClassificationStats",
    "Column",
    "ColumnDrift",
    "ColumnType",
    "Condition",
    "DLEResult",
    "DomainClassifierDrift",
    "DomainClassifierResult",
    "DriftDetector",
    "DriftReport",
    "DriftSettings",
    "ExpectedClassificationStats",
    "ExpectedRegressionStats",
    "Finding",
    "MetricEstimate",
    "NumericalProfile",
    "PCAReconstructionDrift",
    "PCAReconstructionResult",
    "PageHinkley",
    "PresenceProfile",
    "Profile",
    "QualityReport",
    "QualitySettings",
    "RealisedPerformance",
    "Reference",
    "RegressionStats",
    "Role",
    "Schema",
    "Slice",
    "SliceReport",
    "Task",
    "find_failing_slices",
    "infer_schema",
    "make_detector",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiwarden.engine' has no attribute {name!r}")
    value = getattr(import_module(f"aiwarden.engine.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
