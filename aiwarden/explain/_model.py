"""What ``aiwarden.explain`` needs from a model: its family, its task, its inputs.

A model is whatever the registry's loader yields (an ``EstimatorPredictor`` wrapping a
scikit-learn, XGBoost or LightGBM estimator, an ``OnnxPredictor``) or a bare estimator: any
object with ``predict`` and, for classifiers, ``predict_proba``. Tree and Linear SHAP need
the estimator itself, so a registry predictor is unwrapped; anything else is a black box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from aiwarden.errors import DataError, ParameterError, SchemaError

__all__ = ["ModelAdapter", "adapt", "model_family", "splits_on_categories", "unwrap"]

Family = Literal["tree", "linear", "other"]

_TREE_NAMES = frozenset({
    "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
    "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
    "GradientBoostingRegressor", "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor", "XGBClassifier", "XGBRegressor", "Booster",
    "LGBMClassifier", "LGBMRegressor", "CatBoostClassifier", "CatBoostRegressor",
})
_TREE_PACKAGES = frozenset({"sklearn", "xgboost", "lightgbm", "catboost"})


#: scikit-learn's generalised linear regressors: ``predict`` is the inverse link (exp) of
#: ``X @ coef_``, so Linear SHAP's values (of the linear score) do not add up to it
_LINKED = frozenset({"PoissonRegressor", "GammaRegressor", "TweedieRegressor"})
#: linear models outside sklearn.linear_model whose decision_function is X @ coef_ + b
_LINEAR_SVM = frozenset({"LinearSVC", "LinearSVR"})


def model_family(estimator: Any) -> Family:
    """``tree`` when shap's TreeExplainer reads the model, ``linear`` for scikit-learn's
    linear models (a ``coef_`` and an ``intercept_``), else ``other`` (a black box). Two
    look-alikes are black boxes: a HistGradientBoosting model with categorical features
    (its trees split on category sets, which shap's parse reads as thresholds: residuals of
    7 measured) and a generalised linear regressor with a log link."""
    if estimator is None:
        return "other"
    package = type(estimator).__module__.split(".")[0]
    name = type(estimator).__name__
    if name in _TREE_NAMES and package in _TREE_PACKAGES:
        return "other" if splits_on_categories(estimator) else "tree"
    module = type(estimator).__module__
    if ((module.startswith("sklearn.linear_model") or name in _LINEAR_SVM)
            and hasattr(estimator, "coef_") and hasattr(estimator, "intercept_")):
        return "other" if name in _LINKED else "linear"
    return "other"


def splits_on_categories(estimator: Any) -> bool:
    """A HistGradientBoosting model with categorical features: its trees split on sets of
    categories, which shap 0.51's parse reads as thresholds."""
    categorical = getattr(estimator, "is_categorical_", None)
    return categorical is not None and bool(np.any(categorical))


def unwrap(model: Any) -> tuple[Any, list[str] | None]:
    """The estimator inside a registry predictor (duck-typed: the registry is not imported)
    and the input columns it declares."""
    is_predictor = all(hasattr(model, a) for a in ("sha256", "inputs", "format"))
    if is_predictor:
        return getattr(model, "estimator", None), model.inputs
    names = getattr(model, "feature_names_in_", None)
    return model, None if names is None else [str(n) for n in names]


@dataclass
class ModelAdapter:
    """One model as the explainers see it.

    ``call`` receives the rows (``predict``/``predict_proba``); ``estimator`` is what Tree or
    Linear SHAP read (None for a black box); ``as_array`` says the model was fitted on a bare
    array, so it must not get a DataFrame (scikit-learn would warn about feature names).
    """

    call: Any
    estimator: Any
    columns: list[str]
    classes: list[Any] | None
    as_array: bool

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    @property
    def family(self) -> Family:
        return model_family(self.estimator)

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        return frame.to_numpy() if self.as_array else frame

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.asarray(self.call.predict_proba(self.model_input(frame)), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(frame):
            raise DataError(f"predict_proba returned shape {out.shape} for {len(frame)} rows; "
                            "expected (rows, classes).")
        return out

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.call.predict(self.model_input(frame)), dtype=np.float64).ravel()

    def outputs(self, frame: pd.DataFrame) -> np.ndarray:
        """What the black-box explainers explain: probabilities (rows, classes) or values."""
        return self.proba(frame) if self.is_classifier else self.predict(frame)


def _classes(model: Any, est: Any, task: str, probe: pd.DataFrame,
             call_input: Any) -> list[Any] | None:
    if task == "regression":
        return None
    known = getattr(model, "classes", None) if est is None else getattr(est, "classes_", None)
    if known is not None:
        return list(np.asarray(known).tolist())
    if est is not None and task == "auto":
        return None  # an estimator without classes_ is a regressor
    if not hasattr(model, "predict_proba"):
        if task == "classification":
            raise ParameterError(f"task='classification' but {type(model).__name__} has no "
                                 "predict_proba.")
        return None
    try:  # a black box (e.g. ONNX): a classifier if it answers probabilities
        out = np.asarray(model.predict_proba(call_input))
    except Exception as exc:
        if task == "classification":
            raise DataError(f"predict_proba failed on the background rows: {exc}") from None
        return None
    if out.ndim != 2 or out.shape[1] < 2:
        return None
    found = getattr(model, "classes", None)
    return list(found) if found is not None else list(range(out.shape[1]))


def adapt(model: Any, frame: pd.DataFrame, background: pd.DataFrame,
          task: str = "auto") -> tuple[ModelAdapter, pd.DataFrame, pd.DataFrame]:
    """The adapter plus both frames reduced to, and ordered as, the model's inputs."""
    if not hasattr(model, "predict"):
        raise ParameterError(f"Cannot explain a {type(model).__name__}: it has no predict.")
    est, declared = unwrap(model)
    columns = declared if declared is not None else [str(c) for c in frame.columns]
    for name, data in (("rows", frame), ("background", background)):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise SchemaError(f"The {name} lack the column(s) {missing[:10]} the model needs.",
                              missing[0])
    frame, background = frame[columns], background[columns]
    as_array = (est is model and getattr(model, "feature_names_in_", None) is None
                and hasattr(model, "n_features_in_"))
    probe = background.iloc[:2]
    classes = _classes(model, est, task, probe, probe.to_numpy() if as_array else probe)
    if task == "classification" and classes is None:
        raise ParameterError(f"task='classification' but {type(model).__name__} has no "
                             "classes.")
    return ModelAdapter(model, est, columns, classes, as_array), frame, background
