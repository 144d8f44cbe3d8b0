"""The model page's "most confused pairs" chart in a real browser (SQLite): drawn from the
joined labels, the class names (one holding markup) shown as text in the tooltip."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

MARKUP = "<b>cu</b>"  # a class name that is markup: must stay text


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    tmp = tmp_path_factory.mktemp("confusion")
    settings = settings_for(f"sqlite:///{tmp / 'c.db'}", tmp, evaluate_every=0.0)
    rng = np.random.default_rng(7)
    classes = ["apple", "banana", MARKUP]
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=60) as api:
        y = rng.choice(classes, 300)
        name = register_model(api, f"kiosk-{uuid.uuid4().hex[:6]}",
                              pd.DataFrame({"x": rng.normal(size=300), "pred": y, "y": y}),
                              {"target": "y", "prediction": "pred"})
        now = time.time()
        y = rng.choice(classes, 400)
        late = np.arange(400) >= 200  # the second hour: half the bananas called MARKUP
        pred = np.where((y == "banana") & late & (rng.random(400) < 0.5), MARKUP, y)
        rows = [{"prediction_id": f"p{i}", "timestamp": now - 7000 + i * 17,
                 "features": {"x": 0.0}, "prediction": str(p)} for i, p in enumerate(pred)]
        api.post(f"/models/{name}/predictions", json=rows).raise_for_status()
        api.post(f"/models/{name}/labels", json=[
            {"prediction_id": f"p{i}", "label": str(t)} for i, t in enumerate(y)]
        ).raise_for_status()
        yield srv, name


_TIP = """([id, k]) => {
  const c = window.aiwardenCharts[id].chart;
  const o = c.getOption();
  const data = o.series[0].data;
  const at = data.findIndex(p => p[1] !== null && p[1] > 0);
  c.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: at});
  const tips = [...c.getDom().querySelectorAll('div')].filter(d => d.innerHTML.includes('→'));
  return {names: o.series.map(s => s.name), at: at,
          html: tips.length ? tips[tips.length - 1].innerHTML : null};
}"""


def test_the_confused_pairs_chart_escapes_class_names(kiosk, watched) -> None:
    server, name = kiosk
    watched.open(f"{server.url}/models/{name}/panels/charts?range=6h")  # the panel alone
    got = watched.page.evaluate(_TIP, ["confusion", 0])
    assert got["names"] == [f"banana → {MARKUP}"]
    assert got["at"] >= 0 and got["html"] is not None
    assert "&lt;b&gt;cu&lt;/b&gt;" in got["html"] and MARKUP not in got["html"]
    watched.shot("confusion-chart")
