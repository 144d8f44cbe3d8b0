"""Concept-drift detectors fed by a live server (SQLite and PostgreSQL): a planted drop in
accuracy yields exactly the change points the engine's detectors give on the same outcomes
fed in one pass, and fires the rule; a stable stream yields none; labels sent out of order
(some before their predictions) and a server restart mid-stream change nothing.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiwarden.engine.detectors import make_detector
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, database_url, settings_for

N, CHANGE = 1600, 800  # outcomes, and where accuracy drops from 0.9 to 0.6
SPACING = 3.0  # seconds between predictions
ALL = {"adwin": {}, "ddm": {}, "page_hinkley": {}}
RULE = {"metric": "concept_drift", "window": "1h", "op": ">", "critical": 0}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test: cycles run at chosen past times, and the evaluator lease
    is taken at the cycle's time, so a cycle of an earlier test must not hold it."""
    with database_url(request.param, tmp_path) as url:
        yield url


@contextmanager
def serve(db_url: str, tmp: Path) -> Iterator[httpx.Client]:
    """A server without the background evaluation loop: cycles run when the test says."""
    with ThreadServer(settings_for(db_url, tmp, evaluate_every=0)) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=120) as http:
        yield http


def outcomes(seed: int, change: int | None) -> np.ndarray:
    """1 = wrong, 0 = right: error rate 0.1, then 0.4 from ``change`` on."""
    rng = np.random.default_rng(seed)
    p = np.full(N, 0.1)
    if change is not None:
        p[change:] = 0.4
    return (rng.random(N) < p).astype(float)


def model(http: httpx.Client, settings: dict[str, Any] | None = None) -> str:
    name = register_model(http, f"cd-{uuid.uuid4().hex[:10]}")
    if settings is not None:
        r = http.put(f"/models/{name}/concept-drift", json=settings)
        assert r.status_code == 200, r.text
    r = http.put(f"/rules/{name}/concept-drift", json=RULE)
    assert r.status_code in (200, 201), r.text
    return name


def predictions(t0: float) -> list[dict[str, Any]]:
    return [{"prediction_id": f"p{i}", "timestamp": t0 + i * SPACING,
             "features": {"x": 0.5, "c": "a"}, "prediction": 1, "scores": 0.8}
            for i in range(N)]


def labels(errors: np.ndarray, idx: Any) -> list[dict[str, Any]]:
    return [{"prediction_id": f"p{i}", "label": int(1 - errors[i])} for i in idx]


def send(http: httpx.Client, name: str, kind: str, body: list[dict[str, Any]],
         chunk: int = 400) -> None:
    for k in range(0, len(body), chunk):
        r = http.post(f"/models/{name}/{kind}", json=body[k:k + chunk])
        assert r.status_code == 200, r.text
        assert not r.json().get("rejected") and not r.json().get("quarantined"), r.text


def cycle(http: httpx.Client, at: float) -> dict[str, Any]:
    r = http.post("/alerts/evaluate", params={"now": repr(at)})
    assert r.status_code == 200 and r.json()["evaluated"], r.text
    return r.json()


def found(http: httpx.Client, name: str) -> dict[str, list[int]]:
    r = http.get(f"/models/{name}/change-points")
    assert r.status_code == 200, r.text
    out: dict[str, list[int]] = {}
    for p in r.json()["change_points"]:
        out.setdefault(p["detector"], []).append(p["position"])
        assert p["prediction_id"] == f"p{p['position']}"  # the outcome it fired on
    return out


def engine(errors: np.ndarray, detectors: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """The engine's detectors on the outcomes in prediction order, in one pass."""
    out = {name: make_detector(name, **params).detect(errors)
           for name, params in detectors.items()}
    return {k: v for k, v in out.items() if v}


def performance_chart(http: httpx.Client, name: str) -> dict[str, Any]:
    """The dashboard's performance chart spec (the JSON next to the chart)."""
    page = httpx.get(http.base_url.join(f"/models/{name}/panels/charts"),
                     params={"range": "24h"}, headers={"HX-Request": "true"})
    assert page.status_code == 200, page.text
    specs = [json.loads(s) for s in re.findall(
        r'<script type="application/json" class="chart-spec">(.*?)</script>', page.text, re.S)]
    (chart,) = [c for c in specs if c.get("id") == "performance"]
    return chart


def firing(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in report["transitions"] if t["labels"]["model"] == name
            and t["labels"]["rule"] == "concept-drift" and t["kind"] == "firing"]


def test_planted_drop_gives_the_engines_change_points_and_fires_the_rule(
        db_url: str, tmp_path: Path) -> None:
    errors = outcomes(seed=0, change=CHANGE)
    want = engine(errors, ALL)
    assert set(want) == set(ALL)  # every detector sees the drop in one pass
    with serve(db_url, tmp_path) as http:
        name = model(http, {"label_delay": "0s", "detectors": ALL})
        t0 = time.time() - N * SPACING - 600
        order = list(range(N))
        random.Random(1).shuffle(order)
        send(http, name, "labels", labels(errors, order[:300]))  # before their predictions
        send(http, name, "predictions", predictions(t0))
        send(http, name, "labels", labels(errors, order[300:]))  # the rest, shuffled
        report = cycle(http, t0 + N * SPACING)
        assert found(http, name) == want
        adwin = [p for p in want["adwin"] if p >= CHANGE]
        assert adwin and adwin[0] - CHANGE <= 150  # near the planted change
        assert len(firing(report, name)) == 1
        points = http.get(f"/models/{name}/change-points",
                          params={"detector": "adwin"}).json()["change_points"]
        first = next(p for p in points if p["position"] == adwin[0])
        # ADWIN's window mean after the cut has risen above the error rate before it
        assert first["mean_before"] < 0.15 < first["statistic"], first
        status = http.get(f"/models/{name}/concept-drift").json()
        assert status["versions"]["v1"]["outcomes"] == N
        assert status["versions"]["v1"]["late_labels"] == 0
        assert status["versions"]["v1"]["change_points"] == {k: len(v) for k, v in
                                                            want.items()}
        ddm = make_detector("ddm")
        ddm.detect(errors)
        assert status["versions"]["v1"]["detectors"]["ddm"] == {
            "n_seen": N, "estimation": ddm.estimation, "warning": ddm.warning_detected}
        text = httpx.get(http.base_url.join("/metrics")).text
        counts = {s.labels["detector"]: s.value
                  for f in text_string_to_metric_families(text)
                  if f.name == "aiwarden_concept_drift_change_points"
                  for s in f.samples if s.labels.get("model") == name}
        assert counts == {k: float(len(want.get(k, []))) for k in ALL}, counts
        marks = performance_chart(http, name)["events"]
        assert [m["at"] for m in marks] == sorted(
            1000 * (t0 + p * SPACING) for v in want.values() for p in v)
        # a second cycle with nothing new adds nothing and finds nothing again
        again = cycle(http, t0 + N * SPACING + 60)
        assert found(http, name) == want and not firing(again, name)


def test_stable_stream_yields_no_change_point_and_no_alert(db_url: str,
                                                           tmp_path: Path) -> None:
    errors = outcomes(seed=3, change=None)
    late = 5  # the first outcomes' labels come after the watermark passed them
    assert engine(errors, {"adwin": {}}) == engine(errors[late:], {"adwin": {}}) == {}
    with serve(db_url, tmp_path) as http:
        name = model(http)  # the defaults: ADWIN, labels waited for 1 h
        t0 = time.time() - N * SPACING - 7200
        send(http, name, "predictions", predictions(t0))
        send(http, name, "labels", labels(errors, range(late, N)))
        report = cycle(http, t0 + N * SPACING + 3600)
        send(http, name, "labels", labels(errors, range(late)))
        status = http.get(f"/models/{name}/concept-drift").json()
        assert status["settings"]["detectors"] == {"adwin": make_detector("adwin").params}
        assert status["versions"]["v1"]["outcomes"] == N - late
        assert status["versions"]["v1"]["late_labels"] == late  # counted, not fed
        assert found(http, name) == {}
        assert not firing(report, name)
        # a normal instance with a value is not stored; no-data or an error would be
        assert not [a for a in http.get(f"/models/{name}/alerts").json()
                    if a["labels"]["rule"] == "concept-drift"]


def test_restart_mid_stream_continues_as_one_pass(db_url: str, tmp_path: Path) -> None:
    errors = outcomes(seed=2, change=CHANGE)
    want = engine(errors, ALL)
    split = 700  # before the change: detections after it need the restored state
    # the last cycle runs after the first server handed the lease over (at its shutdown,
    # by the wall clock), so it is dated after that: ``now`` takes the lease too
    t0 = time.time() - N * SPACING - 300
    order = list(range(N))
    random.Random(5).shuffle(order)
    with serve(db_url, tmp_path) as http:
        name = model(http, {"label_delay": "10m", "detectors": ALL})
        send(http, name, "predictions", predictions(t0))
        send(http, name, "labels", labels(errors, [i for i in order if i < split]))
        cycle(http, t0 + split * SPACING + 600)  # watermark at outcome `split`
        status = http.get(f"/models/{name}/concept-drift").json()
        assert status["versions"]["v1"]["outcomes"] == split
        before = found(http, name)
    with serve(db_url, tmp_path) as http:  # a new server on the same database
        send(http, name, "labels", labels(errors, [i for i in order if i >= split]))
        cycle(http, t0 + N * SPACING + 600)
        assert found(http, name) == want
        assert all(p < split for v in before.values() for p in v)
        assert http.get(f"/models/{name}/concept-drift").json()[
            "versions"]["v1"]["outcomes"] == N


BAD = [({"detectors": ["cusum"]}, "detectors.cusum"),
       ({"detectors": {"adwin": {"delta": 2}}}, "detectors.adwin.delta"),
       ({"detectors": {"adwin": {"clock": 0}}}, "detectors.adwin.clock"),
       ({"detectors": {"adwin": {"speed": 1}}}, "detectors.adwin.speed"),
       ({"detectors": "adwin"}, "detectors"),
       ({"label_delay": "soon"}, "label_delay"),
       ({"enabled": "yes"}, "enabled"),
       ({"threshold": 3}, "threshold")]


def test_bad_settings_answer_422_naming_the_field(db_url: str, tmp_path: Path) -> None:
    with serve(db_url, tmp_path) as http:
        name = register_model(http, f"cd-{uuid.uuid4().hex[:10]}")
        for body, field in BAD:
            r = http.put(f"/models/{name}/concept-drift", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["detail"]["field"] == field, (body, r.text)
        r = http.put(f"/rules/{name}/cd", json=RULE)
        assert r.status_code in (200, 201), r.text
        cycle(http, time.time())  # nothing labelled: the rule says why it has no value
        (alert,) = [a for a in http.get(f"/models/{name}/alerts").json()
                    if a["labels"]["rule"] == "cd"]
        assert alert["state"]["phase"] == "nodata", alert
        assert "has reached the concept-drift detectors yet" in alert["state"]["reason"], alert
        assert "must be a float in (0, 1). Got 2 instead" in http.put(
            f"/models/{name}/concept-drift", json=BAD[1][0]).json()["detail"]["message"]
        r = http.put(f"/rules/{name}/cd", json=RULE | {"method": "cusum"})
        assert r.status_code == 422 and "concept-drift detector" in r.text, r.text
        r = http.put(f"/rules/{name}/cd", json=RULE | {"segment_by": "c"})
        assert r.status_code == 422 and "whole version" in r.text, r.text
        r = http.get(f"/models/{name}/change-points", params={"detector": "cusum"})
        assert r.status_code == 422 and r.json()["detail"]["field"] == "query.detector", r.text
        r = http.put(f"/models/{name}/concept-drift", json={"label_delay": 1.5})
        assert r.status_code == 422 and r.json()["detail"]["field"] == "label_delay", r.text
        r = http.get(f"/models/{name}/concept-drift")  # the defaults, unchanged
        assert r.json()["settings"]["detectors"] == {"adwin": make_detector("adwin").params}


def test_a_regressors_absolute_errors_feed_adwin_and_ddm_is_refused(db_url: str,
                                                                     tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=N)
    noise = np.where(np.arange(N) < CHANGE, 0.5, 1.5) * rng.normal(size=N)
    y = 2 * x + noise  # the errors grow threefold at CHANGE
    pred = 2 * x
    errors = np.abs(pred - y)
    want = engine(errors, {"adwin": {}})
    assert want["adwin"]
    ref_x = rng.normal(size=2000)
    ref = pd.DataFrame({"x": ref_x, "p": 2 * ref_x, "y": 2 * ref_x + rng.normal(0, .5, 2000)})
    with serve(db_url, tmp_path) as http:
        name = register_model(http, f"cd-{uuid.uuid4().hex[:10]}", ref,
                              {"target": "y", "prediction": "p", "task": "regression"})
        r = http.put(f"/models/{name}/concept-drift", json={"detectors": ["adwin", "ddm"]})
        assert r.status_code == 422 and r.json()["detail"]["field"] == "detectors.ddm", r.text
        r = http.put(f"/models/{name}/concept-drift", json={"label_delay": 0})
        assert r.status_code == 200, r.text
        t0 = time.time() - N * SPACING - 600
        send(http, name, "predictions", [
            {"prediction_id": f"p{i}", "timestamp": t0 + i * SPACING,
             "features": {"x": float(x[i])}, "prediction": float(pred[i])} for i in range(N)])
        send(http, name, "labels", [{"prediction_id": f"p{i}", "label": float(y[i])}
                                    for i in range(N)])
        cycle(http, t0 + N * SPACING)
        assert found(http, name) == want
        point = http.get(f"/models/{name}/change-points").json()["change_points"][-1]
        assert point["statistic"] > point["mean_before"]  # the loss rose
