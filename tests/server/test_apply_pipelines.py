"""``pipelines:`` in ``POST /rules/apply`` on SQLite and PostgreSQL: the dry run diffs each
pipeline field by field and writes nothing, the apply stores exactly what ``PUT
/models/{name}/pipeline`` would, a second apply changes nothing, a bad pipeline is refused
(naming ``pipelines[i].field``) before any rule of the file is written, and models the file
does not name keep their pipelines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

ENTRY = "tests.training.pipelines:train_raises"


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   allow_code_artifacts=True, evaluate_every=0)) as srv:
        yield srv


def _model(http: httpx.Client) -> str:
    name = f"ap-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    return name


def _apply(http: httpx.Client, doc: dict, dry_run: bool = False) -> httpx.Response:
    return http.post("/rules/apply", params={"dry_run": str(dry_run).lower()},
                     content=yaml.safe_dump(doc), headers={"content-type": "application/yaml"})


def test_dry_run_diffs_then_apply_stores_what_put_would(http: httpx.Client) -> None:
    a, b = _model(http), _model(http)
    http.put(f"/models/{b}/pipeline", json={"entry": ENTRY}).raise_for_status()
    kept = http.get(f"/models/{b}/pipeline").json()
    doc = {"pipelines": [{"model": a, "entry": ENTRY, "params": {"C": 0.5},
                          "triggers": {"schedule": "0 3 * * 1", "on_alerts": ["drift-x"]}}]}
    dry = _apply(http, doc, dry_run=True)
    assert dry.status_code == 200, dry.text
    (change,) = [c for c in dry.json()["diff"] if c["kind"] == "pipeline"]
    assert (change["name"], change["action"]) == (a, "create")
    fields = {f["field"]: f for f in change["fields"]}
    assert fields["params.C"] == {"field": "params.C", "current": None, "desired": 0.5}
    assert fields["triggers.on_alerts"]["desired"] == ["drift-x"]
    assert http.get(f"/models/{a}/pipeline").status_code == 404

    real = _apply(http, doc)
    assert real.status_code == 200 and real.json()["pipelines"] == [a]
    stored = http.get(f"/models/{a}/pipeline").json()
    http.put(f"/models/{a}/pipeline", json={k: v for k, v in doc["pipelines"][0].items()
                                            if k != "model"}).raise_for_status()
    assert http.get(f"/models/{a}/pipeline").json() == stored  # the same as a PUT stores
    again = _apply(http, doc, dry_run=True).json()
    assert [c for c in again["diff"] if c["kind"] == "pipeline"] == []
    assert http.get(f"/models/{b}/pipeline").json() == kept  # not named: left alone

    doc["pipelines"][0]["params"] = {"C": 1.0}
    change = next(c for c in _apply(http, doc, dry_run=True).json()["diff"]
                  if c["kind"] == "pipeline")
    assert change["action"] == "update"
    assert change["fields"] == [{"field": "params.C", "current": 0.5, "desired": 1.0}]


@pytest.mark.parametrize(("pipelines", "field"), [
    ("not a list", "pipelines"),
    (["entry-only"], "pipelines[0]"),
    ([{"entry": ENTRY}], "pipelines[0].model"),
    ([{"model": "{m}", "entry": ENTRY, "triggers": {"schedule": "61 * * * *"}}],
     "pipelines[0].triggers.schedule"),
    ([{"model": "{m}", "entry": ENTRY, "gates": {"data_policy": "ignore"}}],
     "pipelines[0].gates.data_policy"),
    ([{"model": "{m}"}], "pipelines[0].entry"),  # neither entry nor command
    ([{"model": "{m}", "entry": ENTRY, "command": ["python"]}], "pipelines[0].entry"),
    ([{"model": "{m}", "entry": ENTRY}, {"model": "{m}", "entry": ENTRY}],
     "pipelines[1].model"),
    # the Dask scheduler: the egress policy refuses a private address not on its allowlist
    ([{"model": "{m}", "entry": ENTRY,
       "executor": {"kind": "dask", "address": "tcp://10.1.2.3:8786"}}],
     "pipelines[0].executor.address"),
    ([{"model": "{m}", "entry": ENTRY, "executor": {"kind": "dask", "address": "udp://h:1"}}],
     "pipelines[0].executor.address"),
])
def test_a_bad_pipeline_is_refused_by_name_before_anything_is_written(
        http: httpx.Client, pipelines: object, field: str) -> None:
    m = _model(http)
    if isinstance(pipelines, list):
        pipelines = [{k: (v.format(m=m) if k == "model" else v) for k, v in p.items()}
                     if isinstance(p, dict) else p for p in pipelines]
    doc = {"rules": [{"name": "drift-x", "model": m, "metric": "drift", "column": "x",
                      "critical": 1}], "pipelines": pipelines}
    for dry in (True, False):
        r = _apply(http, doc, dry_run=dry)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == field, r.json()
    assert [r for r in http.get("/rules").json() if (r["model"], r["name"]) == (m, "drift-x")] == []
    assert http.get(f"/models/{m}/pipeline").status_code == 404
