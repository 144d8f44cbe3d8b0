"""A gateway in this process over a real registry and monitor (SQLite and PostgreSQL):
answers equal the scikit-learn model's, events land under the version that made them,
traffic splits as the policy says, and versions swap without disturbing a request."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.gateway import (
    DatabaseSource,
    Gateway,
    GatewayHub,
    InvalidRequestError,
    PolicyStore,
    PredictionError,
    monitor_sink,
    shadow_id,
)
from aiwarden.monitoring.service import Monitor
from aiwarden.registry import Registry
from aiwarden.store.models_repo import NotFound
from tests.gateway import models
from tests.gateway.models import FEATURES, register_entry, register_pair, rows


def _gateway(registry: Registry, mon: Monitor, name: str, **kw: Any) -> Gateway:
    kw.setdefault("poll", 0)  # reloads happen when the test says so
    return Gateway(name, DatabaseSource(PolicyStore(registry), name), monitor_sink(mon, name),
                   **kw)


def _reference(mon: Monitor, name: str, version: str, model: Any) -> None:
    x, _ = models.frame(2000, seed=11)
    ref = x.assign(prediction=model.predict(x), score=model.predict_proba(x)[:, 1])
    mon.upload_reference(name, version, pa.Table.from_pandas(ref, preserve_index=False),
                         {"prediction": "prediction", "scores": "score"})


def _metric(mon: Monitor, name: str, metric: str, version: str | None = None) -> dict:
    """The metric over the last hour (and the next, for clocks that disagree a little)."""
    return mon.series(name, metric, start="-1h", end=time.time() + 3600,
                      version=version)["points"][0]


def _rows_of(mon: Monitor, name: str) -> pd.DataFrame:
    return mon.export_events(name, start="-1h", end=time.time() + 3600).to_pandas()


def test_answers_equal_the_model_and_events_land_with_version_and_latency(
        registry: Registry, mon: Monitor) -> None:
    v1, _ = register_pair(registry, "equal")
    _reference(mon, "equal", "1", v1)
    gw = _gateway(registry, mon, "equal")
    assert not gw.quick  # unknown speed: callers on an event loop hand it to a thread
    data = rows(40)
    # an event loop of its own, in a thread: this one may already run a loop (playwright's)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(asyncio.run, gw.predict_async(
            {"features": data[0], "prediction_id": "eq-0"})).result()
    assert gw._executor is not None  # it ran on the gateway's own thread
    answers = [first] + [gw.predict({"features": r, "prediction_id": f"eq-{i}",
                                     "tags": {"src": "t"}}) for i, r in enumerate(data) if i]
    batch = gw.predict({"rows": [{"features": r} for r in data]})
    x = pd.DataFrame(data)[FEATURES]
    expected, proba = v1.predict(x).tolist(), v1.predict_proba(x)
    for got in (answers, batch):
        assert [a["prediction"] for a in got] == expected
        assert [a["version"] for a in got] == ["1"] * len(data)
        assert [a["scores"]["1"] for a in got] == pytest.approx(proba[:, 1].tolist(),
                                                                 abs=1e-12)
        assert [a["scores"]["0"] for a in got] == pytest.approx(proba[:, 0].tolist(),
                                                                 abs=1e-12)
    assert [a["prediction_id"] for a in answers] == [f"eq-{i}" for i in range(len(data))]
    assert len({a["prediction_id"] for a in batch}) == len(data)  # generated, distinct
    with pytest.raises(PredictionError) as missing:
        gw.predict({"features": {"x1": 1.0, "x3": 2.0}})
    assert (missing.value.status, missing.value.field) == (422, "features.x2")
    assert "equal version 1" in str(missing.value)
    assert gw.flush(timeout=30)
    assert gw.events.stats()["sent"] == 2 * len(data) + 1
    ev = _rows_of(mon, "equal").set_index("prediction_id").loc[[f"eq-{i}" for i in
                                                                range(len(data))]]
    assert (ev["version"] == "1").all() and (ev["latency_ms"] > 0).all()
    assert ev["prediction"].astype(int).tolist() == expected
    assert ev["score"].tolist() == pytest.approx(proba[:, 1].tolist(), abs=1e-12)
    assert ev["x1"].tolist() == pytest.approx(x["x1"].tolist())
    assert _metric(mon, "equal", "latency", "1")["value"]["count"] == 2 * len(data) + 1
    gw.close()


def test_a_model_that_raises_gives_a_clear_error_and_a_logged_event(
        registry: Registry, mon: Monitor) -> None:
    version = register_entry(registry, "picky", "load_picky")
    registry.set_alias("picky", "champion", version, reason="test")
    gw = _gateway(registry, mon, "picky")
    ok = gw.predict({"features": {"x1": 1.0}, "prediction_id": "ok"})
    assert ok["prediction"] == 1 and ok["version"] == version
    with pytest.raises(PredictionError) as err:
        gw.predict({"features": {"x1": 5.0}, "prediction_id": "boom"})
    assert err.value.status == 500 and err.value.kind == "model_error"
    assert f"picky version {version}" in str(err.value) and "x1 above 3" in str(err.value)
    with pytest.raises(PredictionError) as bad:
        gw.predict({"features": {"amount": 5.0}, "prediction_id": "no-x1"})
    assert bad.value.status == 422 and "KeyError" in str(bad.value)
    for body, field in (({"features": []}, "features"), ([1, 2], "body"),
                        ({"features": {"x1": 1}, "prediction_id": True}, "prediction_id"),
                        ({"rows": []}, "rows"), ({"rows": [{"features": {}}]},
                                                 "rows[0].features")):
        with pytest.raises(InvalidRequestError) as invalid:
            gw.predict(body)
        assert invalid.value.field == field
    assert gw.flush(timeout=30)
    ev = _rows_of(mon, "picky").set_index("prediction_id")
    assert pd.isna(ev.loc["ok", "error"])
    assert "x1 above 3" in ev.loc["boom", "error"] and "KeyError" in ev.loc["no-x1", "error"]
    errors = _metric(mon, "picky", "errors")["value"]
    assert (errors["rows"], errors["errors"]) == (3, 2)
    assert gw.stats()["by_version"][version]["errors"] == 2
    gw.close()


def test_shadow_callers_only_see_the_champion_while_the_shadow_is_monitored(
        registry: Registry, mon: Monitor) -> None:
    v1, v2 = register_pair(registry, "shadowed")
    _reference(mon, "shadowed", "1", v1)
    _reference(mon, "shadowed", "2", v2)
    PolicyStore(registry).set("shadowed", {"mode": "shadow", "challenger": "2"},
                              actor="test", reason="compare on live traffic")
    gw = _gateway(registry, mon, "shadowed")
    data = rows(150, seed=3)
    answers = [gw.predict({"features": r, "prediction_id": f"s-{i}"})
               for i, r in enumerate(data)]
    x = pd.DataFrame(data)[FEATURES]
    assert {a["version"] for a in answers} == {"1"}
    assert [a["prediction"] for a in answers] == v1.predict(x).tolist()
    assert v1.predict(x).tolist() != v2.predict(x).tolist()  # the shadow would differ
    assert gw.flush(timeout=30)
    for version in ("1", "2"):
        assert _metric(mon, "shadowed", "volume", version)["rows"] == len(data)
        assert _metric(mon, "shadowed", "latency", version)["value"]["count"] == len(data)
        assert _metric(mon, "shadowed", "prediction", version)["value"] is not None
    ev = _rows_of(mon, "shadowed").set_index("prediction_id")
    shadow = ev.loc[[shadow_id(f"s-{i}", "2") for i in range(len(data))]]
    assert (shadow["version"] == "2").all()
    assert shadow["prediction"].astype(int).tolist() == v2.predict(x).tolist()
    assert gw.stats()["shadow_queue"]["ran"] == len(data)
    gw.close()


def test_canary_share_is_binomial_and_sticky_keys_never_switch(
        registry: Registry, mon: Monitor) -> None:
    register_pair(registry, "canary")
    policies = PolicyStore(registry)
    policies.set("canary", {"mode": "canary", "challenger": "2", "percent": 20})
    gw = _gateway(registry, mon, "canary")
    feats = rows(1)[0]
    n = 2000

    def versions(bodies: list[dict[str, Any]]) -> list[str]:
        """One batch request: every row is routed on its own (and logged on its own)."""
        return [a["version"] for a in gw.predict({"rows": bodies})]

    picks = versions([{"features": feats, "prediction_id": f"c-{i}"} for i in range(n)])
    assert abs(picks.count("2") - 0.2 * n) < 5 * math.sqrt(n * 0.2 * 0.8), picks.count("2")
    # the same id routes the same way again (a retried request meets the same version)
    assert [gw.predict({"features": feats, "prediction_id": f"c-{i}"})["version"]
            for i in range(20)] == picks[:20]
    policies.set("canary", {"mode": "canary", "challenger": "2", "percent": 20,
                            "sticky_key": "customer"})
    assert gw.reload()
    customers = [f"cust-{i % 300}" for i in range(900)]
    seen: dict[str, set[str]] = {}
    for _ in range(2):  # two rounds, fresh prediction ids: a customer never switches
        got = versions([{"features": {**feats, "customer": c}} for c in customers])
        for c, v in zip(customers, got, strict=True):
            seen.setdefault(c, set()).add(v)
    assert all(len(v) == 1 for v in seen.values())
    on_challenger = {c for c, v in seen.items() if v == {"2"}}
    assert 0 < len(on_challenger) < 300
    policies.set("canary", {"mode": "canary", "challenger": "2", "percent": 50,
                            "sticky_key": "customer"})
    assert gw.reload()
    # a bigger canary keeps everyone who was on it (the key may also be a tag)
    assert set(versions([{"features": feats, "tags": {"customer": c}}
                         for c in on_challenger])) == {"2"}
    policies.set("canary", {"mode": "ab", "weights": {"1": 1, "2": 3}})
    assert gw.reload()
    picks = versions([{"features": feats, "prediction_id": f"ab-{i}"} for i in range(n)])
    assert abs(picks.count("2") - 0.75 * n) < 5 * math.sqrt(n * 0.75 * 0.25)
    assert gw.flush(timeout=30)
    assert gw.events.stats()["sent"] == gw.events.stats()["accepted"] == 2 * n + 20 + 1800 \
        + len(on_challenger)
    gw.close()


def test_in_flight_requests_finish_on_the_old_version(registry: Registry,
                                                      mon: Monitor) -> None:
    old = register_entry(registry, "swap", "load_waiter")
    new = register_entry(registry, "swap", "load_picky")
    registry.set_alias("swap", "champion", old, reason="test")
    gw = _gateway(registry, mon, "swap")
    result: dict[str, Any] = {}

    def slow() -> None:
        try:
            result["answer"] = gw.predict({"features": {"x1": 1.0, "wait": 1}})
        except Exception as exc:  # reported below
            result["error"] = exc

    t = threading.Thread(target=slow)
    t.start()
    assert models.STARTED.wait(30)  # the request is inside the old version's predict
    registry.set_alias("swap", "champion", new, reason="promote", actor="test")
    assert gw.reload() and gw.version == new
    assert gw.predict({"features": {"x1": 1.0, "wait": 1}})["version"] == new
    models.GATE.set()
    t.join(30)
    assert "error" not in result and result["answer"]["version"] == old
    assert not gw.reload()  # nothing changed since: nothing reloaded
    gw.close()


def test_the_watcher_follows_alias_moves_and_survives_a_vanished_target(
        registry: Registry, mon: Monitor) -> None:
    register_pair(registry, "watched")
    registry.set_alias("watched", "challenger", "2", reason="candidate")
    PolicyStore(registry).set("watched", {"mode": "canary", "challenger": "@challenger",
                                          "percent": 100})
    gw = _gateway(registry, mon, "watched", poll=0.05)
    feats = rows(1)[0]
    assert gw.predict({"features": feats})["version"] == "2"
    registry.delete_alias("watched", "challenger", reason="withdrawn")
    deadline = time.monotonic() + 20
    while gw.stats()["arms"] and time.monotonic() < deadline:
        assert gw.predict({"features": feats})["version"] in ("1", "2")
        time.sleep(0.01)
    assert gw.stats()["arms"] == {} and "challenger" in gw.last_error
    assert gw.predict({"features": feats})["version"] == "1"  # its traffic falls back
    registry.set_alias("watched", "champion", "2", reason="promote")
    while gw.version != "2" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gw.predict({"features": feats})["version"] == "2"
    assert gw.stats()["reloads"] == 3
    gw.close()


def test_the_hub_loads_on_first_use_and_refuses_what_cannot_be_served(
        registry: Registry, mon: Monitor) -> None:
    register_pair(registry, "hubbed")
    hub = GatewayHub(lambda n: DatabaseSource(PolicyStore(registry), n),
                     lambda n: monitor_sink(mon, n), poll=0)
    with pytest.raises(NotFound, match="no alias 'staging'"):
        hub.get("hubbed", "staging")
    with pytest.raises(NotFound):
        hub.get("no-such-model")
    assert hub.all() == []
    gw = hub.get("hubbed")
    assert hub.get("hubbed") is gw and gw.version == "1"
    # the model's policy applies to the alias it names; other served aliases ignore it
    registry.set_alias("hubbed", "staging", "1", reason="test")
    PolicyStore(registry).set("hubbed", {"mode": "canary", "challenger": "2", "percent": 100})
    assert hub.reload("hubbed") == {"hubbed@champion": True}
    feats = rows(1)[0]
    assert hub.get("hubbed").predict({"features": feats})["version"] == "2"
    staging = hub.get("hubbed", "staging")
    assert staging.predict({"features": feats})["version"] == "1"
    assert staging.stats()["policy"] == {"mode": "off"}
    PolicyStore(registry).set("hubbed", {"mode": "off"})
    registry.set_alias("hubbed", "champion", "2", reason="promote")
    assert hub.reload("hubbed") == {"hubbed@champion": True, "hubbed@staging": True}
    assert gw.version == "2" and staging.version == "1"
    hub.close()
    with pytest.raises(RuntimeError, match="closed"):
        hub.get("hubbed")


def test_a_model_fitted_on_arrays_gets_its_columns_in_its_order(registry: Registry,
                                                                 mon: Monitor) -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.registry.models import skops_bytes

    x, y = models.frame(300, seed=4)
    est = LogisticRegression().fit(x[["x3", "x1", "x2"]].to_numpy(), y)  # no feature names
    registry.register("arrays", skops_bytes(est), format="skops",
                      metadata={"inputs": ["x3", "x1", "x2"]})
    registry.set_alias("arrays", "champion", "1", reason="test")
    gw = _gateway(registry, mon, "arrays")
    data = rows(25, seed=8)
    data[3] = {**data[3], "x2": round(data[3]["x2"])}  # an int among floats
    ordered = pd.DataFrame(data)[["x3", "x1", "x2"]].to_numpy()
    one = [gw.predict({"features": r}) for r in data]
    many = gw.predict({"rows": [{"features": r} for r in data]})
    for got in (one, many):
        assert [a["prediction"] for a in got] == est.predict(ordered).tolist()
        assert [a["scores"]["1"] for a in got] == pytest.approx(
            est.predict_proba(ordered)[:, 1].tolist(), abs=1e-12)
    text = gw.predict({"features": {"x1": "1.5", "x2": 0.0, "x3": 1.0}})  # via the frame
    assert text["prediction"] == est.predict(np.array([[1.0, 1.5, 0.0]])).tolist()[0]
    with pytest.raises(PredictionError) as err:
        gw.predict({"features": {"x1": 1.0, "x2": 2.0}})
    assert err.value.field == "features.x3"
    gw.close()
