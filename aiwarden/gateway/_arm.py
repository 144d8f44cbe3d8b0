"""A loaded version as the gateway calls it: arranged input, predictions, scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError
from aiwarden.gateway._rows import Item, frame
from aiwarden.registry import Predictor
from aiwarden.registry.predictor import EstimatorPredictor

__all__ = ["Arm"]


@dataclass(frozen=True)
class Arm:
    """A loaded version: predictions, and scores when the model has ``predict_proba``.

    For scikit-learn-like estimators the input is arranged in the model's column order
    once per request and the estimator is called directly, instead of letting
    ``predict`` and ``predict_proba`` each reorder (copy) the frame again: on a one-row
    request that copy costs as much as the rest of the gateway. The arrangement is the
    predictor's own (same columns, same missing-column error, an array when the model was
    fitted on one), and the tests compare answers with the estimator's.
    """

    version: str
    predictor: Predictor
    proba: bool
    estimator: Any = None  # the fast path, when the predictor wraps an estimator
    as_array: bool = False

    @classmethod
    def of(cls, version: str, predictor: Predictor) -> Arm:
        est = getattr(predictor, "estimator", None)
        outputs = getattr(predictor, "_outputs", None)
        if isinstance(predictor, EstimatorPredictor):
            named = getattr(est, "feature_names_in_", None) is not None
            return cls(version, predictor, hasattr(est, "predict_proba"), est,
                       not named and hasattr(est, "n_features_in_"))
        if outputs is not None:  # ONNX: a second output holds the probabilities
            return cls(version, predictor, len(outputs) > 1)
        return cls(version, predictor,
                   type(predictor).predict_proba is not Predictor.predict_proba)

    def _input(self, items: Sequence[Item]) -> Any:
        p, cols = self.predictor, self.predictor.inputs
        if self.estimator is None or cols is None:
            return frame(items)
        first = items[0].features
        missing = [c for c in cols if c not in first]
        if missing:
            raise DataError(f"The input lacks the column(s) {missing} that {p.model} version "
                            f"{p.version} needs.", missing[0])
        if len(items) == 1:
            if self.as_array:  # numbers straight into an array, as to_numpy would type them
                values = [first[c] for c in cols]
                if all(type(v) in (int, float) for v in values):
                    return np.array([values])
            x = pd.DataFrame({c: [first[c]] for c in cols})
        else:
            x = frame(items)
            missing = [c for c in cols if c not in x.columns]
            if missing:
                raise DataError(f"The input lacks the column(s) {missing} that {p.model} "
                                f"version {p.version} needs.", missing[0])
            x = x[cols]
        return x.to_numpy() if self.as_array else x

    def run(self, items: Sequence[Item]) -> tuple[list[Any], list[dict[str, float]] | None]:
        x = self._input(items)
        model = self.predictor if self.estimator is None else self.estimator
        preds = np.asarray(model.predict(x)).tolist()
        if not self.proba:
            return preds, None
        probs = np.asarray(model.predict_proba(x))
        classes = self.predictor.classes or range(probs.shape[1])
        keys = [str(c) for c in classes]
        return preds, [dict(zip(keys, row, strict=True)) for row in probs.tolist()]
