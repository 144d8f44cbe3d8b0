"""Per-class monitoring over real HTTP (SQLite and PostgreSQL): the confusion matrix over
time, per-class recall/precision and confused pairs checked against scikit-learn on the
raw labelled rows; the ``confusion`` / ``class_recall`` rule metrics fire when bananas
start being called cucumbers; bad class names are 4xx naming the field.

One server per module and backend, its alert loop off so the test steps time itself.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from aiwarden.cli import main as cli
from aiwarden.sdk import Client
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

CLASSES = ["apple", "banana", "cucumber"]
HOUR = 3600
N_PER_HOUR = 300


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   evaluate_every=0)) as srv:
        yield srv


def _predicted(rng: np.random.Generator, y: np.ndarray, wrong: float,
               banana_to_cucumber: np.ndarray | float = 0.0) -> np.ndarray:
    """``y`` with a share ``wrong`` swapped to another class, then bananas called cucumbers
    with probability ``banana_to_cucumber`` (per row)."""
    pred = y.copy()
    flip = rng.random(len(y)) < wrong
    for i in np.flatnonzero(flip):
        pred[i] = rng.choice([c for c in CLASSES if c != y[i]])
    called = (y == "banana") & (rng.random(len(y)) < banana_to_cucumber)
    pred[called] = "cucumber"
    return pred


def _hour(rng: np.random.Generator, start: float, hour: int, shifted: bool) -> pd.DataFrame:
    """One hour of kiosk traffic; in the ``shifted`` hour store s2's bananas look dark and
    are mostly called cucumbers."""
    n = N_PER_HOUR
    y = rng.choice(CLASSES, n, p=[0.3, 0.4, 0.3])
    store = rng.choice(["s1", "s2"], n)
    p = np.where(store == "s2", 0.8, 0.1) if shifted else 0.0
    ts = start + 30 + np.arange(n) * (HOUR - 60) / n
    return pd.DataFrame({"pid": [f"h{hour}-{i}" for i in range(n)], "ts": ts, "y": y,
                         "pred": _predicted(rng, y, 0.08, p), "store": store,
                         "x": rng.normal(size=n)})


@pytest.fixture(scope="module")
def kiosk(server: ThreadServer) -> dict[str, Any]:
    """A fruit classifier with three hours of traffic ending at ``end``; labels arrive late
    (hour 0's before its predictions, the others after), ~8 % never, one is no class."""
    rng = np.random.default_rng(16)
    name = f"kiosk-{uuid.uuid4().hex[:8]}"
    ref_y = rng.choice(CLASSES, 900)
    ref = pd.DataFrame({"x": rng.normal(size=900), "store": rng.choice(["s1", "s2"], 900),
                        "pred": _predicted(rng, ref_y, 0.08), "y": ref_y})
    end = float(int(time.time()) // 60 * 60)
    frames = [_hour(rng, end - (3 - h) * HOUR, h, shifted=h == 2) for h in range(3)]
    events = pd.concat(frames, ignore_index=True)
    events["label"] = np.where(rng.random(len(events)) < 0.92, events.y, None)
    events.loc[5, "label"] = "kiwi"  # a label that is no class: in no cell, as sklearn
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        register_model(http, name, ref, {"target": "y", "prediction": "pred",
                                         "segments": "store"})

        def labels(df: pd.DataFrame) -> None:
            body = [{"prediction_id": r.pid, "label": r.label}
                    for r in df.itertuples() if pd.notna(r.label)]
            http.post(f"/models/{name}/labels", json=body).raise_for_status()

        labels(frames[0].join(events.label))  # waits for its predictions
        for df in frames:
            rows = [{"prediction_id": r.pid, "timestamp": r.ts, "features": {"x": r.x},
                     "tags": {"store": r.store}, "prediction": r.pred}
                    for r in df.itertuples()]
            out = http.post(f"/models/{name}/predictions", json=rows)
            assert out.status_code == 200 and out.json()["accepted"] == len(rows), out.text
        labels(events.iloc[N_PER_HOUR:])  # late labels join stored predictions
        assert http.get(f"/models/{name}").json()["labels_pending"] == 0
    return {"name": name, "end": end, "events": events}


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def _expected(df: pd.DataFrame) -> dict[str, Any]:
    """scikit-learn on the raw labelled rows; a label that is no class counts nowhere
    (sklearn's precision would count it as a false positive of the predicted class)."""
    lab = df[df.label.notna()]
    known = lab[lab.label.isin(CLASSES)]
    y, p = known.label.astype(str), known.pred
    cm = confusion_matrix(y, p, labels=CLASSES)
    kw = {"labels": CLASSES, "average": None, "zero_division": np.nan}
    return {"matrix": cm, "recall": recall_score(y, p, **kw),
            "precision": precision_score(y, p, **kw), "labels": len(lab)}


def _check(window: dict[str, Any], df: pd.DataFrame) -> None:
    want = _expected(df)
    np.testing.assert_array_equal(np.asarray(window["matrix"]), want["matrix"])
    assert window["labels"] == want["labels"]
    assert window["n"] == want["matrix"].sum()
    got = {pc["class"]: pc for pc in window["per_class"]}
    for k, c in enumerate(CLASSES):
        assert got[c]["support"] == want["matrix"][k].sum()
        assert got[c]["recall"] == pytest.approx(want["recall"][k], abs=1e-12)
        assert got[c]["precision"] == pytest.approx(want["precision"][k], abs=1e-12)
    cm = want["matrix"]
    off = sorted((cm[i, j] for i in range(3) for j in range(3) if i != j and cm[i, j]),
                 reverse=True)
    assert [p["count"] for p in window["pairs"]] == off[:len(window["pairs"])]
    for p in window["pairs"]:  # each pair's count and rate from its own cell
        i, j = CLASSES.index(p["true"]), CLASSES.index(p["pred"])
        assert p["count"] == cm[i, j]
        assert p["rate"] == pytest.approx(cm[i, j] / cm[i].sum(), abs=1e-12)


def test_confusion_over_time_matches_sklearn(http: httpx.Client, kiosk: dict) -> None:
    name, end, ev = kiosk["name"], kiosk["end"], kiosk["events"]
    r = http.get(f"/models/{name}/confusion", params={"window": "3h", "end": end,
                                                       "step": "1h"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["classes"] == CLASSES and got["step"] == HOUR and len(got["points"]) == 3
    for h, point in enumerate(got["points"]):
        _check(point, ev[(ev.ts >= end - (3 - h) * HOUR) & (ev.ts < end - (2 - h) * HOUR)])
        assert point["rows"] == N_PER_HOUR
    _check(got["total"], ev)
    last = got["points"][-1]["pairs"][0]
    assert (last["true"], last["pred"]) == ("banana", "cucumber")
    want = _expected(ev[ev.ts >= end - HOUR])["matrix"]
    assert last["rate"] == pytest.approx(want[1, 2] / want[1].sum(), abs=1e-12)
    assert last["rate"] > 0.3 > got["points"][0]["pairs"][0]["rate"]


def test_segment_and_metrics_api_agree(http: httpx.Client, kiosk: dict) -> None:
    name, end, ev = kiosk["name"], kiosk["end"], kiosk["events"]
    r = http.get(f"/models/{name}/confusion", params={
        "start": end - HOUR, "end": end, "segment": "store:s2", "top": 2})
    assert r.status_code == 200, r.text
    assert r.json()["step"] == 300 and len(r.json()["points"]) == 12  # the default step
    _check(r.json()["total"], ev[(ev.ts >= end - HOUR) & (ev.store == "s2")])
    assert len(r.json()["total"]["pairs"]) <= 2
    series = http.get(f"/models/{name}/metrics", params={
        "metric": "confusion", "start": end - 3 * HOUR, "end": end}).json()
    (whole,) = series["points"]
    _check(whole["value"], ev)


def test_default_step_and_sdk_and_cli(server: ThreadServer, kiosk: dict,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    name, end = kiosk["name"], kiosk["end"]
    with Client(server.url) as c:
        got = c.confusion(name, "3h", end=end)
    assert got["step"] == 300 and len(got["points"]) == 36  # about 48 points at most
    assert sum(p["labels"] for p in got["points"]) == got["total"]["labels"]
    np.testing.assert_array_equal(
        np.sum([p["matrix"] for p in got["points"] if p.get("matrix")], axis=0),
        got["total"]["matrix"])
    assert cli(["confusion", name, "--url", server.url, "--window", "3h", "--end",
                str(int(end)), "--step", "1h"]) == 0
    out = capsys.readouterr().out
    assert "banana -> cucumber" in out and "true \\ predicted" in out
    assert cli(["confusion", "no-such-model", "--url", server.url]) == 3


def _rule(http: httpx.Client, name: str, rule_name: str, spec: dict[str, Any]) -> None:
    r = http.put(f"/rules/{name}/{rule_name}", json=spec)
    assert r.status_code == 200, r.text


def _state(http: httpx.Client, name: str, rule_name: str) -> dict[str, Any]:
    (alert,) = [a for a in http.get(f"/models/{name}/alerts").json()
                if a["labels"]["rule"] == rule_name and "pair" not in a["labels"]]
    return alert["state"]


def test_alert_fires_when_bananas_become_cucumbers(http: httpx.Client, kiosk: dict) -> None:
    name, end, ev = kiosk["name"], kiosk["end"], kiosk["events"]
    _rule(http, name, "banana-cucumber", {"metric": "confusion", "pair": "banana->cucumber",
                                          "window": "1h", "op": ">", "warning": 0.15,
                                          "critical": 0.25, "min_labels": 50})
    _rule(http, name, "banana-recall", {"metric": "class_recall", "class": "banana",
                                        "window": "1h", "op": "<", "critical": 0.7})
    _rule(http, name, "worst-pair", {"metric": "confusion", "stat": "count", "window": "1h",
                                     "op": ">", "critical": 30})
    before = _expected(ev[(ev.ts >= end - 2 * HOUR) & (ev.ts < end - HOUR)])
    after = _expected(ev[ev.ts >= end - HOUR])
    _rule(http, name, "each-pair", {"metric": "confusion", "pair": "*", "window": "1h",
                                    "op": ">", "critical": 0.25})
    mine = {"banana-cucumber", "banana-recall", "worst-pair", "each-pair"}
    cm = before["matrix"]  # the hour before: every value on the quiet side
    assert cm[1, 2] / cm[1].sum() < 0.15 and before["recall"][1] > 0.7
    assert cm[~np.eye(3, dtype=bool)].max() <= 30
    r = http.post("/alerts/evaluate", params={"now": end - HOUR})
    assert r.status_code == 200 and r.json()["evaluated"], r.text
    assert not [t for t in r.json()["transitions"] if t["labels"]["rule"] in mine]
    r = http.post("/alerts/evaluate", params={"now": end})
    assert r.status_code == 200 and r.json()["evaluated"], r.text
    fired = {(t["labels"]["rule"], t["labels"].get("pair")): t for t in r.json()["transitions"]
             if t["labels"]["rule"] in mine and t["kind"] == "firing"}
    cm = after["matrix"]
    rates = cm / cm.sum(axis=1, keepdims=True)
    breached = {f"{CLASSES[i]}->{CLASSES[j]}" for i in range(3) for j in range(3)
                if i != j and rates[i, j] > 0.25}
    assert breached == {"banana->cucumber"}
    assert set(fired) == {(r, None) for r in mine - {"each-pair"}} | {
        ("each-pair", p) for p in breached}, r.json()["transitions"]
    assert fired[("each-pair", "banana->cucumber")]["value"] == pytest.approx(rates[1, 2])
    pair = _state(http, name, "banana-cucumber")
    assert pair["value"] == pytest.approx(cm[1, 2] / cm[1].sum(), abs=1e-12)
    assert pair["phase"] == "firing" and pair["severity"] == "critical"
    recall = _state(http, name, "banana-recall")
    assert recall["value"] == pytest.approx(after["recall"][1], abs=1e-12)
    assert _state(http, name, "worst-pair")["value"] == cm[~np.eye(3, dtype=bool)].max()
    (inc,) = http.get("/incidents", params={"model": name}).json()
    detail = http.get(f"/incidents/{inc['id']}").json()
    # one performance incident holds them all; its RCA names the store whose bananas went
    (rca,) = [e["detail"] for e in detail["timeline"] if e["kind"] == "action"]
    assert {a["rule"] for a in detail["alerts"]} >= mine
    assert rca["suspects"][0]["name"] == "store = s2", rca["markdown"]


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"metric": "confusion", "pair": "banana->kiwi"}, "pair", "'kiwi' is not a class"),
    ({"metric": "class_recall", "class": "Banana"}, "class", "'Banana' is not a class"),
    ({"metric": "confusion", "pair": "banana"}, "rules[0].pair", "true->predicted"),
    ({"metric": "confusion", "pair": "banana->banana"}, "pair", "two different"),
    ({"metric": "drift", "pair": "banana->apple"}, None, "confusion metric only"),
    ({"metric": "class_recall", "stat": "rate"}, None, "not offered"),
])
def test_bad_class_names_are_422_naming_the_field(http: httpx.Client, kiosk: dict,
                                                  spec: dict, field: str | None,
                                                  words: str) -> None:
    r = http.put(f"/rules/{kiosk['name']}/bad", json={**spec, "critical": 0.1})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert words in detail["message"]
    if field is not None:
        assert detail["field"] == field


def test_rule_file_names_the_rule_at_fault(http: httpx.Client, kiosk: dict) -> None:
    doc = {"rules": [{"name": "ok", "model": kiosk["name"], "metric": "volume", "critical": 1},
                     {"name": "bad", "model": kiosk["name"], "metric": "class_recall",
                      "class": "kiwi", "critical": 0.5}]}
    r = http.post("/rules/apply", json=doc, params={"dry_run": True})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "rules[1].class", r.text


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"top": 0}, 422, None),
    ({"window": "1h", "start": "-2h"}, 422, "window"),
    ({"window": "30d", "step": "1m"}, 422, "step"),
    ({"window": "soon"}, 422, "window"),
])
def test_bad_queries_are_4xx(http: httpx.Client, kiosk: dict, params: dict, status: int,
                             field: str | None) -> None:
    r = http.get(f"/models/{kiosk['name']}/confusion", params=params)
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json()["detail"]["field"] == field
    assert http.get("/models/nope/confusion").status_code == 404


def test_regression_model_is_refused(http: httpx.Client) -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    name = register_model(http, f"reg-{uuid.uuid4().hex[:8]}",
                          pd.DataFrame({"x": y + rng.normal(size=300), "pred": y, "y": y}),
                          {"target": "y", "prediction": "pred", "task": "regression"})
    r = http.get(f"/models/{name}/confusion")
    assert r.status_code == 422 and "not a classifier" in r.json()["detail"]["message"]
    r = http.put(f"/rules/{name}/c", json={"metric": "confusion", "critical": 0.1})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "metric", r.text


def test_openapi_documents_the_answer(server: ThreadServer) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
    op = doc["paths"]["/api/v1/models/{name}/confusion"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"classes", "total", "points", "step"} <= set(schema["required"])
    rules = doc["components"]["schemas"]
    assert "pair" in rules["ConfusionRuleBody"]["properties"]
    assert "class" in rules["ClassRecallRuleBody"]["properties"]


def _chart_specs(html: str) -> dict[str, Any]:
    found = re.findall(r'<script type="application/json" class="chart-spec">(.*?)</script>',
                       html, re.S)
    return {s["id"]: s for s in map(json.loads, found)}


def test_dashboard_draws_the_confused_pairs_over_time(server: ThreadServer, http: httpx.Client,
                                                     kiosk: dict) -> None:
    name, end, ev = kiosk["name"], kiosk["end"], kiosk["events"]
    _rule(http, name, "pair-line", {"metric": "confusion", "pair": "banana->cucumber",
                                    "op": ">", "warning": 0.15, "critical": 0.25})
    html = httpx.get(f"{server.url}/models/{name}/panels/charts",
                     params={"range": "6h", "end": end}, timeout=60).text
    spec = _chart_specs(html)["confusion"]
    lines = {s["name"]: s["data"] for s in spec["series"]}
    assert "banana → cucumber" in lines and len(lines) <= 4
    drawn = {x / 1000: y for x, y in lines["banana → cucumber"] if y is not None}
    assert len(drawn) >= 6  # 30 min windows over the three hours of traffic
    for t0, y in drawn.items():
        part = _expected(ev[(ev.ts >= t0) & (ev.ts < min(t0 + HOUR / 2, end))])["matrix"]
        assert y == pytest.approx(100 * part[1, 2] / part[1].sum(), rel=1e-4)
    assert drawn[max(drawn)] > 30 > drawn[min(drawn)]  # the shifted hour stands out
    assert {t["value"] for t in spec["thresholds"]} >= {15.0, 25.0}
    alerts = httpx.get(f"{server.url}/alerts", params={"model": name}, timeout=60).text
    assert "confusion[banana-&gt;cucumber] rate over 1h" in alerts


def test_class_names_are_escaped_on_the_page(server: ThreadServer, http: httpx.Client) -> None:
    evil = '<img src=x onerror=alert(1)>'
    rng = np.random.default_rng(3)
    y = rng.choice(["apple", evil], 200)
    name = register_model(http, f"evil-{uuid.uuid4().hex[:8]}",
                          pd.DataFrame({"x": rng.normal(size=200), "pred": y, "y": y}),
                          {"target": "y", "prediction": "pred"})
    now = time.time()
    rows = [{"prediction_id": f"e{i}", "timestamp": now - 600 + i, "features": {"x": 0.0},
             "prediction": "apple"} for i in range(40)]
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{name}/labels", json=[{"prediction_id": f"e{i}", "label": evil}
                                              for i in range(40)]).raise_for_status()
    html = httpx.get(f"{server.url}/models/{name}/panels/charts", params={"range": "1h"},
                     timeout=60).text
    assert evil not in html
    spec = _chart_specs(html)["confusion"]
    assert [s["name"] for s in spec["series"]] == [f"{evil} → apple"]
    got = http.get(f"/models/{name}/confusion", params={"window": "1h"}).json()
    assert got["total"]["pairs"][0]["true"] == evil and got["total"]["n"] == 40


def test_a_rule_for_every_model_names_an_unknown_class_when_evaluated(
        http: httpx.Client, kiosk: dict) -> None:
    name, end = kiosk["name"], kiosk["end"]
    _rule(http, "*", "star-kiwi", {"metric": "class_recall", "class": "kiwi", "window": "1h",
                                   "op": "<", "critical": 0.5})  # no model to check against
    try:
        r = http.post("/alerts/evaluate", params={"now": end})
        assert r.status_code == 200 and r.json()["evaluated"], r.text
        state = _state(http, name, "star-kiwi")
        assert state["phase"] == "error" and "'kiwi' is not a class" in state["error"], state
    finally:
        assert http.delete("/rules/*/star-kiwi").status_code == 200
