"""RCA on real stores: the seed's three stories, each with the right suspects on top."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.demo.synthetic import fraud_scenario
from aiwarden.monitoring.service import Monitor
from aiwarden.rca import analyse, to_markdown


def _frame(n: int, rng: np.random.Generator, shifted: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame({f"f{i}": rng.normal(0, 1, n) for i in range(6)})
    df["kind"] = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    for c in shifted:
        df[c] = df[c] + 1.0
    df["score"] = 1 / (1 + np.exp(-df["f0"]))
    df["pred"] = (df["score"] > 0.5).astype(int)
    df["y"] = (rng.random(n) < df["score"]).astype(int)
    return df


def _rows(df: pd.DataFrame, t0: float, prefix: str, feats: list[str],
          pred: str, score: str) -> list[dict]:
    recs = df[feats].to_dict("records")
    return [{"prediction_id": f"{prefix}{i}", "timestamp": t0 + i * 0.5, "features": recs[i],
             "prediction": int(df[pred].iat[i]), "scores": float(df[score].iat[i])}
            for i in range(len(df))]


def test_three_drifted_features_are_named_and_ranked_first(monitor: Monitor) -> None:
    rng = np.random.default_rng(1)
    name = f"rca-d-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="binary")
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(_frame(5000, rng)),
                             {"target": "y", "prediction": "pred", "scores": "score"})
    now = time.time()
    cur = _frame(2000, rng, shifted=("f1", "f3", "f4"))
    feats = [f"f{i}" for i in range(6)] + ["kind"]
    monitor.log_predictions(name, _rows(cur, now - 1500, "d", feats, "pred", "score"))
    report = analyse(monitor, name, start=now - 1800, end=now)
    assert set(report["drift"]["drifted_features"]) == {"f1", "f3", "f4"}
    top3 = report["suspects"][:3]
    assert {s["name"] for s in top3} == {"f1", "f3", "f4"} and all(
        s["kind"] == "drift" for s in top3)
    shares = [d["contribution"] for d in report["drift"]["features"]]
    assert report["drift"]["contribution_method"] == "domain classifier"
    assert sum(shares) > 0.9  # the three shifted features carry the classifier's signal
    md = to_markdown(report)
    assert "# Root-cause analysis" in md and "| f1 |" in md


def test_the_fraud_models_failing_slice_is_small_amounts(monitor: Monitor) -> None:
    scen = fraud_scenario(seed=3, n_train=20_000, n_batch=6_000)
    name = f"rca-f-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="binary")
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(scen.reference),
                             {"target": "is_fraud", "prediction": "prediction",
                              "scores": "score"})
    now = time.time()
    prod = scen.production
    rows = _rows(prod, now - 3500, "t", list(scen.features), "prediction", "score")
    monitor.log_predictions(name, rows)
    monitor.log_labels(name, [{"prediction_id": r["prediction_id"], "label": int(y)}
                              for r, y in zip(rows, prod["is_fraud"], strict=True)])
    report = analyse(monitor, name, start=now - 3600, end=now)
    top = report["slices"]["slices"][0]
    assert top["conditions"][0][0] == "amount" and top["conditions"][0][1] in ("<", "<=")
    assert 5 <= float(top["conditions"][0][2]) <= 12  # "amount < 10", give or take rounding
    best_slice = next(s for s in report["suspects"] if s["kind"] == "slice")
    assert "amount" in best_slice["name"]


def test_a_corrupted_batch_is_named_row_by_row(monitor: Monitor) -> None:
    rng = np.random.default_rng(2)
    name = f"rca-q-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="binary")
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(_frame(4000, rng)),
                             {"target": "y", "prediction": "pred", "scores": "score"})
    now = time.time()
    feats = [f"f{i}" for i in range(6)] + ["kind"]
    good = _rows(_frame(1000, rng), now - 3000, "ok", feats, "pred", "score")
    monitor.log_predictions(name, good)
    bad = _rows(_frame(30, rng), now - 600, "bad", feats, "pred", "score")
    bad[0]["features"]["f2"] = float("nan")
    bad[1]["features"]["f2"] = None
    bad[2]["features"]["f5"] = "not a number"
    bad[3]["features"]["kind"] = "zzz-never-seen"
    for r in bad[4:7]:
        r["features"]["f1"] = 1e308
    monitor.log_predictions(name, bad)
    report = analyse(monitor, name, start=now - 3600, end=now)
    found = {(f["check"], f["column"]): f for f in report["quality"]["findings"]}
    far = found[("far_out_of_range", "f1")]
    assert set(far["prediction_ids"]) == {"bad4", "bad5", "bad6"} and far["new"]
    assert "bad3" in found[("unseen_category", "kind")]["prediction_ids"]
    rejected = next(s for s in report["suspects"] if s["name"] == "quarantined:features.f5")
    assert rejected["evidence"]["prediction_ids"] == ["bad2"]
    assert report["suspects"][0]["kind"] == "quality"
    md = to_markdown(report)
    assert "bad4" in md and "quarantined" in md


def test_a_regressors_failing_slice_is_read_in_the_labels_units(monitor: Monitor) -> None:
    """A regressor's slices rank by absolute error: the RCA says "mean absolute error 2.9 vs
    1.1", in the label's units (it printed "error 290.0% vs 110.0%")."""
    rng = np.random.default_rng(4)

    def frame(n: int, noisy_high_a: bool) -> pd.DataFrame:
        a, b = rng.normal(size=n), rng.uniform(0, 5, n)
        pred = 2 * a + b
        scale = np.where((a > 0.5) & noisy_high_a, 4.0, 1.0)
        return pd.DataFrame({"a": a, "b": b, "pred": pred,
                             "y": pred + rng.normal(scale=scale)})

    name = f"rca-r-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="regression")
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(frame(3000, False)),
                             {"target": "y", "prediction": "pred"})
    now = time.time()
    cur = frame(2000, True)
    rows = [{"prediction_id": f"r{i}", "timestamp": now - 1500 + i * 0.5,
             "features": {"a": float(cur.a.iat[i]), "b": float(cur.b.iat[i])},
             "prediction": float(cur.pred.iat[i])} for i in range(len(cur))]
    monitor.log_predictions(name, rows)
    monitor.log_labels(name, [{"prediction_id": f"r{i}", "label": float(y)}
                              for i, y in enumerate(cur.y)])
    report = analyse(monitor, name, start=now - 1800, end=now)
    assert report["slices"]["metric"] == "abs_error"
    top = report["slices"]["slices"][0]
    assert top["conditions"][0][0] == "a"
    err = np.abs(cur.y - cur.pred)
    inside = cur.eval(top["description"].replace(" and ", " & "))
    assert top["metric_value"] == pytest.approx(err[inside].mean(), rel=1e-9)
    said = f"mean absolute error {top['metric_value']:.3g} vs {top['rest_value']:.3g} elsewhere"
    best = next(s for s in report["suspects"] if s["kind"] == "slice")
    assert said in best["summary"] and "%" not in best["summary"]
    assert f"{top['description']}: {said} ({top['support']} rows)" in to_markdown(report)


def test_an_llm_slice_is_named_from_a_few_dozen_judged_responses() -> None:
    """Every response is judged on arrival: 30 are enough for the slice finder to name the
    locale where answers turned unsafe (labels-based slices still wait for 50)."""
    from aiwarden.engine.schema import Column, ColumnType, Role, Schema, Task
    from aiwarden.rca.analysis import failing_slices

    schema = Schema((Column("locale", ColumnType.CATEGORICAL, Role.SEGMENT),
                     Column("llm_unsafe", ColumnType.NUMERICAL, Role.FEATURE)),
                    task=Task.TEXT_GENERATION)
    locale = ["en-AU"] * 10 + ["en-GB"] * 10 + ["fr-FR"] * 10
    rows = pa.table({"locale": locale, "version": ["2"] * 30,
                     "llm_unsafe": [1.0] * 9 + [0.0] * 21})
    judged, slices = failing_slices(schema, rows)
    assert judged == 30
    assert slices and slices[0]["description"] == "locale = en-AU", slices
    assert failing_slices(schema, rows.slice(0, 15)) == (0, [])
