"""From "the model fails on amount < 10" to "why did it flag this purchase" in a real
browser (SQLite): the model page's failing-slices panel lists wrong predictions of the
slice; clicking one opens its prediction page with the waterfall drawn, and the row shown
there is in the slice and wrongly answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.live import ThreadServer, settings_for
from tests.slice_seed import failing_small_purchases, in_slice

pytest.importorskip("shap")


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ThreadServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("slices")
    settings = settings_for(f"sqlite:///{tmp / 's.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=120) as api:
        yield srv, failing_small_purchases(api)


_CHART = ("id => { const c = window.aiwardenCharts[id]; const o = c.chart.getOption(); "
          "return {y: o.yAxis[0].data, types: o.series.map(s => s.type)}; }")


def test_a_slice_example_opens_its_explained_prediction(failing, watched) -> None:
    server, seeded = failing
    name, live = seeded["name"], seeded["live"]
    page = watched.page
    watched.open(f"{server.url}/models/{name}?version=1&range=24h")
    first = page.locator("#panel-slices tr.slice-examples").first
    first.wait_for()
    slice_name = first.get_attribute("data-slice")
    assert slice_name.startswith("amount"), slice_name
    links = first.locator("a.prediction-link")
    assert 1 <= links.count() <= 5
    pid = links.first.inner_text()
    watched.shot("slices-panel-examples")

    links.first.click()
    page.wait_for_url(f"**/models/{name}/predictions/{pid}")
    watched.settle()
    drawn = page.evaluate(_CHART, "waterfall")
    assert drawn["y"][0] == "base value" and drawn["y"][-1] == "output"
    assert drawn["types"] == ["custom"]
    assert set(drawn["y"][1:-1]) <= {"amount", "age", "noise"} and len(drawn["y"]) == 5
    assert page.locator("#contributions tbody tr").count() == 3
    # the page's row is the slice's and wrong: its prediction beside a different label
    shown = {r.locator("th").inner_text(): r.locator("td").inner_text()
             for r in page.locator("#row-features tbody tr").all()}
    assert float(shown["amount"]) == pytest.approx(live.at[pid, "amount"], rel=1e-3)
    report = httpx.get(f"{server.url}/api/v1/models/{name}/rca", timeout=60, params={
        "start": seeded["t0"] - 60, "end": seeded["t0"] + 3600}).json()
    reported = next(s for s in report["slices"]["slices"] if s["description"] == slice_name)
    assert pid in reported["example_ids"]
    assert in_slice(live.loc[[pid]], reported["conditions"]).all()
    assert page.inner_text("#row-prediction") == str(live.at[pid, "pred"])
    assert page.inner_text("#row-label") == str(live.at[pid, "label"])
    assert live.at[pid, "pred"] != live.at[pid, "label"]
    watched.shot("slice-example-prediction")
