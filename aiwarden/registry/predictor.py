"""One interface for every artifact format: ``predict(frame)`` and ``predict_proba(frame)``.

The gateway calls only this, so a version can change format (skops → ONNX) without the
serving code knowing. A *frame* is a pandas DataFrame, a pyarrow Table, a dict of
columns, a list of row dicts, a single row dict, or a 2-D array (columns in the model's
input order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError

__all__ = ["EstimatorPredictor", "Predictor", "PromptTemplate", "to_frame"]


def to_frame(data: Any) -> pd.DataFrame | np.ndarray:
    """A DataFrame for named inputs; a 2-D array stays an array (already ordered)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise DataError(f"Expected a 2-D array of rows; got {data.ndim} dimension(s).")
        return data
    if hasattr(data, "to_pandas") and hasattr(data, "column_names"):  # pyarrow Table
        return data.to_pandas()
    if hasattr(data, "to_pandas"):  # polars
        return data.to_pandas()
    if isinstance(data, Mapping):
        if data and all(isinstance(v, Sequence | np.ndarray) and not isinstance(v, str)
                        for v in data.values()):
            return pd.DataFrame(dict(data))
        return pd.DataFrame([dict(data)])  # one row
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame(list(data))
        return to_frame(np.asarray(data))
    raise DataError(f"Cannot predict on a {type(data).__name__}: pass a DataFrame, a pyarrow "
                    "Table, a dict of columns, row dicts or a 2-D array.")


class Predictor:
    """A loaded version. ``inputs`` is the column order the model expects, when known."""

    format = "?"

    def __init__(self, *, model: str = "", version: str = "", sha256: str = "",
                 inputs: Sequence[str] | None = None) -> None:
        self.model, self.version, self.sha256 = model, version, sha256
        self.inputs = list(inputs) if inputs else None

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in ``predict_proba`` column order (None: regression or unknown)."""
        return None

    def predict(self, frame: Any) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, frame: Any) -> np.ndarray:
        raise NotImplementedError

    def _columns(self, frame: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """Reorder (and select) named columns to ``inputs``; name the missing ones."""
        if self.inputs is None or isinstance(frame, np.ndarray):
            return frame
        missing = [c for c in self.inputs if c not in frame.columns]
        if missing:
            raise DataError(f"The input lacks the column(s) {missing} that "
                            f"{self.model} version {self.version} needs.", missing[0])
        return frame[self.inputs]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model} version {self.version} ({self.format})>"


class EstimatorPredictor(Predictor):
    """Anything with scikit-learn's ``predict``/``predict_proba`` (skops, pickle, entry points)."""

    def __init__(self, estimator: Any, fmt: str, **kw: Any) -> None:
        names = getattr(estimator, "feature_names_in_", None)
        if kw.get("inputs") is None and names is not None:
            kw["inputs"] = [str(n) for n in names]
        super().__init__(**kw)
        self.estimator, self.format = estimator, fmt
        # fitted on a bare array: give it one, or scikit-learn warns about feature names
        self._as_array = names is None and hasattr(estimator, "n_features_in_")

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else list(np.asarray(classes).tolist())

    def _x(self, data: Any) -> Any:
        frame = self._columns(to_frame(data))
        return frame.to_numpy() if self._as_array and isinstance(frame, pd.DataFrame) else frame

    def predict(self, frame: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._x(frame)))

    def predict_proba(self, frame: Any) -> np.ndarray:
        if not hasattr(self.estimator, "predict_proba"):
            raise DataError(f"{self.model} version {self.version} "
                            f"({type(self.estimator).__name__}) has no predict_proba.")
        return np.asarray(self.estimator.predict_proba(self._x(frame)))


class PromptTemplate(Predictor):
    """A prompt version (format ``prompt``): its text, versioned and aliased like a model so
    an LLM application reads the template behind ``champion`` and a rollback moves it back.
    It answers chat completions through the guardrail route, not ``/predict``."""

    format = "prompt"

    def __init__(self, text: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.text = text

    def predict(self, frame: Any) -> np.ndarray:
        raise DataError(f"{self.model} version {self.version} is a prompt template: it does "
                        "not answer /predict; send chat completions through "
                        f"/api/v1/models/{self.model}/v1/chat/completions.")

    predict_proba = predict
