"""A candidate that hangs once it serves, through a real server: its calls in canary are
bounded by the gateway's trial time limit (``gateway_trial_timeout``: 10 s by default, 1.5 s
here, since the first stuck call of each version waits it out), answered 504 naming it and
logged as its errors; while its call is stuck, its later requests fail at once instead of piling up
threads; the rollback policy's canary comparison then rolls it back. In shadow, a stuck copy
delays no answer and stops no later copy: each is counted as the shadow's error.

The candidate is a real skops artifact (never a pickle): the champion's logistic regression
behind tests/training/slow_model.py's step that waits an hour on every call, loaded because
the operator trusts its module and type.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server.conftest import evaluate, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

MODEL = "hangs-in-serving"
SLOW_TYPE = "tests.training.slow_model.PerCallWait"
LIMIT = 1.5  # the default (10 s) is tested in tests/training/test_serve_watchdog.py


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.training.pipelines import _one_hot_c
    from tests.training.slow_model import PerCallWait

    tmp = tmp_path_factory.mktemp("trial")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIWARDEN_TRUSTED_MODULES", "tests.training.slow_model")
        env.setenv("AIWARDEN_SKOPS_TRUSTED", SLOW_TYPE)
        with ThreadServer(settings_for(f"sqlite:///{tmp / 't.db'}", tmp, evaluate_every=0,
                                       bucket_seconds=3600, gateway_trial_timeout=LIMIT)
                        ) as server, \
                httpx.Client(base_url=server.url + "/api/v1", timeout=120) as http:
            ref = scored_frame(600, seed=1)
            register_model(http, MODEL, ref)
            champion = _one_hot_c(LogisticRegression()).fit(ref[["x", "c"]], ref["y"])
            hangs = make_pipeline(PerCallWait(3600.0), _one_hot_c(LogisticRegression())).fit(
                ref[["x", "c"]], ref["y"])
            for model in (champion, hangs):
                http.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(model),
                          params={"format": "skops"}).raise_for_status()
            for alias, version in (("champion", "1"), ("challenger", "2")):
                http.put(f"/registry/models/{MODEL}/aliases/{alias}",
                         json={"version": version, "reason": "test"}).raise_for_status()
            yield http


def _predict(http: httpx.Client, i: int) -> httpx.Response:
    return http.post(f"/models/{MODEL}/predict", json={
        "prediction_id": f"r{i}", "features": {"x": 0.1 * i, "c": "a"}})


def test_a_canary_that_hangs_is_answered_504_then_rolled_back(api: httpx.Client) -> None:
    api.put(f"/models/{MODEL}/rollback-policy", json={
        "compare": {"metric": "error_rate", "window": "1h", "min_samples": 10}}
    ).raise_for_status()
    api.put(f"/models/{MODEL}/traffic", json={
        "mode": "canary", "percent": 50, "challenger": "@challenger"}).raise_for_status()
    answers = [_predict(api, i) for i in range(40)]
    by_version = {v: [r for r in answers if r.headers["X-Aiwarden-Version"] == v]
                  for v in ("1", "2")}
    assert len(by_version["1"]) + len(by_version["2"]) == 40
    assert len(by_version["1"]) >= 10 and len(by_version["2"]) >= 10
    assert all(r.status_code == 200 and r.json()["version"] == "1" for r in by_version["1"])
    first, *later = by_version["2"]
    assert first.status_code == 504, first.text
    detail = first.json()["detail"]
    assert (detail["error"], detail["version"]) == ("model_timeout", "2")
    assert detail["message"] == (f"{MODEL} version 2 did not answer: version 2 did not "
                                 f"answer within {LIMIT:g} s")
    # its call is still stuck: not called again, answered at once
    for r in later:
        assert r.status_code == 504 and r.json()["detail"]["error"] == "model_timeout"
        assert "it is not called again until that call returns" in r.json()["detail"][
            "message"]
    stats = api.post(f"/models/{MODEL}/gateway/flush").json()
    assert stats["flushed"], stats
    (gw,) = stats["gateways"]
    assert list(gw["stuck"]) == ["2"]
    assert gw["by_version"]["2"]["errors"] == len(by_version["2"])
    evaluate(api)  # the canary comparison sees version 2's errors and rolls it back
    aliases = api.get(f"/registry/models/{MODEL}/aliases").json()
    assert aliases["challenger"] == "1" and aliases["champion"] == "1", aliases
    assert api.get(f"/models/{MODEL}/traffic").json()["mode"] == "off"
    (last, *_) = api.get(f"/registry/models/{MODEL}/aliases/challenger/history").json()
    assert (last["from_version"], last["to_version"], last["kind"]) == ("2", "1", "rollback")


def test_a_shadow_that_hangs_delays_no_answer_and_stops_no_copy(api: httpx.Client) -> None:
    """A new hanging version (3): its first copy waits out the limit, the next two are
    refused at once while that call is stuck; every answer is the champion's."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.training.pipelines import _one_hot_c
    from tests.training.slow_model import PerCallWait

    api.delete(f"/models/{MODEL}/rollback-policy")
    ref = scored_frame(200, seed=4)
    hangs = make_pipeline(PerCallWait(3600.0), _one_hot_c(LogisticRegression())).fit(
        ref[["x", "c"]], ref["y"])
    api.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(hangs),
             params={"format": "skops"}).raise_for_status()
    api.put(f"/registry/models/{MODEL}/aliases/challenger",
            json={"version": "3", "reason": "in shadow"}).raise_for_status()
    api.put(f"/models/{MODEL}/traffic", json={
        "mode": "shadow", "challenger": "@challenger"}).raise_for_status()
    before = api.get(f"/models/{MODEL}/gateway").json()["gateways"][0]["shadow_queue"]
    answers = [_predict(api, 100 + i) for i in range(3)]
    assert all(r.status_code == 200 and r.json()["version"] == "1" for r in answers)
    stats = api.post(f"/models/{MODEL}/gateway/flush").json()
    assert stats["flushed"], stats  # every copy ran: none waits on the stuck call
    shadow = stats["gateways"][0]["shadow_queue"]
    assert shadow["ran"] - before["ran"] == 3 and shadow["errors"] - before["errors"] == 3
    assert shadow["queued"] == 0
    gw = stats["gateways"][0]
    assert gw["shadow"] == "3" and "3" in gw["stuck"]
    assert gw["by_version"]["3"] == {"requests": 3, "errors": 3,
                                     "model_seconds": gw["by_version"]["3"]["model_seconds"]}
