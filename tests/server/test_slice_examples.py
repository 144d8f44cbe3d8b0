"""A failing slice names a few of its predictions (``example_ids``), wrong ones first, so
the slices panel and the incident page link "the model fails on amount < 10" to the
explained page of one such purchase; through a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.server.conftest import evaluate
from tests.server.test_response_models import Contract
from tests.slice_seed import failing_small_purchases, in_slice

pytest.importorskip("skops")


@pytest.fixture(scope="module")
def site(server: Any) -> Iterator[tuple[httpx.Client, httpx.Client, dict[str, Any]]]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as api, \
            httpx.Client(base_url=server.url, timeout=120) as web:
        yield api, web, failing_small_purchases(api)


def _check(ids: list[str], slice_: dict[str, Any], live: pd.DataFrame) -> None:
    assert 1 <= len(ids) <= 5 and len(set(ids)) == len(ids), ids
    rows = live.loc[ids]  # a KeyError: an id that was never logged
    assert in_slice(rows, slice_["conditions"]).all(), (slice_["description"], rows)
    # the slice holds at least five wrong predictions: every example is one of them
    assert (rows.label != rows.pred).all(), rows


def test_the_rca_slices_carry_wrong_predictions_of_the_slice(site) -> None:
    api, web, seeded = site
    live = seeded["live"]
    window = {"start": seeded["t0"] - 60, "end": time.time()}
    report = api.get(f"/models/{seeded['name']}/rca", params=window).json()
    slices = report["slices"]["slices"]
    assert slices and slices[0]["conditions"][0][0] == "amount", slices
    for s in slices:
        _check(s["example_ids"], s, live)
    # seeded: the same window gives the same examples
    again = api.get(f"/models/{seeded['name']}/rca", params=window).json()
    assert [s["example_ids"] for s in again["slices"]["slices"]] == [
        s["example_ids"] for s in slices]
    suspects = [s for s in report["suspects"] if s["kind"] == "slice"]
    assert suspects and suspects[0]["evidence"]["example_ids"] == slices[0]["example_ids"]
    # the document names the field, and every key of the answer (strict, as the tour does)
    doc = web.get("/openapi.json").json()
    assert "example_ids" in doc["components"]["schemas"]["RcaSlice"]["properties"]
    Contract(doc).check("GET", f"/api/v1/models/{seeded['name']}/rca", 200, report)


def test_the_slices_panel_links_each_example_to_its_prediction_page(site) -> None:
    _, web, seeded = site
    name, live = seeded["name"], seeded["live"]
    r = web.get(f"/models/{name}/panels/slices", params={"range": "24h"},
                headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    blocks = re.findall(r'<tr class="slice-examples" data-slice="([^"]*)">(.*?)</tr>', r.text,
                        re.S)
    assert blocks, r.text
    api_slices = _rca(site)
    report = {s["description"]: s for s in api_slices}
    assert [html.unescape(d) for d, _ in blocks] == [s["description"] for s in api_slices]
    for description, block in blocks:
        ids = [html.unescape(i) for i in re.findall(
            rf'href="/models/{re.escape(name)}/predictions/([^"]+)"', block)]
        _check(ids, report[html.unescape(description)], live)
        assert "Wrong predictions in this slice" in block and block.count("✗") == len(ids)
        label, pred = int(live.at[ids[0], "label"]), int(live.at[ids[0], "pred"])
        assert f"predicted {pred}, label {label}" in block
    page = web.get(f"/models/{name}/predictions/{ids[0]}")  # the link opens its page
    assert page.status_code == 200 and 'id="contributions"' in page.text


def _rca(site: Any) -> list[dict[str, Any]]:
    api, _, seeded = site
    return api.get(f"/models/{seeded['name']}/rca",
                   params={"start": seeded["t0"] - 60, "end": time.time()}
                   ).json()["slices"]["slices"]


def test_the_incident_links_its_failing_slices_examples(site) -> None:
    api, web, seeded = site
    name = seeded["name"]
    api.put(f"/rules/{name}/acc-low", json={
        "metric": "performance", "stat": "accuracy", "op": "<", "critical": 0.95,
        "window": "1h"}).raise_for_status()
    try:
        opened = evaluate(api)["incidents"]
        assert opened, "no incident opened"
        inc = api.get(f"/incidents/{opened[0]}").json()
        page = web.get(f"/incidents/{inc['id']}")
        assert page.status_code == 200
        block = re.search(r'<div class="small muted slice-examples">(.*?)</div>', page.text,
                          re.S)
        assert block, page.text
        ids = re.findall(rf'href="/models/{re.escape(name)}/predictions/([^"]+)"',
                         block.group(1))
        rca = next(e["detail"] for e in inc["timeline"]
                   if e["kind"] == "action" and "suspects" in e["detail"])
        slices = [s for s in rca["suspects"] if s["kind"] == "slice"]
        assert ids == slices[0]["evidence"]["example_ids"]
        _check(ids, slices[0]["evidence"], seeded["live"])
    finally:
        api.delete(f"/rules/{name}/acc-low")


def test_a_regressors_examples_err_more_than_the_rest(monitor) -> None:
    """A regressor has no "wrong": its examples are rows whose absolute error exceeds the
    mean elsewhere, read here from the raw frame."""
    from aiwarden.rca.analysis import failing_slices

    rng = np.random.default_rng(4)
    n = 2000
    a, b = rng.normal(size=n), rng.uniform(0, 5, n)
    pred = 2 * a + b
    y = pred + rng.normal(scale=np.where(a > 0.5, 4.0, 1.0))
    name = f"slice-r-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="regression")
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(pd.DataFrame(
        {"a": a, "b": b, "pred": pred, "y": pred + rng.normal(size=n)})),
        {"target": "y", "prediction": "pred"})
    now = time.time()
    monitor.log_predictions(name, [
        {"prediction_id": f"r{i}", "timestamp": now - 1500 + i * 0.5,
         "features": {"a": float(a[i]), "b": float(b[i])}, "prediction": float(pred[i])}
        for i in range(n)])
    monitor.log_labels(name, [{"prediction_id": f"r{i}", "label": float(y[i])}
                              for i in range(n)])
    with monitor.db.read() as conn:
        from aiwarden.store import models_repo

        m = models_repo.get_model(conn, name)
        ref = monitor.refs.get(conn, models_repo.get_version(conn, m, None).id)
    _, slices = failing_slices(ref.schema_, monitor.export_events(name, start=now - 1800,
                                                                  end=now))
    assert slices
    frame = pd.DataFrame({"a": a, "b": b, "err": np.abs(y - pred)},
                         index=[f"r{i}" for i in range(n)])
    for s in slices:
        assert len(s["example_ids"]) == 5
        rows = frame.loc[s["example_ids"]]
        assert in_slice(rows, s["conditions"]).all()
        assert (rows.err > s["rest_value"]).all(), (rows, s["rest_value"])
    # a bounded count: none asked, none given; the rows the slice holds at most
    assert all(s["example_ids"] == [] for s in failing_slices(
        ref.schema_, monitor.export_events(name, start=now - 1800, end=now), examples=0)[1])
