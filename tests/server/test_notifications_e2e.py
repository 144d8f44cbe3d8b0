"""Alerts reach real receivers through a real server: a signed webhook and a Slack-format
endpoint; a silence stops them; a receiver that was down gets everything when it is back;
secrets never come back out of the API."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from aiwarden.alerting.notifiers.webhook import sign
from tests.alerting.receivers import WebhookServer
from tests.server.conftest import evaluate, json_rows, register_model, scored_frame

SECRET = "s3cret-hmac-key"


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[WebhookServer, WebhookServer]]:
    with WebhookServer() as hook, WebhookServer() as slack:
        yield hook, slack


def _wait(check: Callable[[], bool], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _drifting_model(http, name: str) -> None:
    register_model(http, name)
    http.post(f"/models/{name}/predictions",
              json=json_rows(scored_frame(1500, seed=11, shift=1.2), time.time() - 1600))
    http.put(f"/rules/{name}/x-drift", json={"metric": "drift", "column": "x",
                                             "critical": 1.0}).raise_for_status()


def _about(model: str, hook: WebhookServer) -> list[dict]:
    return [r.json() for r in hook.delivered if r.json().get("group_labels", {}).get(
        "model") == model or model in r.body.decode(errors="replace")]


def test_alerts_reach_receivers_silences_hold_and_nothing_is_lost(http, hooks) -> None:
    hook, slack = hooks
    a, b, c = (f"nt{k}-{uuid.uuid4().hex[:5]}" for k in "abc")
    config = f"""
receivers:
  - {{type: webhook, name: hook, url: "{hook.url()}", secret: {SECRET}}}
  - {{type: slack, name: chat, url: "{slack.url('/slack')}"}}
route:
  receiver: hook
  group_by: [model, rule]
  group_wait: 1s
  group_interval: 1m
  routes:
    - {{receiver: hook, matchers: ["model=~nt.*"], continue: true}}
    - {{receiver: chat, matchers: ["model=~nt.*"]}}
rules: []
"""
    applied = http.post("/rules/apply", content=config).json()
    assert "notifications" in applied, applied
    assert applied["notifications"] == ["receivers", "route"]
    shown = http.get("/notifications/config").text
    assert SECRET not in shown and hook.url() not in shown  # secrets stay in

    _drifting_model(http, a)
    evaluate(http)
    _wait(lambda: _about(a, hook) and _about(a, slack))
    got = next(r for r in hook.delivered if a in r.body.decode())
    assert hmac.compare_digest(sign(SECRET, got.body), got.headers["x-aiwarden-signature"])
    body = got.json()
    assert body["status"] == "firing" and "x-drift" in got.body.decode()
    chat = next(r for r in slack.delivered if a in r.body.decode()).json()
    assert "text" in chat and chat.get("attachments")
    inc = http.get("/incidents", params={"model": a}).json()[0]
    timeline = http.get(f"/incidents/{inc['id']}").json()["timeline"]
    assert {e["detail"].get("receiver") for e in timeline if e["kind"] == "notification"} >= {
        "hook", "chat"}

    silence = http.post("/silences", json={"matchers": [f"model={b}"],
                                           "ends_at": time.time() + 3600,
                                           "comment": "known maintenance"}).json()
    _drifting_model(http, b)
    evaluate(http)
    time.sleep(2)  # give a wrong delivery time to happen
    assert not [r for r in hook.requests if b in r.body.decode()]
    assert http.get("/incidents", params={"model": b}).json()  # the incident still opens
    http.delete(f"/silences/{silence['id']}").raise_for_status()

    hook.stop()  # the receiver goes down...
    _drifting_model(http, c)
    evaluate(http)
    time.sleep(1.5)
    hook.start()  # ...and comes back on the same port
    _wait(lambda: [r for r in hook.delivered if c in r.body.decode()], within=60)
    attempts = http.get("/notifications/attempts").json()
    assert any(not x["ok"] for x in attempts if x.get("receiver") == "hook")
    assert SECRET not in str(attempts)


def test_escalation_pages_until_someone_acknowledges(http, hooks) -> None:
    hook, _ = hooks
    m = f"esc-{uuid.uuid4().hex[:5]}"
    config = f"""
receivers:
  - {{type: webhook, name: pager, url: "{hook.url('/pager')}"}}
route: {{receiver: pager, group_by: [model, rule], group_wait: 1h}}
escalation_policies:
  {m}: {{steps: [{{wait_minutes: 0, receiver: pager}}, {{wait_minutes: 60, receiver: pager}}]}}
rules: []
"""
    assert "escalation_policies" in http.post("/rules/apply", content=config).json()[
        "notifications"]
    bad = http.post("/rules/apply", content=config.replace("receiver: pager}, {",
                                                            "receiver: nobody}, {"))
    assert bad.status_code == 422 and "nobody" in bad.json()["detail"]["message"]
    _drifting_model(http, m)
    evaluate(http)
    _wait(lambda: [r for r in hook.delivered if r.path == "/pager" and m in r.body.decode()])
    page = next(r for r in hook.delivered if r.path == "/pager" and m in r.body.decode()).json()
    assert page["title"].startswith("Escalation:") and page["annotations"][
        "escalation_step"] == "1"
    inc = http.get("/incidents", params={"model": m}).json()[0]
    http.post(f"/incidents/{inc['id']}/acknowledge").raise_for_status()
    timeline = http.get(f"/incidents/{inc['id']}").json()["timeline"]
    steps = [e["detail"].get("escalation_step") for e in timeline if e["kind"] == "notification"]
    assert steps == [1]  # the second step (60 min) never comes: acknowledged
