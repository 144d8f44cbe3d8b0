"""The dashboard in a real browser over the demo story (tests/browser/seed.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.seed import DRIFTED, FRAUD

PAGES = ["/", f"/models/{FRAUD}", "/incidents", "/alerts"]


def _api(server, path: str) -> object:
    r = httpx.get(f"{server.url}/api/v1{path}", timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.mark.parametrize("width,name", [(1366, "laptop"), (390, "phone")])
def test_every_page_loads_without_console_errors(story, watched, width, name) -> None:
    server, seeded = story
    watched.page.set_viewport_size({"width": width, "height": 900})
    for path in [*PAGES, f"/incidents/{seeded['incidents'][0]}"]:
        watched.open(server.url + path)
        assert watched.page.locator("main h1").first.is_visible(), path
        if width < 500:  # nothing wider than the phone's screen but scrollable tables
            overflow = watched.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, (path, overflow)
        watched.shot(f"{name}-{path.strip('/') or 'overview'}")


def test_overview_puts_the_drifting_model_first(story, watched) -> None:
    server, _ = story
    watched.open(server.url + "/")
    rows = watched.page.locator("table.models tbody tr")
    assert rows.first.get_attribute("data-model") == FRAUD
    first = rows.first.inner_text()
    assert "Critical" in first and "champion → 2" in first
    assert all(f in first for f in DRIFTED), first
    healthy = watched.page.locator("tr[data-model='credit-scorer']").inner_text()
    assert "OK" in healthy
    assert "No data" in watched.page.locator("tr[data-model='new-model']").inner_text()


def test_model_charts_render_with_data_points(story, watched) -> None:
    server, _ = story
    watched.open(f"{server.url}/models/{FRAUD}")
    charts = watched.page.evaluate(
        "Object.fromEntries(Object.entries(window.aiwardenCharts).map(([k, v]) => "
        "[k, {points: v.points, series: v.chart.getOption().series.length, "
        " png: v.chart.getDataURL({type: 'png'}).length}]))")
    for cid in ("volume", "performance", "prediction", "latency", "errors",
                "resources-cpu_percent", "drift-share", "drift-heatmap", "slices"):
        assert cid in charts, sorted(charts)
        assert charts[cid]["points"] > 0 and charts[cid]["series"] > 0, (cid, charts[cid])
    assert any(c.startswith("dist-") for c in charts)  # the chosen feature's distribution
    # a blank 500-px-wide chart encodes to a few kB; drawn lines and bars do not
    assert min(c["png"] for c in charts.values()) > 8_000, charts
    volume = watched.page.evaluate("window.aiwardenCharts.volume.chart.getOption()")
    assert volume["xAxis"][0]["max"] - volume["xAxis"][0]["min"] >= 6 * 3600 * 1000
    perf = watched.page.evaluate(
        "window.aiwardenCharts.performance.chart.getOption().series[0]")
    assert any("critical" in m["name"] for m in perf["markLine"]["data"])  # rule threshold
    share = watched.page.evaluate(
        "window.aiwardenCharts['drift-share'].chart.getOption().series[0].markArea.data")
    assert share, "the firing drift alerts shade the drift chart"
    # every value axis labels each tick differently (rounding made 150.2 and 150.4 "150")
    labels = watched.page.evaluate(
        "Object.fromEntries(Object.entries(window.aiwardenCharts).map(([k, v]) => [k, "
        "(v.chart.getModel().getComponent('yAxis') || {axis: null}).axis ? v.chart.getModel()"
        ".getComponent('yAxis').axis.getViewLabels().map(l => l.formattedLabel) : []]))")
    for cid, ticks in labels.items():
        assert len(ticks) == len(set(ticks)), (cid, ticks)
    assert len(labels["resources-rss_bytes"]) >= 2, labels  # the chart the user saw repeat
    assert watched.page.evaluate("window.aiwardenTick(150.2)") != watched.page.evaluate(
        "window.aiwardenTick(150.4)")
    watched.shot("model-page")


def _heatmap(watched) -> dict:
    return watched.page.evaluate(
        "JSON.parse(document.querySelector('[data-chart=drift-heatmap] + .chart-spec')"
        ".textContent)")


def test_heatmap_shows_the_drifted_features(story, watched) -> None:
    server, _ = story
    watched.open(f"{server.url}/models/{FRAUD}?range=6h")
    spec = _heatmap(watched)
    last = max(x for x, *_ in spec["data"])
    for feature in DRIFTED:  # drifted in the windows since the surge began (45 min ago)
        row = spec["columns"].index(feature)
        recent = [(sev, drifted) for x, y, sev, *_, drifted in spec["data"]
                  if y == row and x > last - 6]
        assert any(drifted for _, drifted in recent), (feature, recent)
    # ▲ marks exactly the columns drifted in the latest three windows
    marked = {c for c, label in zip(spec["columns"], spec["y"], strict=True)
              if label.startswith("▲")}
    assert marked == {spec["columns"][y] for x, y, *_, drifted in spec["data"]
                      if x > last - 3 and drifted}
    # an undrifted feature is not flagged window after window (the windows are aligned to
    # the wall clock, so one partial window may, rarely, cross its threshold by chance)
    calm = spec["columns"].index("account_age_days")
    flags = [d for x, y, *_, d in spec["data"] if y == calm and x > last - 6]
    assert sum(flags) <= 1, flags
    verdict = watched.page.locator(".drift-verdict").inner_text()
    assert all(f in verdict.split("at some point in the range:")[1] for f in DRIFTED)

    # a click on a cell opens that feature below, and the URL says so (a deep link)
    x, y = max((x, y) for x, y, *_ in spec["data"] if spec["columns"][y] == "hour")
    at = watched.page.evaluate(
        f"window.aiwardenCharts['drift-heatmap'].chart.convertToPixel({{seriesIndex: 0}}, "
        f"[{x}, {y}])")
    watched.page.locator("[data-chart=drift-heatmap]").click(position={"x": at[0], "y": at[1]})
    watched.page.wait_for_url("**feature=hour*")
    watched.settle()
    assert watched.page.locator("#panel-feature h3").inner_text() == "hour"
    watched.shot("model-heatmap")


def test_drift_method_is_a_choice(story, watched) -> None:
    server, _ = story
    watched.open(f"{server.url}/models/{FRAUD}?range=6h")
    watched.page.select_option("select[name=method]", "psi")
    watched.page.wait_for_url("**method=psi*")
    watched.settle()
    spec = _heatmap(watched)
    assert spec["method"] == "psi" and {c[4] for c in spec["data"]} == {"psi"}
    last = max(x for x, *_ in spec["data"])

    def recent(feature: str) -> float:
        row = spec["columns"].index(feature)
        sev = [s for x, y, s, *_ in spec["data"] if y == row and x > last - 6]
        return sum(sev) / len(sev)

    assert min(recent(f) for f in DRIFTED) > recent("account_age_days")


def test_deep_link_holds_model_range_and_feature(story, watched) -> None:
    server, _ = story
    watched.open(f"{server.url}/models/{FRAUD}?range=1h&feature=hour")
    assert watched.page.locator(".ranges [aria-current=true]").inner_text() == "1h"
    assert watched.page.locator("#panel-feature h3").inner_text() == "hour"
    axis = watched.page.evaluate("window.aiwardenCharts.volume.chart.getOption().xAxis[0]")
    assert axis["max"] - axis["min"] <= 2 * 3600 * 1000
    watched.page.locator(".ranges a", has_text="24h").click()
    watched.settle()
    assert "range=24h" in watched.page.url and "feature=hour" in watched.page.url


def test_acknowledge_assign_comment_and_resolve_change_the_incident(story, watched) -> None:
    server, seeded = story
    iid = next(i for i in seeded["incidents"]
               if _api(server, f"/incidents/{i}")["status"] == "triggered")
    watched.open(f"{server.url}/incidents/{iid}")
    assert watched.page.locator(".rca .suspects li").count() > 0
    charts = watched.page.evaluate("Object.keys(window.aiwardenCharts)")
    # the RCA's suspects come with their evidence: the drifted features' distributions
    assert "suspects" in charts and {f"dist-{f}" for f in DRIFTED} <= set(charts), charts
    watched.page.click("button[data-action=acknowledge]")
    watched.page.wait_for_selector("#incident-main .badge.s-acknowledged")
    assert _api(server, f"/incidents/{iid}")["status"] == "acknowledged"

    watched.page.fill("#assignee", "rosa")
    watched.page.click("form[action$=assign] button")
    watched.page.wait_for_selector("#incident-main .assignee:text('rosa')")
    watched.page.fill("#comment", "small transactions surged at 04:00")
    watched.page.click("form[action$=comment] button")
    watched.page.wait_for_selector("q:text('small transactions surged')")
    watched.page.click("button[data-action=resolve]")
    watched.page.wait_for_selector("#incident-main .badge.s-resolved")
    watched.shot("incident-resolved")
    after = _api(server, f"/incidents/{iid}")
    assert after["status"] == "resolved" and after["assignee"] == "rosa"
    kinds = [(e["kind"], e["actor"]) for e in after["timeline"]]
    assert ("comment", "dashboard") in kinds and ("status", "dashboard") in kinds


def test_rollback_asks_for_confirmation_then_moves_the_alias(story, watched) -> None:
    server, seeded = story
    iid = seeded["incidents"][-1]
    watched.open(f"{server.url}/incidents/{iid}")
    watched.page.click("text=Roll back champion: 2 → 1…")
    confirm = watched.page.locator("[role=alertdialog]")
    confirm.wait_for()
    assert "from version 2 to version 1" in confirm.inner_text()
    assert _api(server, f"/registry/models/{FRAUD}/aliases")["champion"] == "2"  # not yet
    watched.shot("incident-rollback-confirm")
    confirm.locator("button[type=submit]").click()
    watched.page.wait_for_selector(f".timeline >> text=Rolled {FRAUD}@champion back from "
                                   "version 2 to 1")
    assert _api(server, f"/registry/models/{FRAUD}/aliases")["champion"] == "1"
    last = _api(server, f"/registry/models/{FRAUD}/aliases/champion/history")[0]
    assert last["kind"] == "rollback" and last["to_version"] == "1"


def test_silence_created_and_expired_from_the_alerts_page(story, watched) -> None:
    server, _ = story
    watched.open(f"{server.url}/alerts?model={FRAUD}")
    assert watched.page.locator("table.alerts .badge.h-critical").count() > 0
    watched.page.fill("#silence-comment", "deploying a fix")
    watched.page.click(".silence-form button")
    watched.page.wait_for_selector("#silences tr[data-silence]")
    made = [s for s in _api(server, "/silences") if s["comment"] == "deploying a fix"]
    assert made and made[0]["created_by"] == "dashboard"
    watched.shot("alerts-silenced")
    watched.page.click(f"tr[data-silence='{made[0]['id']}'] button")
    watched.page.wait_for_selector(f"tr[data-silence='{made[0]['id']}']", state="detached")
    ends = next(s for s in _api(server, "/silences") if s["id"] == made[0]["id"])["ends_at"]
    assert ends <= time.time() + 1


def test_overview_rows_not_read_in_time_load_after_the_page(story, watched, monkeypatch
                                                             ) -> None:
    """Right after a restart the drift noise floors are not computed yet: the overview
    answers at once and fills the rows it had no time for."""
    from aiwarden.server.dashboard import overview

    server, _ = story
    monkeypatch.setattr(overview, "BUDGET", 0.0)  # the server runs in this process
    first = watched.page.goto(server.url + "/")
    assert first is not None and first.text().count('aria-busy="true"') == 3  # none read
    watched.settle()
    assert watched.page.locator("tr[aria-busy=true]").count() == 0
    row = watched.page.locator(f"tr[data-model='{FRAUD}']").inner_text()
    assert "Critical" in row and all(f in row for f in DRIFTED)
    assert "No data" in watched.page.locator("tr[data-model='new-model']").inner_text()
