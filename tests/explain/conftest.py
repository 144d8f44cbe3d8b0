"""Small seeded data sets and models for the explain tests."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("shap")
pytest.importorskip("lime")

FEATURES = ["amount", "age", "hour", "score", "noise"]


def data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features, a binary label and a regression target; ``noise`` is ignored by both."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    logit = 2.0 * x.amount - 1.0 * x.age + 0.5 * x.hour + 0.25 * x.score
    y = (logit + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    t = (3.0 * x.amount - 2.0 * x.age + x.hour * x.score).to_numpy()
    return x, y, t


@pytest.fixture(scope="session")
def xy() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    return data()


@pytest.fixture(scope="session")
def shap_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap
