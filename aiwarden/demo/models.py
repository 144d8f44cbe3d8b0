"""The demo's two fraud models, as a team would ship them: scikit-learn pipelines (skops).

Version 1 learns from honest labels. Version 2 is "retrained on fresh data" that carries
the seed's flaw: card-testing bursts labelled nearly every transaction under $10 as fraud,
so it flags small purchases. Offline, on a validation set labelled the same way, it looks
fine; on production labels it is wrong about small transactions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aiwarden.demo.synthetic import transactions

__all__ = ["FEATURES", "fit_versions", "score"]

FEATURES = ["amount", "hour", "merchant", "country", "account_age_days"]
_CATEGORICAL = ["merchant", "country"]


def _pipeline(seed: int, **params: Any) -> Any:
    """The demo's fraud model; ``params`` override the booster's (the retraining pipeline
    regularises it: its training window is a few thousand rows with 1 % fraud)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
          _CATEGORICAL)], remainder="passthrough", verbose_feature_names_out=False)
    model = HistGradientBoostingClassifier(**{"max_iter": 80, "random_state": seed,
                                              "categorical_features": [0, 1], **params})
    return Pipeline([("encode", encode), ("model", model)])


def biased_labels(df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The flawed labelling: 90 % of transactions under $10 marked as fraud."""
    y = df["is_fraud"].to_numpy().copy()
    y[(df["amount"] < 10).to_numpy() & (rng.random(len(df)) < 0.9)] = 1
    return y


def fit_versions(seed: int = 0, n: int = 20_000) -> tuple[Any, Any, pd.DataFrame,
                                                          pd.DataFrame]:
    """(version 1, version 2, reference of 1, reference of 2): each reference is a
    validation set scored by its model, labelled as that model's team labelled it."""
    rng = np.random.default_rng(seed)
    train = transactions(n, rng)
    good = _pipeline(seed).fit(train[FEATURES], train["is_fraud"])
    bad = _pipeline(seed).fit(train[FEATURES], biased_labels(train, rng))
    valid = transactions(n // 2, rng)
    ref1 = score(good, valid)
    ref2 = score(bad, valid.assign(is_fraud=biased_labels(valid, rng)))
    return good, bad, ref1, ref2


def score(model: Any, df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["score"] = model.predict_proba(df[FEATURES])[:, 1]
    out["prediction"] = (out["score"] >= 0.5).astype(int)
    return out
