"""The dashboard without a browser: ranges, thresholds, distributions, headers, assets."""

from __future__ import annotations

import gzip
import re
import uuid

import httpx
import numpy as np
import pytest

from aiwarden.alerting.rules import Rule
from aiwarden.errors import ParameterError
from aiwarden.server.dashboard.alertview import AlertView, firing_periods, threshold_lines
from aiwarden.server.dashboard.ranges import RANGES, span


@pytest.mark.parametrize("name", list(RANGES))
def test_every_range_has_aligned_windows_and_few_points(name: str) -> None:
    seconds, step, heat, perf = RANGES[name]
    assert heat % step == 0 and perf % heat == 0  # wider steps merge narrower windows
    sp = span(name, now=1_795_000_123.4)
    wins = sp.windows()
    assert sp.start % perf == 0 and all(s % step == 0 for s, _ in wins)
    assert wins[-1][1] == sp.end and sp.end >= 1_795_000_123.4 and sp.end % 60 == 0
    assert sp.seconds >= seconds and len(wins) <= 300 and len(sp.windows(heat)) <= 80
    assert [e for _, e in wins[:-1]] == [s for s, _ in wins[1:]]  # contiguous


def test_a_pinned_end_and_a_bad_range() -> None:
    sp = span("1h", "2026-11-25T10:00:30Z")
    assert sp.pinned and sp.end == 1795600860  # the bucket holding 10:00:30 counts
    with pytest.raises(ParameterError, match="range: expected one of"):
        span("5y")


def test_thresholds_relative_to_the_reference_are_drawn_where_the_value_breaches() -> None:
    rule = Rule(name="auc", metric="performance", stat="roc_auc", relative_to="reference",
                op="<", warning=-0.05, critical=-0.1)
    lines = threshold_lines(rule, baseline=0.9)
    assert [(t["severity"], round(t["value"], 4)) for t in lines] == [
        ("warning", 0.855), ("critical", 0.81)]
    assert threshold_lines(rule, baseline=None) == []  # no reference number: nothing drawn
    previous = Rule(name="p95", metric="latency", relative_to="previous", critical=1.0)
    assert threshold_lines(previous) == []  # moves with the data
    rate = Rule(name="q", metric="quarantined", warning=0.01, critical=0.05)
    assert [t["value"] for t in threshold_lines(rate, scale=100.0)] == [1.0, 5.0]


def test_firing_periods_follow_the_transitions() -> None:
    events = [{"kind": "pending", "at": 100.0}, {"kind": "firing", "at": 160.0,
                                                "severity": "warning"},
              {"kind": "escalated", "at": 200.0, "severity": "critical"},
              {"kind": "resolved", "at": 400.0}, {"kind": "firing", "at": 900.0}]
    alert = AlertView(1, 1, "r", None, {"column": "amount"}, {"phase": "firing"}, events)
    spans = firing_periods(alert, start=300, end=1000, now=1000)
    assert [(s["from"], s["to"], s["severity"]) for s in spans] == [
        (300_000, 400_000, "critical"), (900_000, 1_000_000, "critical")]
    assert spans[0]["label"] == "r (amount)"


def test_a_feature_distribution_keeps_every_row() -> None:
    from aiwarden.engine import Reference
    from aiwarden.monitoring.bucket import BucketData
    from aiwarden.server.dashboard.features import distribution

    rng = np.random.default_rng(0)
    ref = Reference.fit({"x": rng.lognormal(0, 1, 3000), "c": rng.choice(list("abc"), 3000)})
    cur = {"x": np.concatenate([rng.lognormal(0, 1, 900), [1e6] * 100]),
           "c": rng.choice(list("abd"), 1000)}
    data = BucketData(rows=1000, profile=ref.profile(cur))
    num = distribution(ref, data, "x")
    assert num is not None and num["kind"] == "bars"
    for s in num["series"]:
        assert sum(s["data"]) == pytest.approx(100, abs=0.01)
    assert num["categories"][-1].startswith("≥") and num["series"][1]["data"][-1] >= 10
    ref_shares = num["series"][0]["data"][1:-1] if num["categories"][0].startswith("<") \
        else num["series"][0]["data"][:-1]
    assert max(ref_shares) < 3 * min(ref_shares)  # bins hold equal shares of the reference
    cat = distribution(ref, data, "c")
    assert cat is not None and cat["categories"][-1] == "(unseen)"
    assert cat["series"][1]["data"][-1] == pytest.approx(100 / 3, abs=5)  # the 'd's


def test_pages_carry_a_strict_csp_and_only_local_assets(server) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert not re.search(r"(src|href)=[\"']https?://", page.text), "a CDN reference remains"
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    assets = re.findall(r"(?:src|href)=[\"'](/static/[^\"']+)[\"']", page.text)
    assert any("echarts" in a for a in assets) and any("htmx" in a for a in assets)
    for asset in assets:
        r = httpx.get(f"{server.url}{asset}", headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"], asset
    raw = httpx.get(f"{server.url}/static/vendor/echarts-6.1.0.min.js",
                    headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"  # 1.1 MB on disk, ~0.35 MB sent
    assert len(gzip.compress(raw.content)) < 500_000


def test_the_api_docs_page_cannot_be_framed(server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_an_incident_id_past_the_store_is_not_found_not_a_500(server) -> None:
    huge = 99999999999999999999999  # the store's integer overflowed: a 500 (outside review)
    page = httpx.get(f"{server.url}/incidents/{huge}")
    assert page.status_code == 422 and "incident_id" in page.text
    form = httpx.post(f"{server.url}/incidents/{huge}/comment", data={"text": "x"},
                      headers={"origin": server.url})
    assert form.status_code == 422, form.text[:200]
    assert httpx.get(f"{server.url}/incidents/2147483647").status_code == 404


def test_errors_are_pages_not_json(server) -> None:
    missing = httpx.get(f"{server.url}/models/no-such-model")
    assert missing.status_code == 404 and "no-such-model" in missing.text
    assert missing.text.lstrip().startswith("<!doctype html>")
    bad = httpx.get(f"{server.url}/incidents?status=bogus")
    assert bad.status_code == 422 and "status: expected" in bad.text
    row = httpx.get(f"{server.url}/overview/rows/no-such-model", headers={"HX-Request": "true"})
    assert row.status_code == 404 and "no-such-model" in row.text
    fragment = httpx.get(f"{server.url}/models/no-such-model/panels/charts",
                         headers={"HX-Request": "true"})
    assert fragment.status_code == 404 and 'class="notice error"' in fragment.text
    assert not fragment.text.lstrip().startswith("<!doctype")


def test_the_login_page_redirects_when_the_server_is_open(server) -> None:
    r = httpx.get(f"{server.url}/login?next=//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/"  # never off-site


def test_the_wheel_ships_every_template_and_asset() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["aiwarden"]
    package = root / "aiwarden"
    files = [p.relative_to(package).as_posix() for folder in ("server/static",
                                                               "server/templates",
                                                               "report/templates")
             for p in (package / folder).rglob("*") if p.is_file()]
    assert any(f.endswith("echarts-6.1.0.min.js") for f in files)
    missed = [f for f in files if not any(fnmatch.fnmatch(f, pat) and
                                          f.count("/") == pat.count("/") for pat in patterns)]
    assert not missed, f"not in [tool.setuptools.package-data]: {missed}"


def test_text_from_users_is_escaped(server) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    name = "escaped-model"
    httpx.post(f"{server.url}/api/v1/models", json={"name": name, "description": evil}
               ).raise_for_status()
    page = httpx.get(f"{server.url}/models/{name}").text
    assert evil not in page and "&lt;script&gt;alert(" in page
    silence = {"matchers": ['model="escaped-model"'], "ends_at": "2099-01-01T00:00:00Z",
               "comment": evil}
    httpx.post(f"{server.url}/api/v1/silences", json=silence).raise_for_status()
    alerts = httpx.get(f"{server.url}/alerts").text
    assert evil not in alerts and "&lt;img src=x onerror=alert(1)&gt;" in alerts


def test_a_wide_schema_heatmap_keeps_its_most_drifted_columns(monitor) -> None:
    """60 features, two of them drifted: the heatmap shows 40 rows, the drifted among them."""
    import pandas as pd
    import pyarrow as pa

    from aiwarden.server.dashboard import charts, features
    from aiwarden.server.dashboard.ranges import span

    rng = np.random.default_rng(1)
    cols = {f"f{i:02d}": rng.normal(0, 1, 2000) for i in range(60)}
    monitor.create_model("wide")
    monitor.upload_reference("wide", "v1", pa.table(cols), None)
    sp = span("1h")
    live = pd.DataFrame({f"f{i:02d}": rng.normal(3 if i in (7, 51) else 0, 1, 600)
                         for i in range(60)})
    live.insert(0, "prediction_id", [f"w{i}" for i in range(600)])
    live.insert(1, "timestamp", np.linspace(sp.end - 1800, sp.end - 61, 600))
    monitor.log_predictions("wide", pa.Table.from_pandas(live, preserve_index=False))

    class State:
        pass

    state = State()
    state.monitor = monitor
    ctx = charts.model_context(state, "wide", None)
    out = features.heatmap(state, "wide", sp, ctx["version"], None, ctx)
    spec = out["heatmap"]
    assert spec["total"] == 60 and spec["shown"] == len(spec["y"]) == features.MAX_ROWS
    assert {"f07", "f51"} <= set(spec["columns"]) and set(out["recent"]) == {"f07", "f51"}


@pytest.mark.parametrize("setup", ["bare", "version"])
def test_every_panel_answers_for_a_model_without_data(server, setup: str) -> None:
    name = f"empty-{setup}"
    httpx.post(f"{server.url}/api/v1/models", json={"name": name}).raise_for_status()
    if setup == "version":  # a version without a reference
        httpx.post(f"{server.url}/api/v1/models/{name}/versions",
                   json={"version": "v1"}).raise_for_status()
    assert httpx.get(f"{server.url}/models/{name}").status_code == 200
    for panel in ("charts", "drift", "feature", "slices", "versions"):
        r = httpx.get(f"{server.url}/models/{name}/panels/{panel}?range=24h",
                      headers={"HX-Request": "true"})
        assert r.status_code in ((200,) if setup == "version" else (200, 404)), (panel, r.text)
    assert httpx.get(f"{server.url}/").status_code == 200


def test_no_resource_samples_is_one_line_not_an_empty_chart(server) -> None:
    """Without samples the charts panel says how to send them (no empty chart box); one
    sample later the resource charts are there and the line is gone."""
    from tests.server.conftest import register_model

    name = f"res-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as api:
        register_model(api, name)

    def panel() -> str:
        r = httpx.get(f"{server.url}/models/{name}/panels/charts?range=6h",
                      headers={"HX-Request": "true"})
        assert r.status_code == 200, r.text
        return r.text

    before = panel()
    assert "No resource samples yet: serving processes send them with POST " \
           f"/api/v1/models/{name}/resources" in before
    assert 'data-chart="resources' not in before
    httpx.post(f"{server.url}/api/v1/models/{name}/resources",
               json=[{"cpu_percent": 40.0, "rss_bytes": 2.0e8}]).raise_for_status()
    after = panel()
    assert 'data-chart="resources-cpu_percent"' in after and "No resource samples" not in after
