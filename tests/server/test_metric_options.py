"""Drift with a chosen method and a column subset, against the engine on the raw rows."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

from aiwarden.engine import Reference
from aiwarden.engine.drift_metrics import get_metric
from tests.server.conftest import HINTS, json_rows, register_model, scored_frame


@pytest.fixture
def loaded(http) -> tuple[str, Reference, pd.DataFrame]:
    name = f"opts-{uuid.uuid4().hex[:6]}"
    ref_df = scored_frame(3000)
    register_model(http, name, ref_df)
    cur = scored_frame(1500, seed=4, shift=0.4)
    r = http.post(f"/models/{name}/predictions", json=json_rows(cur, time.time() - 1600))
    assert r.json()["accepted"] == 1500
    return name, Reference.fit(ref_df, **HINTS), cur


@pytest.mark.parametrize("method", ["psi", "ks", "hellinger"])
def test_method_decides_drift_as_the_engine_does(http, loaded, method: str) -> None:
    name, ref, cur = loaded
    r = http.get(f"/models/{name}/metrics", params={"metric": "drift", "start": "-1h",
                                                     "method": method})
    assert r.status_code == 200, r.text
    cols = r.json()["points"][0]["value"]["columns"]
    raw = cur[["x", "c", "score", "pred"]]
    ordered = get_metric(method)[1]  # ordered methods cannot judge categories
    settings = {"numerical_method": method} | ({} if ordered else {"categorical_method": method})
    want = ref.compare(ref.profile(raw), settings=settings).columns
    for c in (c for c in want if c.n_current):
        assert cols[c.column]["method"] == c.method
        assert cols[c.column]["value"] == pytest.approx(c.value, rel=1e-9)
        assert cols[c.column]["drifted"] == c.drifted
    assert cols["x"]["method"] == method and cols["x"]["drifted"]
    assert set(cols["x"]["metrics"]) >= {"psi", "ks", "wasserstein"}


def test_columns_limit_drift_and_bad_options_name_the_field(http, loaded) -> None:
    name, _, _ = loaded
    r = http.get(f"/models/{name}/metrics", params={"metric": "drift", "start": "-1h",
                                                     "columns": "x,c"})
    assert set(r.json()["points"][0]["value"]["columns"]) == {"x", "c"}
    bad = http.get(f"/models/{name}/metrics", params={"metric": "drift", "method": "nope"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "method"
    bad = http.get(f"/models/{name}/metrics", params={"metric": "volume", "method": "psi"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "method"
    bad = http.get(f"/models/{name}/metrics", params={"metric": "drift", "columns": "zz"})
    assert bad.status_code == 422 and "zz" in bad.json()["detail"]["message"]
