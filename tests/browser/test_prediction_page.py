"""The prediction page and the feature-importance panel in a real browser (SQLite): the $4
purchase's waterfall starts with ``amount``, the contributions table, the LIME switch,
the message for a version that cannot be explained, and the model page's importance panel
loaded when scrolled into view with its whiskers and the reference's diamonds."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.explain_seed import explainable
from tests.server.live import ThreadServer, settings_for

pytest.importorskip("shap")


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    tmp = tmp_path_factory.mktemp("ppage")
    settings = settings_for(f"sqlite:///{tmp / 'p.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=120) as api:
        yield srv, explainable(api)["name"]


_CHART = ("id => { const c = window.aiwardenCharts[id]; const o = c.chart.getOption(); "
          "return {y: o.yAxis[0].data, types: o.series.map(s => s.type), points: c.points}; }")


def test_the_waterfall_table_switch_and_refusal(explained, watched) -> None:
    server, name = explained
    page = watched.page
    watched.open(f"{server.url}/models/{name}?version=1")
    page.fill("#explain-form input[name=id]", "p0")
    page.click("#explain-form button")
    page.wait_for_url(f"**/models/{name}/predictions/p0")
    watched.settle()
    drawn = page.evaluate(_CHART, "waterfall")
    assert drawn["y"][0] == "base value" and drawn["y"][1] == "amount"
    assert drawn["y"][-1] == "output" and drawn["types"] == ["custom"] and drawn["points"] == 5
    rows = page.locator("#contributions tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).get_attribute("data-feature") == "amount"
    assert rows.nth(0).locator("td").nth(0).inner_text() == "4"
    assert page.inner_text("#explained-class") == "1"
    watched.shot("prediction-shap")

    page.click("#method-switch >> text=LIME")
    page.wait_for_url("**method=lime")
    watched.settle()
    assert page.inner_text("#explain-method") == "lime"
    assert "amount" in page.locator("#contributions tbody tr").nth(0).inner_text()
    assert page.locator("#contributions th", has_text="LIME condition").count() == 1
    watched.shot("prediction-lime")

    watched.open(f"{server.url}/models/{name}/predictions/u0")
    error = page.inner_text("#explain-error")
    assert "Version '2'" in error and "has no registered model" in error
    assert page.locator(".chart[data-chart]").count() == 0
    assert page.locator("#row-features tbody tr").count() == 3  # the row is still shown


def test_the_importance_panel_loads_when_scrolled_to(explained, watched) -> None:
    server, name = explained
    page = watched.page
    watched.open(f"{server.url}/models/{name}?version=1&range=24h")
    page.locator("#panel-importance").scroll_into_view_if_needed()
    page.wait_for_selector("#importance-table")
    watched.settle()
    drawn = page.evaluate(_CHART, "importance")
    assert drawn["y"][0] == "amount (ref #1)"
    assert drawn["types"] == ["bar", "scatter", "custom"]
    assert "nDCG" in page.inner_text("#importance-ndcg")
    assert page.locator("#importance-table tbody tr").first.get_attribute(
        "data-feature") == "amount"
    watched.shot("importance-panel")
