"""Estimate vs realised on a real server (SQLite and PostgreSQL).

The ``estimate_gap`` rule fires when realised performance leaves the band of its
estimate (CBPE for a classifier, DLE for a regression model) over the same window, once
enough labels arrived: labels with a concept drift (the inputs explain one performance,
the labels say another) fire it; labels that agree with the estimate leave it silent;
a window with too few labels says "not enough labels" instead of judging. The numbers
the server reports are the engine's on the same rows and scikit-learn's realised values.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error
from threadpoolctl import threadpool_limits

from aiwarden.alerting.rules import DEFAULT_MIN_GAP, Rule, rule_value
from aiwarden.engine import Reference
from tests.server.conftest import evaluate, register_model, scored_frame

N = 800  # predictions per model, all labelled except in the thin case
GAP_RULE = {"metric": "estimate_gap", "window": "1h", "op": ">", "warning": 1.0,
            "critical": 2.0}


def regression_frame(n: int, seed: int, noise_scale: float = 1.0) -> pd.DataFrame:
    """y = 2 x + noise whose sd grows with |z| (and in category w); the model predicts 2 x.

    ``noise_scale`` > 1 is a concept drift: the same inputs, larger errors.
    """
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["u", "w"], n, p=[0.7, 0.3])
    sd = (0.3 + np.abs(z)) * np.where(c == "w", 2.0, 1.0) * noise_scale
    return pd.DataFrame({"x": x, "z": z, "c": c, "y": 2 * x + rng.normal(size=n) * sd,
                         "pred": 2 * x})


def _post_classified(http: httpx.Client, name: str, df: pd.DataFrame, t0: float) -> list[str]:
    rows = [{"prediction_id": f"c{i}", "timestamp": t0 + i, "features": {"x": r.x, "c": r.c},
             "prediction": int(r.pred), "scores": float(r.score)}
            for i, r in enumerate(df.itertuples())]
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    return [r["prediction_id"] for r in rows]


def _post_regression(http: httpx.Client, name: str, df: pd.DataFrame, t0: float) -> list[str]:
    rows = [{"prediction_id": f"r{i}", "timestamp": t0 + i,
             "features": {"x": r.x, "z": r.z, "c": r.c}, "prediction": float(r.pred)}
            for i, r in enumerate(df.itertuples())]
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    return [r["prediction_id"] for r in rows]


def _label(http: httpx.Client, name: str, ids: list[str], ys: Any) -> None:
    body = [{"prediction_id": p, "label": y.item() if hasattr(y, "item") else y}
            for p, y in zip(ids, ys, strict=True)]
    r = http.post(f"/models/{name}/labels", json=body)
    assert r.status_code == 200, r.text


def _gap(http: httpx.Client, name: str) -> dict[str, Any]:
    r = http.get(f"/models/{name}/metrics", params={"metric": "estimate_gap"})
    assert r.status_code == 200, r.text
    (point,) = r.json()["points"]
    return point


def _state(http: httpx.Client, name: str, rule: str) -> dict[str, Any]:
    found = [a for a in http.get(f"/models/{name}/alerts").json()
             if a["labels"]["rule"] == rule]
    assert len(found) <= 1, found
    return found[0]["state"] if found else {"phase": "normal"}  # a quiet rule keeps no row


def _concept_drift_labels(df: pd.DataFrame, seed: int) -> np.ndarray:
    """The labels of a changed world: a third of them no longer follow the scores."""
    rng = np.random.default_rng(seed)
    flipped = rng.random(len(df)) < 0.35
    return np.where(flipped, 1 - df.y, df.y)


def test_classifier_whose_labels_leave_the_cbpe_band_fires(http: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    ref_df = scored_frame(3000, seed=0)
    current = scored_frame(N, seed=11, shift=0.4)  # covariate shift only
    t0 = time.time() - 1800
    names = {}
    for case in ("drift", "control", "thin"):
        names[case] = register_model(http, f"gap-{case}-{tag}", ref_df)
        ids = _post_classified(http, names[case], current, t0)
        labels = _concept_drift_labels(current, 12) if case == "drift" else current.y.to_numpy()
        keep = slice(0, 30) if case == "thin" else slice(None)
        _label(http, names[case], ids[keep], labels[keep])
        http.put(f"/rules/{names[case]}/accuracy-gap",
                 json={**GAP_RULE, "stat": "accuracy"}).raise_for_status()

    # What the server reports is the engine's estimate and scikit-learn's realised value.
    with threadpool_limits(limits=1):
        ref = Reference.fit(ref_df, target="y", prediction="pred", scores=["score"])
    sent = current.drop(columns="y")
    want = ref.estimated_performance(ref.profile(sent)).metrics["accuracy"]
    drift_labels = _concept_drift_labels(current, 12)
    point = _gap(http, names["drift"])["value"]
    acc = point["metrics"]["accuracy"]
    assert point["labels"] == N and point["rows"] == N
    assert acc["estimate"] == pytest.approx(want.estimate, abs=1e-9)
    assert acc["realised"] == pytest.approx(accuracy_score(drift_labels, current.pred), abs=1e-12)
    assert acc["realised"] < acc["lower"] and acc["severity"] > 2.0
    control = _gap(http, names["control"])["value"]["metrics"]["accuracy"]
    assert control["realised"] == pytest.approx(accuracy_score(current.y, current.pred),
                                                abs=1e-12)
    assert control["within_band"] and control["severity"] < 1.0

    out = evaluate(http)
    fired = {t["labels"]["model"] for t in out["transitions"] if t["kind"] == "firing"
             and t["labels"]["rule"] == "accuracy-gap"}
    assert fired == {names["drift"]}
    drift_state = _state(http, names["drift"], "accuracy-gap")
    assert drift_state["phase"] == "firing" and drift_state["severity"] == "critical"
    floor = DEFAULT_MIN_GAP * acc["estimate"]
    half = (acc["upper"] - acc["lower"]) / 2
    assert drift_state["value"] == pytest.approx(
        abs(acc["realised"] - acc["estimate"]) / max(half, floor), rel=1e-9)
    assert _state(http, names["control"], "accuracy-gap")["phase"] == "normal"
    # Every scored classifier gets the same check by default, on its main metric.
    assert _state(http, names["drift"], "estimate-gap-roc_auc")["phase"] == "firing"
    assert _state(http, names["control"], "estimate-gap-roc_auc")["phase"] == "normal"
    thin = _state(http, names["thin"], "accuracy-gap")
    assert thin["phase"] == "nodata"
    assert thin["reason"].startswith("not enough labels: 30 labelled rows in the 1h window")
    assert "needs 100 (min_labels)" in thin["reason"]


def test_regression_whose_errors_leave_the_dle_band_fires(http: httpx.Client,
                                                          server: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    ref_df = regression_frame(4000, seed=1)
    hints = {"target": "y", "prediction": "pred"}
    current = regression_frame(N, seed=21)
    drifted = regression_frame(N, seed=21, noise_scale=2.0)  # same inputs, larger errors
    t0 = time.time() - 1800
    names = {}
    for case, labels in (("drift", drifted.y), ("control", current.y)):
        names[case] = register_model(http, f"gapr-{case}-{tag}", ref_df, hints)
        ids = _post_regression(http, names[case], current, t0)
        _label(http, names[case], ids, labels.to_numpy())
        for stat in ("mae", "rmse"):
            http.put(f"/rules/{names[case]}/{stat}-gap",
                     json={**GAP_RULE, "stat": stat}).raise_for_status()

    est = http.get(f"/models/{names['drift']}/metrics",
                   params={"metric": "estimated_performance"}).json()["points"][0]["value"]
    with threadpool_limits(limits=1):
        ref = Reference.fit(ref_df, **hints)
    want = ref.estimated_performance(ref.profile(current.drop(columns="y")))
    assert est["n"] == N
    for m in ("mae", "rmse"):
        assert est["metrics"][m]["estimate"] == pytest.approx(want.metrics[m].estimate, rel=1e-9)
        assert est["metrics"][m]["lower"] == pytest.approx(want.metrics[m].lower, rel=1e-9)
    gap = _gap(http, names["drift"])["value"]["metrics"]
    assert gap["mae"]["realised"] == pytest.approx(
        mean_absolute_error(drifted.y, drifted.pred), rel=1e-9)
    assert gap["rmse"]["realised"] == pytest.approx(
        root_mean_squared_error(drifted.y, drifted.pred), rel=1e-9)
    assert gap["mae"]["realised"] > gap["mae"]["upper"]
    control = _gap(http, names["control"])["value"]["metrics"]
    assert control["mae"]["within_band"] and control["rmse"]["within_band"], control
    assert control["mae"]["realised"] == pytest.approx(
        mean_absolute_error(current.y, current.pred), rel=1e-9)

    out = evaluate(http)
    fired = {(t["labels"]["model"], t["labels"]["rule"]) for t in out["transitions"]
             if t["kind"] == "firing" and t["labels"]["rule"] in ("mae-gap", "rmse-gap")}
    assert fired == {(names["drift"], "mae-gap"), (names["drift"], "rmse-gap")}
    for stat in ("mae", "rmse"):
        assert _state(http, names["control"], f"{stat}-gap")["phase"] == "normal"
    assert _state(http, names["drift"], "estimate-gap-rmse")["phase"] == "firing"
    assert _state(http, names["control"], "estimate-gap-rmse")["phase"] == "normal"

    # The regression estimate reaches Prometheus like CBPE's.
    text = httpx.get(server.url + "/metrics", params={"window": "1h", "model": names["drift"]},
                     timeout=60).text
    samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
               for s in f.samples if s.labels.get("model") == names["drift"]]
    mae = [v for n, lab, v in samples
           if n == "aiwarden_estimated_performance" and lab.get("metric") == "mae"]
    assert mae and mae[0] == pytest.approx(want.metrics["mae"].estimate, rel=1e-6)
    severity = {lab["metric"]: v for n, lab, v in samples
                if n == "aiwarden_estimate_gap_severity"}
    assert severity["mae"] == pytest.approx(gap["mae"]["severity"], rel=1e-6)
    assert severity["mae"] > 2.0

    # The dashboard's performance chart draws the DLE estimate and its band beside RMSE.
    page = httpx.get(f"{server.url}/models/{names['drift']}/panels/charts",
                     params={"range": "1h"}, headers={"HX-Request": "true"}, timeout=120)
    assert page.status_code == 200, page.text
    specs = {x["id"]: x for x in (json.loads(t) for t in re.findall(
        r'<script type="application/json" class="chart-spec">(.*?)</script>', page.text, re.S))}
    perf = specs["performance"]
    assert [x["name"] for x in perf["series"]] == ["realised (labels)", "estimated (DLE)"]
    assert perf["band"]["name"] == "DLE 95 % interval"
    drawn = [v for _, v in perf["series"][1]["data"] if v is not None]
    assert drawn and all(v > 0 for v in drawn)


def test_estimate_gap_rules_are_validated(http: httpx.Client) -> None:
    name = f"gapv-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    bad = http.put(f"/rules/{name}/x", json={**GAP_RULE, "stat": "log_loss"})
    assert bad.status_code == 422 and "estimate_gap" in bad.text
    wrong = http.put(f"/rules/{name}/y", json={"metric": "drift", "column": "x",
                                               "critical": 1.0, "min_labels": 10})
    assert wrong.status_code == 422
    assert wrong.json()["detail"]["field"] == "rules[0]"
    ok = http.put(f"/rules/{name}/z", json={**GAP_RULE, "stat": "rmse", "min_labels": 0,
                                            "min_gap": 0.1})
    assert ok.status_code in (200, 201), ok.text
    floor = http.put(f"/rules/{name}/w", json={"metric": "performance", "critical": 0.5,
                                               "min_gap": 0.1})
    assert floor.status_code == 422 and "min_gap" in floor.text


def test_a_gap_must_be_material_as_well_as_outside_the_band() -> None:
    """On a large window the band is narrower than the estimators' own error: a 2 % gap
    just outside a tight band is not an alert by default, a 20 % one is."""
    payload = {"labels": 50_000, "metrics": {"mae": {
        "estimate": 1.00, "realised": 1.02, "lower": 0.99, "upper": 1.01}}}
    rule = Rule(name="g", **{**GAP_RULE, "stat": "mae"})
    assert rule_value(rule, payload) == pytest.approx(0.02 / (DEFAULT_MIN_GAP * 1.00))
    assert rule_value(rule, payload) < 1.0
    strict = Rule(name="g", **{**GAP_RULE, "stat": "mae", "min_gap": 0.0})
    assert rule_value(strict, payload) == pytest.approx(2.0)  # the band alone
    payload["metrics"]["mae"]["realised"] = 1.2
    assert rule_value(rule, payload) == pytest.approx(4.0)
    payload["metrics"]["mae"]["realised"] = None  # no realised value: no number
    assert rule_value(rule, payload) is None


def test_a_gap_confined_to_one_segment_fires_for_that_segment_only(http: httpx.Client) -> None:
    """BR's labels stop following the scores; the rule split by country names BR alone."""
    from aiwarden.sdk._payload import to_parquet

    countries, shares = ["US", "BR", "DE", "FR"], [0.4, 0.25, 0.2, 0.15]

    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=n)
        score = 1 / (1 + np.exp(-3 * x))
        return pd.DataFrame({"x": x, "country": rng.choice(countries, n, p=shares),
                             "score": score, "pred": (score > 0.5).astype(int),
                             "y": (rng.random(n) < score).astype(int)})

    name = f"gaps-{uuid.uuid4().hex[:6]}"
    hints = {"target": "y", "prediction": "pred", "scores": "score", "segments": "country"}
    import pyarrow as pa

    http.post("/models", json={"name": name}).raise_for_status()
    http.put(f"/models/{name}/versions/v1/reference",
             content=to_parquet(pa.Table.from_pandas(frame(6000, 0), preserve_index=False)),
             params=hints, headers={"content-type": "application/vnd.apache.parquet"}
             ).raise_for_status()
    cur = frame(2000, 1)
    t0 = time.time() - 2400
    sent = [{"prediction_id": f"s{i}", "timestamp": t0 + i, "features": {"x": r.x},
             "tags": {"country": r.country}, "prediction": int(r.pred),
             "scores": float(r.score)} for i, r in enumerate(cur.itertuples())]
    http.post(f"/models/{name}/predictions", json=sent).raise_for_status()
    labels = np.where(cur.country == "BR", 1 - cur.y, cur.y)
    _label(http, name, [r["prediction_id"] for r in sent], labels)
    http.put(f"/rules/{name}/gap-by-country", json={
        "metric": "estimate_gap", "stat": "accuracy", "segment_by": "country",
        "window": "1h", "op": ">", "critical": 3.0}).raise_for_status()
    evaluate(http)
    states = {a["labels"].get("segment"): a["state"]
              for a in http.get(f"/models/{name}/alerts").json()
              if a["labels"]["rule"] == "gap-by-country"}
    assert states.pop("country=BR")["phase"] == "firing"
    other = states.pop("country=__other__")  # every country is kept: no rows at all
    assert other["phase"] == "nodata"
    assert {s["phase"] for s in states.values()} <= {"normal"}, states  # US, DE, FR quiet
    br = http.get(f"/models/{name}/metrics", params={
        "metric": "estimate_gap", "segment": "country:BR"}).json()["points"][0]["value"]
    mask = (cur.country == "BR").to_numpy()
    assert br["labels"] == mask.sum()
    assert br["metrics"]["accuracy"]["realised"] == pytest.approx(
        accuracy_score(labels[mask], cur.pred[mask]), abs=1e-12)
