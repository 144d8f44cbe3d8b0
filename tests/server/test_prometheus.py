"""``GET /metrics`` against a real server, on both databases: every exported number equals
what the JSON API answers for the same window, and the example dashboard only asks for
series the exporter emits.

One scenario per database: a model whose traffic has ``x`` shifted (``c`` is not), with
labels for every row, known latencies and one quarantined row; and an idle model with a
reference but no traffic.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from aiwarden.monitoring import metrics
from aiwarden.server.prometheus import MonitorCollector
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, json_rows, scored_frame
from tests.server.live import ThreadServer, database_url, settings_for

MODEL, IDLE = "prom", "prom-idle"
N = 400
FAILED = 7  # rows sent with an error
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "aiwarden-dashboard.json"

Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def latencies(server: ThreadServer) -> np.ndarray:
    """Loads the scenario; returns the latencies sent (ms), one per accepted row."""
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        ref = scored_frame(2000).to_csv(index=False).encode()
        for name in (MODEL, IDLE):
            assert c.post("/models", json={"name": name, "task": "binary"}).status_code == 201
            r = c.put(f"/models/{name}/versions/v1/reference", content=ref, params=HINTS,
                      headers={"Content-Type": "text/csv"})
            assert r.status_code == 201, r.text
        cur = scored_frame(N, seed=2, shift=1.5)  # moves x (and the score), not c
        rows = json_rows(cur, time.time() - 120, spacing=0.2)
        lat = np.random.default_rng(3).lognormal(math.log(8), 0.8, N)
        for row, ms in zip(rows, lat, strict=True):
            row["latency_ms"] = float(ms)
        for row in rows[:FAILED]:
            row["error"] = "upstream timeout"
        bad = json_rows(scored_frame(1, seed=5), time.time() - 60, prefix="bad")
        bad[0]["features"]["x"] = "abc"
        res = c.post(f"/models/{MODEL}/predictions", json=rows + bad).json()
        assert (res["accepted"], res["quarantined"]) == (N, 1), res
        res = c.post(f"/models/{MODEL}/labels", json=[
            {"prediction_id": f"p{i}", "label": int(y)} for i, y in enumerate(cur.y)]).json()
        assert res["joined"] == N, res
        res = c.post(f"/models/{MODEL}/resources", json=[
            {"timestamp": time.time() - 100 + 10 * i, "cpu_percent": 20.0 + 10 * i,
             "rss_bytes": 1e8 * (i + 1), "cost": 0.002} for i in range(5)]).json()
        assert res["accepted"] == 5, res
    return lat


def scrape(server: ThreadServer, headers: dict[str, str] | None = None,
           **params: str) -> httpx.Response:
    return httpx.get(server.url + "/metrics", params=params, headers=headers, timeout=60)


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def scraped(server: ThreadServer, **params: str) -> Samples:
    res = scrape(server, **params)
    assert res.status_code == 200, res.text
    return parse(res.text)


def select(s: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [(lab, v) for lab, v in s.get(name, []) if labels.items() <= lab.items()]


def value(s: Samples, name: str, model: str | None = MODEL, **labels: str) -> float:
    """The one sample of ``name`` with these labels (``model=None``: an unlabelled one)."""
    found = select(s, name, **labels, **({} if model is None else {"model": model}))
    assert len(found) == 1, (name, labels, found)
    return found[0][1]


def window(s: Samples) -> tuple[int, int]:
    return (int(value(s, "aiwarden_window_start_timestamp_seconds", model=None)),
            int(value(s, "aiwarden_window_end_timestamp_seconds", model=None)))


def api(http: httpx.Client, metric: str, t0: int, t1: int) -> Any:
    res = http.get(f"/models/{MODEL}/metrics",
                   params={"metric": metric, "start": t0, "end": t1, "version": "v1"})
    assert res.status_code == 200, res.text
    (point,) = res.json()["points"]
    return point["value"]


def test_drift_scores_equal_the_json_api_for_the_same_window(
        server: ThreadServer, http: httpx.Client, latencies: np.ndarray) -> None:
    s = scraped(server)
    cols = api(http, "drift", *window(s))["columns"]
    assert {"x", "c"} <= set(cols)
    n_series = 0
    for col, c in cols.items():
        method = c["method"]
        every = {**c["metrics"], method: c["value"]}
        for name, expected in every.items():
            got = select(s, "aiwarden_drift_score", model=MODEL, column=col, method=name)
            if expected is None:
                assert not got
                continue
            n_series += 1
            assert got[0][1] == pytest.approx(expected, rel=1e-9, abs=1e-12), (col, name)
        assert value(s, "aiwarden_drift_threshold", column=col, method=method) == \
            pytest.approx(c["threshold"], rel=1e-9)
        assert value(s, "aiwarden_drifted", column=col, method=method) == float(c["drifted"])
    assert len(select(s, "aiwarden_drift_score", model=MODEL)) == n_series
    assert value(s, "aiwarden_drifted", column="x") == 1.0
    assert value(s, "aiwarden_drifted", column="c") == 0.0
    assert value(s, "aiwarden_dataset_drifted") == 1.0


def test_latency_histogram_counts_every_row_cumulatively(
        server: ThreadServer, latencies: np.ndarray) -> None:
    s = scraped(server)
    buckets = sorted((float(lab["le"]), v)
                     for lab, v in select(s, "aiwarden_latency_ms_bucket", model=MODEL))
    les, counts = zip(*buckets, strict=True)
    assert les[-1] == math.inf and counts[-1] == N
    assert value(s, "aiwarden_latency_ms_count") == N
    assert (np.diff(counts) >= 0).all()
    for le, n in buckets[:-1]:  # exact but for rows within 1 % of a bound (bins are ~6 % wide)
        near = np.sum((latencies > le / 1.01) & (latencies <= le * 1.01))
        assert abs(n - np.sum(latencies <= le)) <= near, le
    assert value(s, "aiwarden_latency_ms_sum") == pytest.approx(latencies.sum(), rel=0.03)
    assert not select(s, "aiwarden_latency_ms_count", model=IDLE)


def test_performance_equals_the_json_api(server: ThreadServer, http: httpx.Client,
                                         latencies: np.ndarray) -> None:
    s = scraped(server)
    t0, t1 = window(s)
    realised = api(http, "performance", t0, t1)["metrics"]
    assert {"accuracy", "roc_auc"} <= set(realised)
    for name, expected in realised.items():
        assert value(s, "aiwarden_performance", metric=name) == pytest.approx(expected,
                                                                              rel=1e-9)
    estimated = api(http, "estimated_performance", t0, t1)["metrics"]
    assert "roc_auc" in estimated
    for name, e in estimated.items():
        for family, key in (("aiwarden_estimated_performance", "estimate"),
                            ("aiwarden_estimated_performance_lower", "lower"),
                            ("aiwarden_estimated_performance_upper", "upper")):
            assert value(s, family, metric=name) == pytest.approx(e[key], rel=1e-9)
    assert not select(s, "aiwarden_performance", model=IDLE)


def test_volume_and_quality_equal_the_json_api(server: ThreadServer, http: httpx.Client,
                                               latencies: np.ndarray) -> None:
    s = scraped(server)
    t0, t1 = window(s)
    volume = api(http, "volume", t0, t1)
    assert volume == {"rows": N, "labels": N, "quarantined": 1}
    assert value(s, "aiwarden_volume_rows") == N
    assert value(s, "aiwarden_volume_labels") == N
    assert value(s, "aiwarden_quarantined_rows") == 1
    assert value(s, "aiwarden_ingested_rows_total") == N
    quality = api(http, "quality", t0, t1)
    expected = Counter((f["check"], f["severity"]) for f in quality["findings"])
    assert expected  # the shift puts x and the score out of the reference's range
    got = {(lab["check"], lab["severity"]): v
           for lab, v in select(s, "aiwarden_quality_findings", model=MODEL)}
    assert got == expected
    for f in quality["findings"]:
        assert value(s, "aiwarden_quality_rate", check=f["check"],
                     column=f["column"] or "") >= f["rate"]
    assert value(s, "aiwarden_quality_ok") == float(quality["ok"]) == 0.0
    # the idle model is listed, with nothing in its window
    assert value(s, "aiwarden_volume_rows", model=IDLE) == 0
    assert value(s, "aiwarden_ingested_rows_total", model=IDLE) == 0
    assert not select(s, "aiwarden_drift_score", model=IDLE)
    assert not s.get("aiwarden_scrape_error")


def test_failures_and_resources_equal_the_json_api(server: ThreadServer, http: httpx.Client,
                                                   latencies: np.ndarray) -> None:
    s = scraped(server)
    t0, t1 = window(s)
    assert api(http, "errors", t0, t1)["errors"] == FAILED
    assert value(s, "aiwarden_failed_predictions") == FAILED
    usage = api(http, "resources", t0, t1)
    assert usage["gauges"]["cpu_percent"] == {"samples": 5, "mean": 40.0, "max": 60.0,
                                              "sum": 200.0}
    for name, g in usage["gauges"].items():
        assert value(s, "aiwarden_resource_mean", resource=name) == pytest.approx(g["mean"])
        assert value(s, "aiwarden_resource_max", resource=name) == g["max"]
    assert value(s, "aiwarden_cost_per_1k_predictions") == pytest.approx(0.01 / N * 1000)
    assert not select(s, "aiwarden_resource_mean", model=IDLE)


def test_window_is_whole_buckets_chosen_per_scrape(server: ThreadServer,
                                                    latencies: np.ndarray) -> None:
    s = scraped(server)
    t0, t1 = window(s)
    assert value(s, "aiwarden_window_seconds", model=None) == t1 - t0 == 300
    assert t1 % 60 == 0 and t1 - 60 < time.time() < t1 + 60
    s = scraped(server, window="90s")  # rounded up to whole buckets
    assert value(s, "aiwarden_window_seconds", model=None) == 120
    s = scraped(server, window="1h")
    assert value(s, "aiwarden_volume_rows") == N
    only = scraped(server, model=IDLE)
    assert {lab["model"] for lab, _ in only["aiwarden_volume_rows"]} == {IDLE}
    res = scrape(server, window="soon")
    assert res.status_code == 422 and res.json()["detail"]["field"] == "window"
    assert scrape(server, model="nope").status_code == 404


def test_a_window_longer_than_ten_years_is_a_422_naming_it(server: ThreadServer,
                                                           latencies: np.ndarray) -> None:
    from aiwarden.monitoring.windows import MAX_DURATION

    for too_long in ("9999999999", str(MAX_DURATION + 1), "3651d", "9" * 5000, "99999999w"):
        res = scrape(server, window=too_long)
        assert res.status_code == 422, (too_long[:20], res.status_code, res.text[:200])
        detail = res.json()["detail"]
        assert detail["field"] == "window"
        assert "at most 315360000 seconds (10 years)" in detail["message"]
    s = scraped(server, window=str(MAX_DURATION))  # ten years is served
    assert value(s, "aiwarden_volume_rows") == N


def test_one_window_read_per_version_and_no_raw_events(
        server: ThreadServer, latencies: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = server.server.config.app.state.monitor.db.engine
    inside = threading.local()
    seen: list[str] = []
    read = MonitorCollector._read

    def traced(self: MonitorCollector, t0: int, t1: int) -> Any:
        inside.on = True
        try:
            return read(self, t0, t1)
        finally:
            inside.on = False

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if getattr(inside, "on", False):
            seen.append(statement)

    monkeypatch.setattr(MonitorCollector, "_read", traced)
    event.listen(engine, "before_cursor_execute", record)
    try:
        scraped(server)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sum("bucket_profiles.data" in q for q in seen) == 2  # prom/v1 and prom-idle/v1
    assert not [q for q in seen if re.search(r"\b(event_batches|predictions|labels)\b", q)]


def test_a_failing_version_is_flagged_and_the_others_still_served(
        server: ThreadServer, latencies: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    compute = metrics.compute

    def broken_when_idle(metric: str, ref: Any, d: Any, **kw: Any) -> Any:
        if d.rows == 0:  # only the idle model has an empty window
            raise RuntimeError("planted")
        return compute(metric, ref, d, **kw)

    monkeypatch.setattr(metrics, "compute", broken_when_idle)
    s = scraped(server)
    assert value(s, "aiwarden_scrape_error", model=IDLE) == 1
    assert not [lab for name in s for lab, _ in s[name] if lab.get("model") == IDLE
                and name != "aiwarden_scrape_error"]
    assert value(s, "aiwarden_volume_rows") == N
    assert not select(s, "aiwarden_scrape_error", model=MODEL)


def test_openmetrics_is_served_to_prometheus_that_asks(server: ThreadServer,
                                                      latencies: np.ndarray) -> None:
    res = scrape(server, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/openmetrics-text")
    names = {s.name for f in openmetrics_families(res.text) for s in f.samples}
    assert {"aiwarden_drift_score", "aiwarden_latency_ms_bucket",
            "aiwarden_ingested_rows_total"} <= names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def test_dashboard_queries_only_series_the_exporter_emits(server: ThreadServer,
                                                         latencies: np.ndarray) -> None:
    with DASHBOARD.open() as f:
        dash = json.load(f)
    emitted = set(scraped(server))
    panels = [p for p in _panels(dash["panels"]) if p["type"] != "row"]
    assert len({p["id"] for p in _panels(dash["panels"])}) == len(list(_panels(dash["panels"])))
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"model", "version"} <= set(variables)
    exprs = [v["definition"] for v in variables.values() if v["type"] == "query"]
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        exprs += [t["expr"] for t in p["targets"]]
        assert all('model=~"$model"' in t["expr"] for t in p["targets"]), p["title"]
    used = {n for e in exprs for n in re.findall(r"\baiwarden_\w+", e)}
    assert used <= emitted, sorted(used - emitted)
    assert {"aiwarden_drift_score", "aiwarden_quality_findings", "aiwarden_performance",
            "aiwarden_estimated_performance", "aiwarden_volume_rows",
            "aiwarden_latency_ms_bucket"} <= used
    quantiles = {m for e in exprs for m in re.findall(r"histogram_quantile\(([\d.]+)", e)}
    assert quantiles == {"0.5", "0.95", "0.99"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_metrics_need_a_read_key_once_keys_exist(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url, ThreadServer(settings_for(url, tmp_path)) as srv:
        assert scrape(srv).status_code == 200  # no key yet, loopback: open, like the API
        store = Database(url)
        try:
            with store.write() as conn:
                read_key, _ = keys.create_key(conn, "prometheus", ["read"])
                ingest_key, _ = keys.create_key(conn, "writer", ["ingest"])
        finally:
            store.dispose()
        deadline = time.monotonic() + 30  # the server re-reads "any keys?" every 2 s
        while (res := scrape(srv)).status_code != 401:
            assert time.monotonic() < deadline, res.status_code
            time.sleep(0.1)
        assert res.headers["www-authenticate"] == "Bearer"
        ok = scrape(srv, headers={"Authorization": f"Bearer {read_key}"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        assert "aiwarden_window_seconds" in parse(ok.text)
        assert scrape(srv, headers={"Authorization": f"Bearer {ingest_key}"}).status_code == 403
