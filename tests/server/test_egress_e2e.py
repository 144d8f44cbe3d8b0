"""Issue 11, point 2 through a real server (SQLite and PostgreSQL): receivers cannot be
pointed at loopback, private or metadata addresses unless the server's allowlist says so;
a name that resolves to a denied address is refused when connecting; what an allowlisted
receiver answers never comes back out of the API, only its status and a fixed reason."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from aiwarden.egress import EgressPolicy
from aiwarden.store import outbox_repo
from tests.alerting.receivers import WebhookServer
from tests.server.conftest import evaluate
from tests.server.live import ThreadServer, settings_for
from tests.server.test_notifications_e2e import _drifting_model

SECRET = "body-s3cret-from-the-receiver-42"
TOKEN = "path-t0ken-5e6f"


@pytest.fixture(scope="module")
def hooks() -> Iterator[dict[str, WebhookServer]]:
    with WebhookServer() as good, WebhookServer() as leaky, WebhookServer() as evil:
        yield {"good": good, "leaky": leaky, "evil": evil}


@pytest.fixture(scope="module")
def srv(db_url: str, tmp_path_factory: pytest.TempPathFactory,
        hooks: dict[str, WebhookServer]) -> Iterator[ThreadServer]:
    allow = f"127.0.0.1:{hooks['good'].port},127.0.0.1:{hooks['leaky'].port}"
    settings = settings_for(db_url, tmp_path_factory.mktemp("egress"), egress_allow=allow)
    with ThreadServer(settings) as server:
        yield server


@pytest.fixture
def api(srv: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{srv.url}/api/v1", timeout=60) as client:
        yield client


def _mapped(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]
    return resolve


def _config(*receivers: dict[str, Any]) -> dict[str, Any]:
    return {"route": {"receiver": receivers[0]["name"], "group_by": ["model", "rule"]},
            "receivers": list(receivers)}


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "webhook", "url": f"http://169.254.169.254/latest/meta-data/{TOKEN}"}, "url"),
    ({"type": "webhook", "url": f"http://10.0.0.5:8080/{TOKEN}"}, "url"),
    ({"type": "slack", "url": f"http://[::ffff:169.254.169.254]/{TOKEN}"}, "url"),
    ({"type": "slack", "url": f"http://2130706433/{TOKEN}"}, "url"),
    ({"type": "pagerduty", "routing_key": "k" * 32,
      "url": f"http://metadata.google.internal/{TOKEN}"}, "url"),
    ({"type": "webhook", "url": f"gopher://example.com:70/{TOKEN}"}, "url"),
    ({"type": "email", "host": "10.1.2.3", "from": "a@example.com", "to": "b@example.com"},
     "host"),
    ({"type": "email", "host": "localhost", "port": 25, "from": "a@example.com",
      "to": "b@example.com"}, "host"),
])
def test_denied_targets_are_refused_with_422_naming_the_field(
        api: httpx.Client, hooks: dict[str, WebhookServer], spec: dict[str, Any],
        field: str) -> None:
    before = api.get("/notifications/config").json()
    for attempt in (lambda c: api.put("/notifications/config", json=c),
                    lambda c: api.post("/rules/apply", json={**c, "rules": []})):
        r = attempt(_config({"name": "x", **spec}))
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["field"] == f"receivers[0].{field}"
        assert TOKEN not in r.text
        assert "egress" in detail["message"] or "http(s) URL" in detail["message"]
    assert api.get("/notifications/config").json() == before  # nothing replaced
    # loopback on a port the allowlist does not name is refused as well
    evil = api.put("/notifications/config", json=_config(
        {"type": "webhook", "name": "x", "url": hooks["evil"].url()}))
    assert evil.status_code == 422 and "127.0.0.1 is a loopback address" in evil.text


def test_connect_time_check_and_fixed_reasons(srv: ThreadServer, api: httpx.Client,
                                              hooks: dict[str, WebhookServer]) -> None:
    good, leaky, evil = hooks["good"], hooks["leaky"], hooks["evil"]
    center = srv.server.config.app.state.notifications  # type: ignore[attr-defined]
    # The server's own policy, with a resolver this test controls: rebind.test passes the
    # configuration check (it is a name) and resolves to loopback when connecting.
    center.egress = EgressPolicy(center.egress.allow,
                                 resolver=_mapped({"rebind.test": ["127.0.0.1"]}))
    leaky.fail(1000, status=500)
    leaky.error_body = f"<html><pre>{SECRET}</pre></html>".encode()
    m = f"eg-{uuid.uuid4().hex[:6]}"
    config = _config(
        {"type": "webhook", "name": "good", "url": good.url()},
        {"type": "webhook", "name": "rebound", "url": evil.url(f"/{TOKEN}", host="rebind.test")},
        {"type": "slack", "name": "leaky", "url": leaky.url(f"/{TOKEN}")})
    config["route"].update(group_wait="1s", routes=[
        {"receiver": name, "matchers": [f"model={m}"], "continue": True}
        for name in ("good", "rebound", "leaky")])
    api.put("/notifications/config", json=config).raise_for_status()

    _drifting_model(api, m)
    evaluate(api)

    def attempts() -> list[dict[str, Any]]:
        return api.get("/notifications/attempts").json()

    deadline = time.monotonic() + 60
    while not ({"rebound", "leaky"} <= {a["receiver"] for a in attempts()}
               and any(m in r.body.decode() for r in good.delivered)):
        assert time.monotonic() < deadline, attempts()
        time.sleep(0.2)

    # an old row from before the egress policy, holding the far end's reply text
    with center.db.write() as conn:
        outbox_repo.record_attempt(conn, receiver="legacy", at=time.time(), ok=False,
                                   status=502, error=f"HTTP 502: {SECRET}")

    seen = attempts()
    rebound = [a for a in seen if a["receiver"] == "rebound"]
    assert rebound and all(
        (a["ok"], a["final"], a["status"], a["error"]) ==
        (False, True, None, "egress denied: 127.0.0.1 is a loopback address") for a in rebound)
    assert evil.requests == []  # the denied address was never connected to
    leaky_tries = [a for a in seen if a["receiver"] == "leaky"]
    assert leaky_tries and all(a["status"] == 500 and a["error"].startswith(
        "HTTP 500 from receiver") for a in leaky_tries)
    assert leaky.requests  # it was reached, and its body came back ...
    assert [a["error"] for a in seen if a["receiver"] == "legacy"] == ["HTTP 502 from receiver"]
    queue = api.get("/notifications/queue")
    for text in (str(seen), queue.text, api.get("/notifications/config").text):
        assert SECRET not in text and TOKEN not in text  # ... but is nowhere in the API
    assert any(a["receiver"] == "good" and a["ok"] for a in seen)
