"""A loaded version as the gateway calls it: arranged input, predictions, scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.engine.schema import Schema
from aiwarden.errors import DataError
from aiwarden.gateway._check import InputCheck, null_error
from aiwarden.gateway._ingestable import IngestCheck
from aiwarden.gateway._rows import Item, frame
from aiwarden.registry import Predictor
from aiwarden.registry.predictor import EstimatorPredictor

__all__ = ["Arm"]

_IDS_ONLY = IngestCheck(None)  # no schema: ingest checks the ids alone


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
    check: InputCheck | None = None  # the version's schema, checked before predicting
    ingest: IngestCheck = _IDS_ONLY  # what monitoring would quarantine, refused

    @classmethod
    def of(cls, version: str, predictor: Predictor, schema: Schema | None = None) -> Arm:
        est = getattr(predictor, "estimator", None)
        outputs = getattr(predictor, "_outputs", None)
        check, ingest = InputCheck.of(schema, predictor.inputs), IngestCheck.of(schema)
        if isinstance(predictor, EstimatorPredictor):
            named = getattr(est, "feature_names_in_", None) is not None
            return cls(version, predictor, hasattr(est, "predict_proba"), est,
                       not named and hasattr(est, "n_features_in_"), check, ingest)
        if outputs is not None:  # ONNX: a second output holds the probabilities
            return cls(version, predictor, len(outputs) > 1, check=check, ingest=ingest)
        return cls(version, predictor,
                   type(predictor).predict_proba is not Predictor.predict_proba, check=check,
                   ingest=ingest)

    def _input(self, items: Sequence[Item]) -> Any:
        p, cols, check = self.predictor, self.predictor.inputs, self.check
        if check is not None and len(items) == 1:
            check.row(items[0].features)
        if self.estimator is None or cols is None:
            x = frame(items)
            if check is not None and len(items) > 1:
                check.frame(x)
            return x
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
            if check is not None:
                check.frame(x)
            missing = [c for c in cols if c not in x.columns]
            if missing:
                raise DataError(f"The input lacks the column(s) {missing} that {p.model} "
                                f"version {p.version} needs.", missing[0])
            x = x[cols]
        return x.to_numpy() if self.as_array else x

    def run(self, items: Sequence[Item]) -> tuple[list[Any], list[dict[str, float]] | None]:
        x = self._input(items)
        try:
            return self._predict(x)
        except (ValueError, TypeError) as exc:  # a null the model cannot take: name it
            named = self._null_culprit(items, exc)
            if named is None:
                raise
            raise named from exc

    def _null_culprit(self, items: Sequence[Item], exc: BaseException) -> DataError | None:
        """Only after the model refused: which feature sent as null it cannot take. With
        nulls in several features each is tried alone on its first row (the others filled
        from rows that have them), so a null the model imputes is not blamed."""
        rows = [it.features for it in items]
        names = self.predictor.inputs or list(rows[0])
        nulls = [n for n in names if any(n in r and r[n] is None for r in rows)]
        if not nulls:
            return None
        first = {n: next(i for i, r in enumerate(rows) if n in r and r[n] is None)
                 for n in nulls}
        if len(nulls) > 1:
            fill = {n: next((r[n] for r in rows if r.get(n) is not None), None) for n in nulls}
            for name in nulls:
                probe = {**rows[first[name]], **{n: v for n, v in fill.items()
                                                 if n != name and v is not None}}
                try:
                    self._predict(self._input([Item("", probe, None, False)]))
                except Exception:
                    return null_error(name, first[name] if len(rows) > 1 else None, exc)
        name = nulls[0]
        return null_error(name, first[name] if len(rows) > 1 else None, exc)

    def _predict(self, x: Any) -> tuple[list[Any], list[dict[str, float]] | None]:
        model = self.predictor if self.estimator is None else self.estimator
        preds = np.asarray(model.predict(x)).tolist()
        if not self.proba:
            return preds, None
        probs = np.asarray(model.predict_proba(x))
        classes = self.predictor.classes or range(probs.shape[1])
        keys = [str(c) for c in classes]
        return preds, [dict(zip(keys, row, strict=True)) for row in probs.tolist()]
