"""The gateway refuses what monitoring would quarantine (outside review of 2026-12-06,
finding 4), through a real server on SQLite and PostgreSQL: a boolean in a numerical
feature, a prediction_id holding NUL, a list or text in a numerical feature are a 422
naming the field before the model runs; each refused row is logged once as a failed
prediction (what ingest refuses taken out), so it is an error event, never quarantined."""

from __future__ import annotations

import time
from typing import Any

import httpx

from aiwarden.sdk import Client
from tests.server.test_gateway_input_checks import GOOD, client, fraud, server

__all__ = ["client", "fraud", "server"]  # the fixtures, shared with the input checks


def _refused(resp: httpx.Response, field: str, reason: str) -> None:
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert detail["error"] == "invalid_input" and detail["field"] == field, detail
    assert reason in detail["message"], detail


def test_what_ingest_would_quarantine_is_refused_and_logged_as_an_error(
        http: httpx.Client, client: Client, fraud: Any) -> None:
    post = lambda body: http.post("/models/fraud/predict", json=body)  # noqa: E731
    _refused(post({"features": {**GOOD, "amount": True}, "prediction_id": "ig-bool"}),
             "features.amount", "expected a number, got a boolean")
    _refused(post({"features": GOOD, "prediction_id": "ig\x00nul"}),
             "prediction_id", "NUL character")
    _refused(post({"features": {**GOOD, "amount": "abc"}, "prediction_id": "ig-text"}),
             "features.amount", "expected a number, got 'abc'")
    _refused(post({"features": {**GOOD, "amount": [1]}, "prediction_id": "ig-list"}),
             "features.amount", "got an object or list")
    _refused(post({"rows": [{"features": GOOD, "prediction_id": "ig-b0"},
                            {"features": {**GOOD, "country": {"a": 1}},
                             "prediction_id": "ig-b1"}]}),
             "features.country", "(row 1): expected a scalar, got an object or list")
    # what ingest takes still reaches the model: a numeric text is the gateway's own 422,
    # an integer id is text to ingest
    _refused(post({"features": {**GOOD, "amount": "12.5"}, "prediction_id": "ig-num"}),
             "features.amount", "expected a number, got text")
    ok = post({"features": GOOD, "prediction_id": 4242})
    assert ok.status_code == 200 and ok.json()["prediction_id"] == "4242", ok.text

    assert http.post("/models/fraud/gateway/flush").json()["flushed"]
    quarantined = http.get("/models/fraud/quarantine", params={"limit": 1000}).json()
    assert not [r for r in quarantined if str(r["prediction_id"]).startswith("ig")], \
        quarantined
    events = client.export_events("fraud", time.time() - 3600, time.time() + 3600).to_pandas()
    mine = events[events.prediction_id.astype(str).str.startswith("ig")]
    by_id = mine.set_index("prediction_id")
    # one error event per refused row; the NUL id is logged under a fresh id
    assert sorted(by_id.index) == sorted(["ig-bool", "ig-text", "ig-list", "ig-b0", "ig-b1",
                                          "ig-num"]), by_id
    assert by_id["error"].notna().all(), by_id["error"]
    assert "expected a number, got a boolean" in by_id.loc["ig-bool", "error"]
    assert by_id.loc["ig-bool", "amount"] != by_id.loc["ig-bool", "amount"]  # dropped: NaN
    assert by_id.loc["ig-num", "amount"] == 12.5  # ingest took it: kept as sent
    nul = events[events["error"].fillna("").str.contains("NUL character")]
    assert len(nul) == 1 and "\x00" not in nul.prediction_id.iloc[0], nul
    stats = http.get("/models/fraud/gateway").json()["gateways"]
    assert sum(g["by_version"]["1"]["errors"] for g in stats) >= 7, stats
