"""Pure monitoring engine: schema, profiles, drift, quality, performance, slices, detectors.

No I/O and no server imports: it works in a notebook on a DataFrame exactly as it
works inside the server.

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

__all__ = [
    "CategoricalProfile",
    "Column",
    "ColumnDrift",
    "ColumnType",
    "DriftReport",
    "DriftSettings",
    "Finding",
    "NumericalProfile",
    "PresenceProfile",
    "Profile",
    "QualityReport",
    "QualitySettings",
    "Reference",
    "Role",
    "Schema",
    "Task",
    "infer_schema",
]
