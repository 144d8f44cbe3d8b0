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


def test_score_labelled_with_the_first_class_is_read_as_that_class() -> None:
    rng = np.random.default_rng(6)
    df = _classified(6_000, rng)
    names = {0: "stayed", 1: "churned"}
    v = df.assign(target=df.target.map(names), prediction=df.prediction.map(names))
    ref = Reference.fit(v, target="target", prediction="prediction", scores={"score": "churned"})
    real = ref.realised_performance(v)
    # classes sort as ('churned', 'stayed'): metrics are for 'stayed' as the positive class.
    assert real["roc_auc"] == pytest.approx(roc_auc_score(v.target == "stayed", 1 - v.score),
                                            abs=0.005)
    assert real["roc_auc"] > 0.5


def test_one_column_cannot_take_two_roles() -> None:
    df = _classified(100, np.random.default_rng(7))
    with pytest.raises(SchemaError, match="'target' was named both as target and as prediction"):
        Reference.fit(df, target="target", prediction="target")


def test_scores_may_be_a_single_name() -> None:
    df = _classified(500, np.random.default_rng(8)).rename(columns={"score": "p"})
    ref = Reference.fit(df, target="target", prediction="prediction", scores="p")
    assert ref.schema_["p"].role.value == "score"


def test_booleans_as_ints_or_text_match_the_reference() -> None:
    rng = np.random.default_rng(9)
    df = pd.DataFrame({"b": rng.random(3_000) < 0.4, "x": rng.normal(size=3_000)})
    ref = Reference.fit(df)
    for cur in (df.assign(b=df.b.astype(int)), df.assign(b=df.b.map({True: "True",
                                                                     False: "FALSE"}))):
        assert ref.check_quality(cur).findings == ()
        assert not ref.compare(cur)["b"].drifted


def test_absent_column_is_not_measured_rather_than_not_drifted() -> None:
    rng = np.random.default_rng(10)
    df = pd.DataFrame({"x": rng.normal(size=2_000), "y": rng.normal(size=2_000)})
    col = Reference.fit(df).compare(df.drop(columns=["y"]))["y"]
    assert not col.measured and col.level == "no data" and not col.drifted
    assert col.to_dict()["value"] is None


def test_friendly_errors_for_common_mistakes() -> None:
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"x": rng.normal(size=500)})
    ref = Reference.fit(df)
    with pytest.raises(ParameterError, match="Unknown argument\\(s\\) \\['targt'\\]"):
        Reference.fit(df, targt="x")
    with pytest.raises(ParameterError, match="Unknown drift setting\\(s\\) \\['alpah'\\]"):
        Reference.fit(df, drift={"alpah": 0.1})
    with pytest.raises(ParameterError, match="floors\\['wasserstein'\\]"):
        DriftSettings(floors={"wasserstein": -1})
    with pytest.raises(SchemaError, match="not in the schema"):
        ref.compare(df, settings={"thresholds": {"typo": 0.2}})
    with pytest.raises(KeyError, match="No drift result for column 'nope'"):
        ref.compare(df)["nope"]
    with pytest.raises(Exception, match="got a Series"):
        Reference.fit(df["x"])
    assert ref.check_quality(df, settings={"alpha": 0.01}).ok


def test_labels_arriving_later_add_to_the_window_without_double_counting() -> None:
    rng = np.random.default_rng(12)
    ref = Reference.fit(_classified(5_000, rng))
    batch = _classified(2_000, rng, shift=0.4)
    window = ref.profile(batch.drop(columns=["target"]))
    assert window.performance is None
    late = ref.profile(batch.iloc[:1_500], labels_only=True)
    assert late.n_rows == 0 and late.columns == {}
    merged = window + late
    assert merged.n_rows == 2_000
    assert merged.columns["x"].count == 2_000
    real = ref.realised_performance(merged)
    labelled = batch.iloc[:1_500]
    assert real["accuracy"] == pytest.approx(accuracy_score(labelled.target, labelled.prediction))
    with pytest.raises(Exception, match="No labelled rows"):
        ref.profile(batch.drop(columns=["target"]), labels_only=True)
