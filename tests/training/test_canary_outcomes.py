"""How a retrained candidate's canary ends besides promotion, through a real server (SQLite):
``superseded`` when a newer candidate takes the challenger alias during the hold, and
``rolled_back`` when the rollback policy's canary comparison finds it worse than the champion
(the existing rollback moves the alias back; the training loop's promotion tick sees it and
marks the run). Promotion after the hold is tests/server/test_demo.py's (the fraud
story's clean candidate ends promoted, champion)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server.conftest import evaluate, json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

MODEL = "canaried"
PIPELINE = {"entry": "tests.training.pipelines:train_logreg",
            "data": {"window": "3d", "min_rows": 200},
            "holdout": {"window": None, "share": 0.3, "seed": 0},
            "promotion": {"mode": "canary", "share": 0.2, "hold": "1h"},
            # only how the canary ends is under test: the gates that fit nothing are enough
            "gates": {"latency_budget_ms": 10_000, "slice_min_drop": None,
                      "max_overfit_gap": None}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("canary")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'c.db'}", tmp, allow_code_artifacts=True,
                                   evaluate_every=0, bucket_seconds=3600)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        _champion_with_traffic(http)
        http.put(f"/models/{MODEL}/pipeline", json=PIPELINE).raise_for_status()
        yield http


def _champion_with_traffic(http: httpx.Client) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from tests.training.pipelines import _one_hot_c

    ref = scored_frame(800, seed=1)
    register_model(http, MODEL, ref)
    champion = _one_hot_c(LogisticRegression()).fit(ref[["x", "c"]], ref["y"])
    http.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(champion),
              params={"format": "skops"}).raise_for_status()
    http.put(f"/registry/models/{MODEL}/aliases/champion",
             json={"version": "1", "reason": "first"}).raise_for_status()
    live = scored_frame(500, seed=2)
    rows = json_rows(live, time.time() - 86400, spacing=86400 / 500)
    http.post(f"/models/{MODEL}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{MODEL}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()


def _canary(http: httpx.Client) -> dict:
    """A run whose candidate passed its gates and went to canary."""
    run_id = http.post(f"/models/{MODEL}/runs").json()["id"]
    deadline = time.monotonic() + 120
    while (run := http.get(f"/runs/{run_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"run did not end: {run}"
        time.sleep(0.2)
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    assert run["result"]["promotion"]["state"] == "canary", run["result"]
    return run


def _promotion(http: httpx.Client, run_id: int, state: str, timeout: float = 20) -> dict:
    """The run's promotion once the server's promotion tick (every compact_every) set it.

    Only the lead process promotes; a server without an alert loop (evaluate_every=0)
    leads once an evaluation it was asked for took the lease, as here."""
    evaluate(http)
    deadline = time.monotonic() + timeout
    while (promo := http.get(f"/runs/{run_id}").json()["result"]["promotion"])["state"] \
            != state:
        assert time.monotonic() < deadline, promo
        time.sleep(0.2)
    return promo


def test_a_newer_candidate_during_the_hold_supersedes_the_canary(api) -> None:
    first = _canary(api)
    second = _canary(api)
    assert int(second["version"]) == int(first["version"]) + 1
    promo = _promotion(api, first["id"], "superseded")
    assert promo["by"] == second["id"]
    aliases = api.get(f"/registry/models/{MODEL}/aliases").json()
    assert aliases["challenger"] == second["version"] and aliases["champion"] == "1"
    # the newer one still holds its canary; the superseded one was never promoted
    assert api.get(f"/runs/{second['id']}").json()["result"]["promotion"]["state"] == "canary"
    traffic = api.get(f"/models/{MODEL}/traffic").json()
    assert (traffic["mode"], traffic["percent"]) == ("canary", 20.0)


def test_a_canary_worse_than_the_champion_is_rolled_back(api) -> None:
    run = _canary(api)
    api.put(f"/models/{MODEL}/rollback-policy", json={
        "compare": {"metric": "error_rate", "window": "1h", "min_samples": 50}}
    ).raise_for_status()
    now = time.time()
    for version, failed, prefix in (("1", 0, "champ"), (run["version"], 30, "cand")):
        rows = json_rows(scored_frame(100, seed=3), now - 100, prefix=prefix, spacing=0.5)
        for i, r in enumerate(rows):
            r["version"] = version
            if i < failed:
                r["error"] = "model crashed"
        assert api.post(f"/models/{MODEL}/predictions", json=rows).json()["accepted"] == 100
    evaluate(api)  # the cycle compares the canary with the champion and stops it
    aliases = api.get(f"/registry/models/{MODEL}/aliases").json()
    assert aliases["challenger"] == "1" and aliases["champion"] == "1", aliases
    assert api.get(f"/models/{MODEL}/traffic").json()["mode"] == "off"
    promo = _promotion(api, run["id"], "rolled_back")
    assert promo["at"] >= now and "by" not in promo
    (last, *_) = api.get(f"/registry/models/{MODEL}/aliases/challenger/history").json()
    assert (last["from_version"], last["to_version"], last["kind"]) == (
        run["version"], "1", "rollback")


def test_a_canary_that_holds_is_promoted_to_champion(api) -> None:
    """A hold of 2 s: the promotion tick after it makes the candidate the champion and ends
    the canary. The module's champion, pipeline and traffic are put back afterwards."""
    api.put(f"/models/{MODEL}/pipeline", json=PIPELINE | {
        "promotion": PIPELINE["promotion"] | {"hold": "2s"}}).raise_for_status()
    try:
        run = _canary(api)
        promo = _promotion(api, run["id"], "promoted")
        assert promo["at"] >= run["result"]["promotion"]["hold_until"], promo
        aliases = api.get(f"/registry/models/{MODEL}/aliases").json()
        assert aliases["champion"] == run["version"], aliases
        assert api.get(f"/models/{MODEL}/traffic").json()["mode"] == "off"
    finally:
        api.put(f"/registry/models/{MODEL}/aliases/champion",
                json={"version": "1", "reason": "the module's champion"}).raise_for_status()
        api.put(f"/models/{MODEL}/traffic", json={"mode": "off"}).raise_for_status()
        api.put(f"/models/{MODEL}/pipeline", json=PIPELINE).raise_for_status()


def test_a_shadow_candidate_is_served_in_shadow_and_left_to_a_person(api) -> None:
    """promotion.mode shadow: the candidate becomes the challenger that the gateway's shadow
    policy runs beside the champion (whose answers still go out); the run says a person
    promotes it (a shadow has no canary analysis to pass)."""
    api.put(f"/models/{MODEL}/pipeline", json=PIPELINE | {
        "promotion": {"mode": "shadow"}}).raise_for_status()
    try:
        run_id = api.post(f"/models/{MODEL}/runs").json()["id"]
        deadline = time.monotonic() + 120
        while (run := api.get(f"/runs/{run_id}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"run did not end: {run}"
            time.sleep(0.2)
        assert run["state"] == "succeeded", (run["reason"], run["gates"])
        assert run["result"]["promotion"]["state"] == "shadow"
        assert run["reason"] == f"version {run['version']} in shadow; promote it by hand"
        traffic = api.get(f"/models/{MODEL}/traffic").json()
        assert traffic["mode"] == "shadow", traffic
        aliases = api.get(f"/registry/models/{MODEL}/aliases").json()
        assert (aliases["challenger"], aliases["champion"]) == (run["version"], "1")
    finally:
        api.put(f"/models/{MODEL}/traffic", json={"mode": "off"}).raise_for_status()
        api.put(f"/models/{MODEL}/pipeline", json=PIPELINE).raise_for_status()
