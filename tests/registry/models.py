"""Small real models for registry tests, and the entry points and custom types they use."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["x1", "x2", "x3"]


def frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    y = ((x.x1 - 0.5 * x.x2 + rng.normal(0, 0.5, n)) > 0).astype(int).to_numpy()
    return x, y


def fitted(seed: int = 0, C: float = 1.0) -> Any:
    """A scikit-learn pipeline fitted on a DataFrame (it knows its feature names)."""
    x, y = frame(seed=seed)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(x, y)


def skops_bytes(model: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(model)


def onnx_bytes(model: Any) -> bytes:
    from skl2onnx import to_onnx

    x, _ = frame(5)
    return to_onnx(model, x.to_numpy(np.float32)[:1],
                   options={id(model): {"zipmap": True}}).SerializeToString()


def coef_json(model: Any) -> bytes:
    """The pipeline as plain numbers, for the entry-point format."""
    scaler, lr = model[0], model[-1]
    return json.dumps({"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
                       "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0]),
                       "features": FEATURES}).encode()


class NumpyLogistic:
    """What an entry point may return: anything with predict / predict_proba."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.classes_ = np.array([0, 1])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        s = self.spec
        z = ((x[s["features"]].to_numpy() - s["mean"]) / s["scale"]) @ s["coef"] + s["intercept"]
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)


def load_numpy_logistic(path: str | None) -> NumpyLogistic:
    """Entry point ``tests.registry.models:load_numpy_logistic``."""
    assert path is not None
    with open(path, "rb") as f:
        return NumpyLogistic(json.load(f))


class Doubler(TransformerMixin, BaseEstimator):
    """A custom type skops does not trust by default."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return x * 2


def custom_pipeline() -> Any:
    x, y = frame()
    return make_pipeline(Doubler(), LogisticRegression()).fit(x.to_numpy(), y)
