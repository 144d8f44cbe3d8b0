"""The served version (the champion) under its own time limit, through a real server.

The champion is a real skops artifact (never a pickle): a logistic regression behind
tests/training/slow_model.py's step that waits an hour on every call of more than one row,
so single rows are answered and any batch hangs. The server's limit is the setting
``AIWARDEN_GATEWAY_SERVE_TIMEOUT`` (here 1.5 s, read from the environment as the server
reads it): each hanging batch is answered 504 naming the version and the limit while single
rows still get answers, until three calls are stuck; then the version is refused at once.
The timeouts are counted and an ``errors`` rule fires on them; the champion's alias stays.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from aiwarden.errors import ParameterError
from aiwarden.server.settings import ServerSettings
from tests.server.conftest import evaluate, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

MODEL = "champion-hangs"
SLOW_TYPE = "tests.training.slow_model.PerCallWait"
LIMIT = 1.5


def test_the_limits_are_settings_named_in_their_errors(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("AIWARDEN_GATEWAY_SERVE_TIMEOUT", "2.5")
    monkeypatch.setenv("AIWARDEN_GATEWAY_TRIAL_TIMEOUT", "0")
    s = ServerSettings.from_env()
    assert (s.gateway_serve_timeout, s.gateway_trial_timeout) == (2.5, 0.0)
    monkeypatch.setenv("AIWARDEN_GATEWAY_SERVE_TIMEOUT", "-1")
    with pytest.raises(ParameterError) as err:
        ServerSettings.from_env()
    assert err.value.field == "AIWARDEN_GATEWAY_SERVE_TIMEOUT"
    assert ServerSettings().gateway_serve_timeout == 30.0
    assert ServerSettings().gateway_trial_timeout == 10.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.training.pipelines import _one_hot_c
    from tests.training.slow_model import PerCallWait

    tmp = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIWARDEN_TRUSTED_MODULES", "tests.training.slow_model")
        env.setenv("AIWARDEN_SKOPS_TRUSTED", SLOW_TYPE)
        env.setenv("AIWARDEN_GATEWAY_SERVE_TIMEOUT", str(LIMIT))
        limit = ServerSettings.from_env().gateway_serve_timeout
        with ThreadServer(settings_for(f"sqlite:///{tmp / 's.db'}", tmp, evaluate_every=0,
                                       bucket_seconds=3600, gateway_serve_timeout=limit)
                          ) as server, \
                httpx.Client(base_url=server.url + "/api/v1", timeout=120) as http:
            ref = scored_frame(600, seed=1)
            register_model(http, MODEL, ref)
            hangs_on_batches = make_pipeline(PerCallWait(3600.0, above_rows=1),
                                             _one_hot_c(LogisticRegression())).fit(
                ref[["x", "c"]], ref["y"])
            http.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(hangs_on_batches),
                      params={"format": "skops"}).raise_for_status()
            http.put(f"/registry/models/{MODEL}/aliases/champion",
                     json={"version": "1", "reason": "test"}).raise_for_status()
            yield http


def _one(http: httpx.Client, i: int) -> httpx.Response:
    return http.post(f"/models/{MODEL}/predict", json={
        "prediction_id": f"one-{i}", "features": {"x": 0.1 * i, "c": "a"}})


def _batch(http: httpx.Client, i: int) -> httpx.Response:
    return http.post(f"/models/{MODEL}/predict", json={"rows": [
        {"prediction_id": f"b{i}-{j}", "features": {"x": 0.2 * j, "c": "b"}}
        for j in range(2)]})


def test_a_champion_that_hangs_is_answered_504_counted_and_alertable(api: httpx.Client
                                                                     ) -> None:
    api.put(f"/rules/{MODEL}/failed-predictions", json={
        "metric": "errors", "stat": "count", "window": "1h", "op": ">", "critical": 0,
        "for": "0m", "min_rows": 1}).raise_for_status()
    assert _one(api, 0).status_code == 200
    started = time.monotonic()
    hung = _batch(api, 0)
    assert time.monotonic() - started >= LIMIT  # waited out the limit, not refused at once
    assert hung.status_code == 504, hung.text
    assert hung.headers["X-Aiwarden-Version"] == "1"
    detail = hung.json()["detail"]
    assert (detail["error"], detail["version"]) == ("model_timeout", "1")
    assert detail["message"] == (f"{MODEL} version 1 did not answer: version 1 did not "
                                 f"answer within {LIMIT:g} s")
    # one input that hangs costs its own request: the next single row is answered
    ok = _one(api, 1)
    assert ok.status_code == 200 and ok.json()["version"] == "1", ok.text
    # two more hanging batches: three calls stuck, then the version is refused at once
    assert [_batch(api, i).status_code for i in (1, 2)] == [504, 504]
    refused = _one(api, 2)
    assert refused.status_code == 504
    assert "has 3 calls unanswered" in refused.json()["detail"]["message"]
    assert "it is not called again until one returns" in refused.json()["detail"]["message"]
    stats = api.post(f"/models/{MODEL}/gateway/flush").json()
    assert stats["flushed"], stats
    (gw,) = stats["gateways"]
    assert gw["timeouts"] == {"1": 4}
    assert list(gw["stuck"]) == ["1"] and gw["stuck"]["1"] >= LIMIT
    assert gw["limits"] == {"serve_timeout": LIMIT, "trial_timeout": 10.0}
    # each failed row is logged as the version's error: 3 batches of 2 rows and 1 refused row
    assert gw["by_version"]["1"]["errors"] == 7
    assert gw["by_version"]["1"]["requests"] == 9
    # alertable: the errors rule fires on the champion's timeouts ...
    out = evaluate(api)
    fired = [t["kind"] for t in out["transitions"] if t["labels"]["model"] == MODEL
             and t["labels"]["rule"] == "failed-predictions"]
    assert "firing" in fired, out["transitions"]
    (alert,) = [a for a in api.get(f"/models/{MODEL}/alerts").json()
                if a["labels"]["rule"] == "failed-predictions"]
    assert alert["state"]["phase"] == "firing", alert
    # ... and nothing moved the champion: its timeouts are not a trial to end
    assert api.get(f"/registry/models/{MODEL}/aliases").json()["champion"] == "1"
