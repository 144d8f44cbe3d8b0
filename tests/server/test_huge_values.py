"""Finite but huge values (a diverging regressor predicting 1e200) and a model whose stored
data cannot be read: every route answers, reasons say why, and the alert cycle goes on for
the other models. Real server, SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles, models
from tests.server.conftest import evaluate
from tests.server.live import ThreadServer

REF = "x,pred,y\n1,1.5,1.4\n2,2.5,2.6\n3,3.1,3.0\n4,4.2,4.1\n5,5.0,5.2\n"
VOLUME = {"metric": "volume", "window": "1h", "op": ">", "critical": 0}


def _regression(http: httpx.Client, name: str) -> None:
    http.post("/models", json={"name": name, "task": "regression"}).raise_for_status()
    http.put(f"/models/{name}/versions/v1/reference", params={"target": "y", "prediction": "pred"},
             headers={"content-type": "text/csv"}, content=REF).raise_for_status()
    http.put(f"/rules/{name}/vol", json=VOLUME).raise_for_status()


def _alerts(http: httpx.Client, name: str) -> dict[str, dict]:
    r = http.get(f"/models/{name}/alerts")
    assert r.status_code == 200, r.text
    return {a["labels"]["rule"]: a["state"] for a in r.json()}


def test_huge_prediction_gives_reasons_not_500(http: httpx.Client) -> None:
    for name in ("huge-a", "huge-b"):
        _regression(http, name)
    http.post("/models/huge-a/predictions",
              json=[{"prediction_id": "a", "x": 1, "pred": 1e200}]).raise_for_status()
    assert http.post("/models/huge-a/labels",
                     json=[{"prediction_id": "a", "label": 1}]).json()["joined"] == 1
    http.post("/models/huge-b/predictions",
              json=[{"prediction_id": "b", "x": 2, "pred": 2.5}]).raise_for_status()
    for metric in ("performance", "estimate_gap", "estimated_performance"):
        r = http.get("/models/huge-a/metrics", params={"metric": metric, "start": "-1h"})
        assert r.status_code == 200, (metric, r.text)
    value = http.get("/models/huge-a/metrics", params={"metric": "performance", "start": "-1h"}
                     ).json()["points"][-1]["value"]
    assert value["metrics"]["rmse"] is None and value["metrics"]["mae"] == 1e200
    assert "overflowed" in value["reasons"]["rmse"] and "overflowed" in value["reasons"]["r2"]
    assert http.get("/models/huge-a/rca").status_code == 200
    out = evaluate(http)
    assert out["evaluated"]
    for name in ("huge-a", "huge-b"):
        assert _alerts(http, name)["vol"]["phase"] == "firing"


def test_one_unreadable_model_does_not_stop_the_others(server: ThreadServer,
                                                       http: httpx.Client) -> None:
    # "aaa-..." is listed (by name) before the healthy model
    _regression(http, "aaa-broken")
    _regression(http, "zzz-healthy")
    for name in ("aaa-broken", "zzz-healthy"):
        http.post(f"/models/{name}/predictions",
                  json=[{"prediction_id": "p", "x": 1, "pred": 1.5}]).raise_for_status()
    db = Database(server.settings.database_url)
    try:
        with db.write() as conn:  # its stored partials no longer decode
            mid = conn.execute(models.select().where(models.c.name == "aaa-broken")).one().id
            conn.execute(update(bucket_profiles).where(bucket_profiles.c.model_id == mid)
                         .values(data=b"not a partial"))
    finally:
        db.dispose()
    out = evaluate(http)
    assert out["errors"] >= 1
    healthy = _alerts(http, "zzz-healthy")
    assert healthy["vol"]["phase"] == "firing"
    broken = _alerts(http, "aaa-broken")
    assert broken["vol"]["phase"] == "error"
    assert "aaa-broken" in broken["vol"]["error"] and "v1" in broken["vol"]["error"]


def test_drift_of_a_huge_value_is_measured_or_says_why(http: httpx.Client) -> None:
    # a 5-row reference cannot describe a distribution: no verdict, and the reason says so
    _regression(http, "tiny-ref")
    http.post("/models/tiny-ref/predictions", json=[
        {"prediction_id": f"l{i}", "x": 1e200, "pred": 1} for i in range(2)]).raise_for_status()
    col = http.get("/models/tiny-ref/metrics", params={"metric": "drift", "start": "-1h"}
                   ).json()["points"][-1]["value"]["columns"]["x"]
    assert col["value"] is None and col["level"] == "no data"
    assert "min_reference (30)" in col["reason"]
    http.put("/rules/tiny-ref/x-drift", json={"metric": "drift", "column": "x", "window": "1h",
                                              "critical": 1, "min_rows": 1}).raise_for_status()
    evaluate(http)
    state = _alerts(http, "tiny-ref")["x-drift"]
    assert state["phase"] == "nodata" and "min_reference" in state["reason"], state
    # against a 300-row reference the same values are far outside it: every distance is a
    # number and the whole mass moved (KS and total variation 1)
    rows = "\n".join(f"{v},{v + 0.5},{v + 0.1}" for v in [i / 60 for i in range(300)])
    http.post("/models", json={"name": "wide-ref", "task": "regression"}).raise_for_status()
    http.put("/models/wide-ref/versions/v1/reference", params={"target": "y", "prediction": "pred"},
             headers={"content-type": "text/csv"}, content="x,pred,y\n" + rows
             ).raise_for_status()
    http.post("/models/wide-ref/predictions", json=[
        {"prediction_id": f"w{i}", "x": 1e200, "pred": 1} for i in range(50)]).raise_for_status()
    col = http.get("/models/wide-ref/metrics", params={"metric": "drift", "start": "-1h"}
                   ).json()["points"][-1]["value"]["columns"]["x"]
    assert col["drifted"] and col["reason"] is None
    assert col["metrics"]["ks"] == pytest.approx(1.0) and col["metrics"]["wasserstein"] > 0


def test_llm_numbers_beyond_the_ingest_bound_are_refused_naming_the_field(
        http: httpx.Client) -> None:
    http.post("/models", json={"name": "bot-huge", "task": "text_generation"}
              ).raise_for_status()
    for field in ("cost", "tokens_in", "tokens_out", "latency_ms"):
        r = http.post("/models/bot-huge/llm-events",
                      json=[{"request_id": f"big-{field}", "output": "ok fine.", field: 1e308}])
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["field"] == field and "1e+18" in detail["message"]
    out = http.post("/models/bot-huge/llm-events", json=[
        {"request_id": "edge", "output": "ok fine.", "cost": 1e18, "tokens_in": 10**18},
        {"request_id": "over", "output": "ok fine.", "tokens_in": 10**19}]).json()
    assert out["rejected"] == 1 and out["received"] == 2, out
    assert out["errors"][0]["field"] == "tokens_in"


def test_a_regression_label_that_is_not_a_number_is_refused_naming_it(http: httpx.Client
                                                                       ) -> None:
    """Outside review (LOW): "x" was joined, counted in `labels`, then silently ignored."""
    _regression(http, "reg-labels")
    http.post("/models/reg-labels/predictions",
              json=[{"prediction_id": p, "x": 1, "pred": 1.5} for p in "abcd"]
              ).raise_for_status()
    got = http.post("/models/reg-labels/labels", json=[
        {"prediction_id": "a", "label": "x"}, {"prediction_id": "b", "label": 2},
        {"prediction_id": "c", "label": "2.5"}, {"prediction_id": "d", "label": "inf"}]).json()
    assert (got["joined"], got["rejected"]) == (2, 2), got
    assert {(e["prediction_id"], e["field"]) for e in got["errors"]} == {("a", "label"),
                                                                       ("d", "label")}
    assert "finite number, got 'x'" in got["errors"][0]["reason"]
    value = http.get("/models/reg-labels/metrics", params={"metric": "performance",
                                                           "start": "-1h"}
                     ).json()["points"][-1]["value"]
    assert value["labels"] == 2
