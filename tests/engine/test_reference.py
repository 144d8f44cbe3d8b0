"""Reference end to end: classification with CBPE, regression, persistence, settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, roc_auc_score

from aiwarden.engine import DriftSettings, Profile, Reference
from aiwarden.errors import ParameterError, SchemaError


def _classified(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"x": x, "c": rng.choice(["u", "v"], n), "score": p,
                         "prediction": (p >= 0.5).astype(int), "target": y})


def test_classification_reference_estimates_then_realises() -> None:
    rng = np.random.default_rng(0)
    ref = Reference.fit(_classified(20_000, rng))
    assert ref.schema_.task.value == "binary" and ref.performance_model_ is not None
    cur = _classified(10_000, rng, shift=0.8)  # covariate shift, P(y|x) unchanged
    unlabelled = ref.profile(cur.drop(columns=["target"]))
    assert unlabelled.performance is None
    est = ref.estimated_performance(unlabelled)
    labelled = ref.profile(cur)
    real = ref.realised_performance(labelled)
    assert real["accuracy"] == pytest.approx(accuracy_score(cur.target, cur.prediction), abs=1e-12)
    assert real["roc_auc"] == pytest.approx(roc_auc_score(cur.target, cur.score), abs=0.005)
    assert est.metrics["accuracy"].estimate == pytest.approx(real["accuracy"], abs=0.02)
    cmp = est.compare(labelled.performance)
    assert abs(cmp["accuracy"]["estimate"] - cmp["accuracy"]["realised"]) < 0.02
    assert ref.compare(labelled)["x"].drifted


def test_regression_reference_has_residual_histogram() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=5_000)
    df = pd.DataFrame({"x": x, "target": 2 * x + rng.normal(size=5_000), "prediction": 2 * x})
    ref = Reference.fit(df)
    assert ref.schema_.task.value == "regression"
    batch = df.iloc[:700]
    stats = ref.profile(batch).performance
    assert stats.residual_counts.sum() == 700
    assert stats.metrics()["mae"] == pytest.approx(
        mean_absolute_error(batch.target, batch.prediction), rel=1e-9)


def test_json_round_trip_gives_identical_results() -> None:
    rng = np.random.default_rng(2)
    ref = Reference.fit(_classified(5_000, rng))
    back = Reference.from_dict(json.loads(json.dumps(ref.to_dict())))
    cur = _classified(2_000, rng, shift=0.3)
    a, b = ref.profile(cur), back.profile(cur)
    assert a.to_dict() == b.to_dict()
    assert ref.compare(a).to_dict() == back.compare(b).to_dict()
    assert (ref.estimated_performance(a).to_dict() == back.estimated_performance(b).to_dict())


def test_window_is_a_merge_of_buckets() -> None:
    rng = np.random.default_rng(3)
    ref = Reference.fit(_classified(5_000, rng))
    cur = _classified(3_000, rng, shift=0.5)
    buckets = [ref.profile(cur.iloc[i:i + 100]) for i in range(0, len(cur), 100)]
    merged, whole = Profile.merge_all(buckets), ref.profile(cur)
    for col in ("x", "c", "score"):
        assert (merged.columns[col].counts == whole.columns[col].counts).all()
    assert ref.compare(merged)["x"].value == pytest.approx(ref.compare(whole)["x"].value)
    assert merged.performance.metrics()["accuracy"] == whole.performance.metrics()["accuracy"]


def test_settings_override_method_floor_and_threshold() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=20_000), "c": rng.choice(list("abc"), 20_000)})
    ref = Reference.fit(df)
    cur = df.assign(x=df.x + 0.07)
    assert not ref.compare(cur)["x"].drifted
    low = DriftSettings(floors={"wasserstein": 0.03})
    assert ref.compare(cur, settings=low)["x"].drifted
    per_col = ref.compare(cur, settings={"methods": {"x": "ks"}, "thresholds": {"x": 0.01}})
    assert per_col["x"].method == "ks" and per_col["x"].drifted


def test_bad_settings_and_columns_name_the_problem() -> None:
    rng = np.random.default_rng(5)
    ref = Reference.fit(pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a"], 500)}))
    with pytest.raises(ParameterError, match="Unknown drift method 'nope'"):
        DriftSettings(numerical_method="nope")
    with pytest.raises(ParameterError, match="needs ordered numerical bins; column 'c'"):
        ref.compare(ref.profile_, settings={"methods": {"c": "wasserstein"}})
    with pytest.raises(SchemaError, match="'zz'"):
        ref.compare(ref.profile_, columns=["zz"])
    with pytest.raises(ParameterError, match="'bins' parameter of Reference must be an int"):
        Reference.fit(pd.DataFrame({"x": [1.0, 2.0]}), bins=1)
