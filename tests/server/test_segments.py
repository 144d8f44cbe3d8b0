"""Segments through a real server, on SQLite and PostgreSQL.

Scenario: a binary classifier whose reference has a ``country`` segment column (8 values;
the server keeps the top 5, then ``__other__``). In the last hour the labels of country=BR
rows are flipped (the model is wrong only there) while every other country, and a control
model fed the same rows with honest labels, stays as in the reference. Every number read
per segment is checked against scikit-learn / numpy on the raw rows of that segment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score
from sqlalchemy import create_engine, func, select

from aiwarden.sdk._payload import to_parquet
from aiwarden.store.tables import segment_profiles
from tests.server.conftest import evaluate
from tests.server.live import ThreadServer, settings_for

TOP_N = 5
COUNTRIES = ["US", "BR", "DE", "FR", "IN", "JP", "MX", "ZA"]
SHARES = [0.3, 0.2, 0.15, 0.12, 0.1, 0.06, 0.04, 0.03]
HINTS = {"target": "y", "prediction": "pred", "scores": "score", "segments": "country"}
N = 2400


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-3 * x))
    y = (rng.random(n) < score).astype(int)
    return pd.DataFrame({"x": x, "country": rng.choice(COUNTRIES, n, p=SHARES),
                         "score": score, "pred": (score > 0.5).astype(int), "y": y})


def rows(df: pd.DataFrame, t0: float, prefix: str, spacing: float = 1.0
         ) -> list[dict[str, Any]]:
    return [{"prediction_id": f"{prefix}{i}", "timestamp": t0 + i * spacing,
             "features": {"x": r.x},
             "tags": {"country": r.country}, "prediction": int(r.pred),
             "scores": float(r.score), "latency_ms": 5.0 + (r.country == "BR") * 20}
            for i, r in enumerate(df.itertuples())]


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    settings = settings_for(db_url, tmp_path_factory.mktemp("data"), segment_top_n=TOP_N,
                            evaluate_every=0)
    with ThreadServer(settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def scenario(server: ThreadServer) -> dict[str, Any]:
    """Two models fed the same rows; only ``planted`` gets BR's labels flipped."""
    ref = to_parquet(pa.Table.from_pandas(frame(6000, 0), preserve_index=False))
    cur = frame(N, 1)
    flipped = np.where(cur.country == "BR", 1 - cur.y, cur.y)
    t0 = time.time() - N - 60
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as c:
        for name, labels in (("planted", flipped), ("control", cur.y.to_numpy())):
            c.post("/models", json={"name": name}).raise_for_status()
            c.put(f"/models/{name}/versions/v1/reference", content=ref, params=HINTS,
                  headers={"content-type": "application/vnd.apache.parquet"}
                  ).raise_for_status()
            sent = rows(cur, t0, "p")
            half = N // 2  # half the labels wait for their rows, half arrive after them
            early = [{"prediction_id": f"p{i}", "label": int(labels[i])} for i in range(half)]
            late = [{"prediction_id": f"p{i}", "label": int(labels[i])}
                    for i in range(half, N)]
            assert c.post(f"/models/{name}/labels", json=early).json()["pending"] == half
            out = c.post(f"/models/{name}/predictions", json=sent).json()
            assert out["accepted"] == N and out["labels_joined"] == half
            assert c.post(f"/models/{name}/labels", json=late).json()["joined"] == N - half
            for rule in ({"metric": "performance", "stat": "accuracy", "segment_by": "country",
                          "op": "<", "critical": 0.6, "window": "2h"},
                         {"metric": "performance", "stat": "accuracy", "op": "<",
                          "critical": 0.6, "window": "2h"}):
                rname = "acc-by-country" if "segment_by" in rule else "acc"
                c.put(f"/rules/{name}/{rname}", json=rule).raise_for_status()
    return {"cur": cur, "flipped": flipped}


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as c:
        yield c


def one(http: httpx.Client, model: str, metric: str, segment: str | None = None) -> dict:
    params = {"metric": metric, "start": "-3h"} | ({"segment": segment} if segment else {})
    r = http.get(f"/models/{model}/metrics", params=params)
    assert r.status_code == 200, r.text
    (point,) = r.json()["points"]
    return point


def _metrics(perf: dict) -> dict:
    """``{metric: value}``, whether realised performance comes as that dict or as a result
    document holding it under ``metrics`` (issue 12 pt 5 moves it to the result shape)."""
    return perf["metrics"] if isinstance(perf.get("metrics"), dict) else perf


def test_segments_listed_top_n_then_other(http, scenario) -> None:
    out = http.get("/models/planted/segments").json()
    assert out["top_n"] == TOP_N
    assert out["columns"] == {"country": [*COUNTRIES[:TOP_N], "__other__"]}


def test_every_metric_reads_per_segment_and_matches_raw_rows(http, scenario) -> None:
    cur, flipped = scenario["cur"], scenario["flipped"]
    for country in ["BR", "US", "__other__"]:
        mask = (~cur.country.isin(COUNTRIES[:TOP_N]) if country == "__other__"
                else cur.country == country).to_numpy()
        seg = f"country:{country}"
        vol = one(http, "planted", "volume", seg)
        assert vol["value"]["rows"] == mask.sum() and vol["value"]["labels"] == mask.sum()
        perf = one(http, "planted", "performance", seg)["value"]["metrics"]
        assert _metrics(perf)["accuracy"] == pytest.approx(
            accuracy_score(flipped[mask], cur.pred[mask]), abs=1e-12)
        lat = one(http, "planted", "latency", seg)["value"]
        assert lat["count"] == mask.sum()
        assert lat["p50"] == pytest.approx(25.0 if country == "BR" else 5.0, rel=0.07)
        for metric in ("drift", "quality", "estimated_performance"):
            point = one(http, "planted", metric, seg)
            assert point["value"] is not None, point
        drift = one(http, "planted", "drift", seg)["value"]
        assert drift["n_current"] == mask.sum()
    whole = _metrics(one(http, "planted", "performance")["value"]["metrics"])["accuracy"]
    assert whole == pytest.approx(accuracy_score(flipped, cur.pred), abs=1e-12)


def test_segment_read_says_why_it_is_empty(http, scenario) -> None:
    rare = one(http, "planted", "volume", "country:ZA")  # outside the top 5
    assert rare["value"]["rows"] == 0 and "__other__" in rare["reason"]
    bad = one(http, "planted", "volume", "channel:web")
    assert "not a segment column" in bad["reason"]
    r = http.get("/models/planted/metrics", params={"metric": "volume", "segment": "country"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "segment"


def test_segment_rule_fires_for_br_only_and_control_stays_silent(http, scenario) -> None:
    out = evaluate(http)
    fired = {(t["labels"]["model"], t["labels"]["rule"], t["labels"].get("segment"))
             for t in out["transitions"] if t["kind"] == "firing"
             and t["labels"]["rule"] in ("acc", "acc-by-country")}  # not the default rules
    assert fired == {("planted", "acc-by-country", "country=BR")}
    alerts = http.get("/models/planted/alerts").json()
    seg = {a["labels"].get("segment") for a in alerts if a["labels"]["rule"] == "acc-by-country"}
    assert "country=BR" in seg and seg <= {f"country={c}" for c in
                                           [*COUNTRIES[:TOP_N], "__other__"]}


def test_rca_names_the_segment(http, scenario) -> None:
    report = http.get("/models/planted/rca", params={"start": "-3h", "end": "now"}).json()
    segs = [s for s in report["suspects"] if s["kind"] == "segment"]
    assert segs and segs[0]["name"] == "country = BR", report["suspects"][:3]
    assert "accuracy fell only for country = BR" in segs[0]["summary"]
    control = http.get("/models/control/rca", params={"start": "-3h", "end": "now"}).json()
    assert not [s for s in control["suspects"] if s["kind"] == "segment"]


def test_cardinality_is_bounded_in_storage_and_prometheus(http, server, scenario,
                                                          db_url) -> None:
    name = "wide"
    http.post("/models", json={"name": name}).raise_for_status()
    http.put(f"/models/{name}/versions/v1/reference",
             content=to_parquet(pa.Table.from_pandas(frame(3000, 2), preserve_index=False)),
             params=HINTS, headers={"content-type": "application/vnd.apache.parquet"}
             ).raise_for_status()
    df = frame(10_000, 3)
    df["country"] = [f"c{i}" for i in range(10_000)]  # 10,000 distinct values
    df.loc[:999, "country"] = "US"
    sent = rows(df, time.time() - 3000, "w", spacing=0.25)
    for i in range(0, len(sent), 2500):
        assert http.post(f"/models/{name}/predictions", json=sent[i:i + 2500]).json()[
            "accepted"] == 2500
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.distinct(segment_profiles.c.segment))).scalars().all()
    engine.dispose()
    mine = {s for s in stored if s.startswith("country=")}
    assert mine <= {f"country={c}" for c in [*COUNTRIES[:TOP_N], "__other__"]}
    assert one(http, name, "volume", "country:__other__")["value"]["rows"] == 9000
    assert one(http, name, "volume", "country:US")["value"]["rows"] == 1000
    text = httpx.get(f"{server.url}/metrics", params={"model": name, "window": "2h"}).text
    labels = {line.split('segment="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("aiwarden_segment_") and 'segment="' in line}
    assert labels == {"US", "__other__"}


def test_prometheus_segment_gauges_equal_the_json_api(http, server, scenario) -> None:
    text = httpx.get(f"{server.url}/metrics", params={"model": "planted", "window": "3h"}).text
    found = {}
    for line in text.splitlines():
        if line.startswith("aiwarden_segment_performance{") and 'metric="accuracy"' in line:
            seg = line.split('segment="')[1].split('"')[0]
            found[seg] = float(line.rsplit(" ", 1)[1])
    assert set(found) == {*COUNTRIES[:TOP_N], "__other__"}
    for seg, value in found.items():
        perf = http.get("/models/planted/metrics", params={
            "metric": "performance", "start": "-3h", "segment": f"country:{seg}"}).json()
        # the scrape window ends at the current bucket's end, like end=now: same rows
        assert value == pytest.approx(_metrics(perf["points"][0]["value"]["metrics"])[
            "accuracy"], abs=1e-9)
    assert found["BR"] < 0.4 < min(v for k, v in found.items() if k != "BR")


def _volume_rows(html: str) -> float:
    """Predictions counted by the traffic chart (per-minute rates times step minutes)."""
    import json
    import re

    for spec in re.findall(r'<script type="application/json" class="chart-spec">(.*?)</script>',
                           html, re.S):
        chart = json.loads(spec)
        if chart.get("id") == "volume":
            (series,) = [s for s in chart["series"] if s["name"] == "predictions"]
            return series["data"]
    raise AssertionError("no traffic chart")


def test_dashboard_segment_selector_filters_the_charts(server, scenario) -> None:
    page = httpx.get(f"{server.url}/models/planted", params={"segment": "country:BR"}).text
    assert '<option value="country:BR" selected>country = BR</option>' in page
    assert '<option value="country:__other__">' in page
    panel = f"{server.url}/models/planted/panels/charts"
    seg = httpx.get(panel, params={"range": "24h", "segment": "country:BR"},
                    headers={"HX-Request": "true"})
    whole = httpx.get(panel, params={"range": "24h"}, headers={"HX-Request": "true"})
    assert seg.status_code == whole.status_code == 200
    assert "Segment <strong>country = BR</strong>" in seg.text
    br = sum(v for _, v in _volume_rows(seg.text) if v)
    everything = sum(v for _, v in _volume_rows(whole.text) if v)
    cur = scenario["cur"]
    # rates are drawn rounded to 4 digits per step (a few % on sparse steps); the whole
    # would be 100 %, BR's share is ~18 %
    assert br / everything == pytest.approx((cur.country == "BR").mean(), rel=0.05)
    bad = httpx.get(panel, params={"range": "24h", "segment": "country:ZA"},
                    headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "__other__" in bad.text


def test_segment_columns_must_be_categorical(http, scenario) -> None:
    http.post("/models", json={"name": "bad-seg"}).raise_for_status()
    ref = to_parquet(pa.Table.from_pandas(frame(500, 4), preserve_index=False))
    r = http.put("/models/bad-seg/versions/v1/reference", content=ref,
                 params=HINTS | {"segments": "x"},
                 headers={"content-type": "application/vnd.apache.parquet"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "x"
    assert "categorical" in r.json()["detail"]["message"]
    r = http.post("/models/bad-seg/versions", json={"version": "v2", "schema": {"columns": [
        {"name": "amount", "dtype": "numerical", "role": "segment"}]}})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "amount"
    assert http.get("/models/bad-seg").json()["versions"] == []  # nothing stored


def test_segments_declared_with_the_model_over_rest_and_cli(http, server, scenario,
                                                            tmp_path) -> None:
    from tests.server.test_cli import cli, ok

    data = tmp_path / "ref.parquet"
    frame(1000, 6).to_parquet(data)
    hints = {k: v for k, v in HINTS.items() if k != "segments"}
    # REST: the model names its segment columns; its references need not repeat them
    r = http.post("/models", json={"name": "declared", "segments": ["country"]})
    assert r.status_code == 201 and r.json()["segments"] == ["country"]
    http.put("/models/declared/versions/v1/reference", content=data.read_bytes(),
             params=hints, headers={"content-type": "application/vnd.apache.parquet"}
             ).raise_for_status()
    assert http.get("/models/declared").json()["segments"] == ["country"]
    assert list(http.get("/models/declared/segments").json()["columns"]) == ["country"]
    # CLI: the same through aiwarden models create --segments
    url = ("--url", server.url)
    ok(cli("models", "create", "declared-cli", "--segments", "country", *url))
    ok(cli("models", "reference", "declared-cli", "v1", str(data), "--target", "y",
           "--prediction", "pred", "--scores", "score", *url))
    assert list(http.get("/models/declared-cli/segments").json()["columns"]) == ["country"]
    bad = http.post("/models", json={"name": "declared-bad", "segments": ["a", "a"]})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "segments"


def test_wildcard_segment_rule_relative_to_each_segments_reference(http, scenario) -> None:
    """``model: "*"``: models without the segment column get no instance (not an error);
    ``relative_to: reference`` compares each segment with its own reference rows."""
    ref = to_parquet(pa.Table.from_pandas(frame(2000, 7), preserve_index=False))
    http.post("/models", json={"name": "plain"}).raise_for_status()
    http.put("/models/plain/versions/v1/reference", content=ref,
             params={k: v for k, v in HINTS.items() if k != "segments"},
             headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()
    http.post("/models/plain/predictions", json=rows(frame(200, 8), time.time() - 600, "q"))
    http.put("/rules/*/acc-rel", json={
        "metric": "performance", "stat": "accuracy", "segment_by": "country",
        "relative_to": "reference", "op": "<", "critical": -0.3, "window": "2h"}
             ).raise_for_status()
    try:
        out = evaluate(http)
        mine = [t for t in out["transitions"] if t["labels"]["rule"] == "acc-rel"]
        fired = {(t["labels"]["model"], t["labels"]["segment"]) for t in mine
                 if t["kind"] == "firing"}
        assert fired == {("planted", "country=BR")}
        assert not [t for t in mine if t["labels"]["model"] == "plain"]
        alerts = http.get("/models/plain/alerts").json()
        assert not [a for a in alerts if a["labels"]["rule"] == "acc-rel"]
        control = [a for a in http.get("/models/control/alerts").json()
                   if a["labels"]["rule"] == "acc-rel"]
        assert all(a["state"]["phase"] != "error" for a in control)
    finally:
        http.delete("/rules/*/acc-rel")


def test_dashboard_panels_follow_the_segment(server, scenario) -> None:
    base = f"{server.url}/models/planted/panels"
    hx = {"HX-Request": "true"}
    for panel in ("drift", "feature", "slices"):
        r = httpx.get(f"{base}/{panel}", params={"range": "24h", "segment": "country:BR"},
                      headers=hx)
        assert r.status_code == 200, (panel, r.text)
        assert "Segment <strong>country = BR</strong> only." in r.text
    # the slices panel runs on BR's labelled rows only: their count, not every row's
    r = httpx.get(f"{base}/slices", params={"range": "24h", "segment": "country:BR"},
                  headers=hx)
    n_br = int((scenario["cur"].country == "BR").sum())
    assert f"{n_br:,} labelled rows" in r.text


def test_the_sdk_reads_one_segment(server, http, scenario) -> None:
    """``Client.metrics(segment=...)`` answers what ``GET ...?segment=`` does (it had no
    such argument, so a notebook could not split a metric by segment)."""
    import aiwarden

    # one fixed span for every read: "-3h" moves with the clock, and reads either side of
    # a minute boundary cover different windows (a CI flake)
    t1 = float(int(time.time()) // 60 * 60 + 60)
    span = {"start": f"{t1 - 3 * 3600:.0f}", "end": f"{t1:.0f}"}
    rest = http.get("/models/planted/metrics", params={
        "metric": "performance", **span, "segment": "country:BR"}).json()
    with aiwarden.Client(server.url) as c:
        text = c.metrics("planted", "performance", **span, segment="country:BR")
        mapping = c.metrics("planted", "performance", **span, segment={"country": "BR"})
        frame = c.metrics_frame("planted", "performance", **span,
                                segment={"country": "BR"})
        with pytest.raises(ValueError, match=r"'segment' parameter of Client\.metrics"):
            c.metrics("planted", "volume", segment={"country": "BR", "channel": "web"})
    assert text["segment"] == mapping["segment"] == {"column": "country", "value": "BR"}
    assert text["points"] == mapping["points"] == rest["points"]
    br = _metrics(rest["points"][0]["value"]["metrics"])["accuracy"]
    whole = _metrics(one(http, "planted", "performance")["value"]["metrics"])["accuracy"]
    assert br < whole - 0.2  # the flipped segment, not the whole model
    assert frame["metrics.accuracy"].tolist() == [br]
