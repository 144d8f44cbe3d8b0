"""Notifiers against real local receivers: HTTP endpoints and an SMTP server in threads."""

from __future__ import annotations

import doctest
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import aiwarden.alerting.notifiers as notifiers
from aiwarden.alerting.notifiers import (
    Deliverer,
    DeliveryAttempt,
    EmailReceiver,
    Notification,
    PagerDutyReceiver,
    SlackReceiver,
    WebhookReceiver,
    receiver_from_config,
)
from aiwarden.errors import ParameterError
from tests.alerting.receivers import LOOPBACK, SMTPServer, WebhookServer, self_signed_cert

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HMAC_SECRET = "hmac-s3cret-value"


def note(**kw: Any) -> Notification:
    base: dict[str, Any] = dict(
        title="Drift on fraud-detector", status="firing", severity="critical",
        model="fraud-detector", labels={"model": "fraud-detector", "rule": "drift"},
        annotations={"summary": "3 features drifted", "description": "amount, age, country"},
        runbook="https://runbooks.example/drift",
        alerts=[{"name": "drift", "labels": {"feature": "amount"}, "value": 0.41},
                {"name": "drift", "labels": {"feature": "age"}, "value": 0.33}],
        url="http://aiwarden.local/incidents/7", group_key="fraud-detector/drift",
        created_at=T0)
    return Notification(**{**base, **kw})


@pytest.fixture
def endpoint() -> Iterator[WebhookServer]:
    with WebhookServer() as srv:
        yield srv


def fast(**kw: Any) -> Deliverer:
    """A deliverer with test-sized delays."""
    return Deliverer(**{"base_delay": 0.05, "max_delay": 0.2, "seed": 0, **kw})


def test_public_api_is_pinned() -> None:
    assert set(notifiers.__all__) == {
        "MASK", "SEVERITIES", "STATUSES", "Deliverer", "DeliveryAttempt", "DeliveryError",
        "EmailReceiver", "Notification", "PagerDutyReceiver", "Receiver", "SlackReceiver",
        "WebhookReceiver", "receiver_from_config", "receiver_types", "register", "sign"}
    assert notifiers.receiver_types() == ["email", "pagerduty", "slack", "webhook"]


def test_notification_round_trips_and_checks_its_fields() -> None:
    n = note()
    d = n.to_dict()
    assert d["status"] == "firing" and d["created_at"] == "2026-05-01T12:00:00+00:00"
    assert Notification.from_dict(d) == n and Notification.from_dict(d).id == n.id == d["id"]
    assert note(status="resolved").id != n.id
    assert n.headline == "[FIRING:2] Drift on fraud-detector"
    with pytest.raises(ParameterError, match="'status' parameter of Notification") as e:
        note(status="pending")
    assert e.value.field == "status"
    with pytest.raises(ParameterError, match="timezone-aware"):
        note(created_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(("config", "field", "message"), [
    ({"type": "sms", "name": "x"}, "type", re.escape("one of ['email', 'pagerduty', 'slack'")),
    ({"type": "webhook", "name": "x"}, "url", "'url' field of webhook receiver 'x' is required"),
    ({"type": "webhook", "name": "x", "url": "ftp://h/p"}, "url", "must be an http"),
    ({"type": "webhook", "name": "x", "url": "http://h/p", "secrt": "s"}, "secrt",
     "Valid fields are"),
    ({"type": "webhook", "name": "x", "url": "http://h/p", "timeout": -1}, "timeout",
     r"number in \(0, 600\]"),
    ({"type": "webhook", "name": "x", "url": "http://h/p",
      "headers": {"X-Aiwarden-Signature": "x"}}, "headers", "aiwarden sets it"),
    ({"type": "slack", "name": "", "url": "http://h/p"}, "name", "non-empty str"),
    ({"type": "email", "name": "m", "host": "h", "to": ["a@b.c"]}, "from", "is required"),
    ({"type": "email", "name": "m", "host": "h", "from": "a@b.c", "to": []}, "to",
     "non-empty list"),
    ({"type": "email", "name": "m", "host": "h", "from": "a@b.c", "to": "x", }, "to",
     "email address"),
    ({"type": "email", "name": "m", "host": "h", "from": "a@b.c", "to": "d@e.f",
      "security": "tls"}, "security", "one of"),
    ({"type": "email", "name": "m", "host": "h", "from": "a@b.c", "to": "d@e.f",
      "security": "none", "username": "u", "password": "p"}, "password", "sent in clear"),
    ({"type": "pagerduty", "name": "pd", "routing_key": ""}, "routing_key", "non-empty str"),
])
def test_bad_config_names_the_field(config: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as e:
        receiver_from_config(config)
    assert e.value.field == field


def test_webhook_body_is_signed_with_hmac_sha256(endpoint: WebhookServer) -> None:
    r = receiver_from_config({"type": "webhook", "name": "ops", "url": endpoint.url(),
                              "secret": HMAC_SECRET, "headers": {"X-Team": "ml"}}, LOOPBACK)
    n = note()
    [attempt] = fast().deliver_now(r, n)
    assert attempt.ok and attempt.status == 200 and attempt.final
    [req] = endpoint.requests
    expected = "sha256=" + hmac.new(HMAC_SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, req.headers["x-aiwarden-signature"])
    assert not hmac.compare_digest(expected, "sha256=" + "0" * 64)
    assert abs(int(req.headers["x-aiwarden-timestamp"]) - time.time()) < 60
    assert req.headers["x-aiwarden-notification"] == n.id
    assert req.headers["content-type"] == "application/json" and req.headers["x-team"] == "ml"
    assert req.json() == {"version": "1", "receiver": "ops", **n.to_dict()}

    unsigned = WebhookReceiver(name="plain", url=endpoint.url(), egress=LOOPBACK)
    assert fast().deliver_now(unsigned, n)[0].ok
    assert "x-aiwarden-signature" not in endpoint.requests[-1].headers


def test_slack_body_has_the_incoming_webhook_shape(endpoint: WebhookServer) -> None:
    r = SlackReceiver(name="chat", url=endpoint.url("/services/T000/B000/XXXX"),
                      channel="#ml-alerts", egress=LOOPBACK)
    assert fast().deliver_now(r, note(title="x" * 400))[0].ok
    body = endpoint.requests[0].json()
    assert body["text"].startswith("[FIRING:2] xxx") and body["channel"] == "#ml-alerts"
    [att] = body["attachments"]
    assert att["color"] == notifiers.slack.COLORS["critical"]
    types = [b["type"] for b in att["blocks"]]
    assert types[0] == "header" and {"section", "context", "actions"} <= set(types)
    assert len(att["blocks"][0]["text"]["text"]) <= 150
    for block in att["blocks"]:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
    urls = [e["url"] for b in att["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert urls == ["http://aiwarden.local/incidents/7", "https://runbooks.example/drift"]
    assert "feature=amount" in str(att["blocks"])

    fast().deliver_now(r, note(status="resolved"))
    assert endpoint.requests[1].json()["attachments"][0]["color"] == "#2eb67d"


def test_pagerduty_events_v2_trigger_then_resolve(endpoint: WebhookServer) -> None:
    endpoint.status = 202
    key = "R0UTINGKEY0123456789abcdef012345"
    r = receiver_from_config({"type": "pagerduty", "name": "pd", "routing_key": key,
                              "url": endpoint.url("/v2/enqueue")}, LOOPBACK)
    d = fast()
    assert d.deliver_now(r, note())[0].status == 202
    assert d.deliver_now(r, note(status="resolved"))[0].ok
    trigger, resolve = (q.json() for q in endpoint.requests)
    # The fields the Events API v2 documents as required for a trigger.
    assert trigger["routing_key"] == key and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "fraud-detector/drift"
    p = trigger["payload"]
    assert p["summary"] == "Drift on fraud-detector (fraud-detector)" and len(p["summary"]) <= 1024
    assert p["source"] == "aiwarden" and p["severity"] in {"critical", "error", "warning", "info"}
    assert datetime.fromisoformat(p["timestamp"]) == T0
    assert p["custom_details"]["annotations"]["summary"] == "3 features drifted"
    assert {"href": "https://runbooks.example/drift", "text": "Runbook"} in trigger["links"]
    assert resolve == {"routing_key": key, "event_action": "resolve",
                       "dedup_key": "fraud-detector/drift"}
    assert r.describe()["url"] == endpoint.url("/v2/enqueue")
    assert PagerDutyReceiver(name="d", routing_key=key).url == \
        "https://events.pagerduty.com/v2/enqueue"


def _check_mail(smtp: SMTPServer, n: Notification) -> None:
    [(envelope, msg)] = smtp.messages
    assert envelope.mail_from == "aiwarden@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    assert msg["From"] == "aiwarden@example.com"
    assert msg["To"] == "oncall@example.com, ml@example.com"
    assert msg["Subject"] == "[aiwarden] [FIRING:2] Drift on fraud-detector"
    assert msg["X-Aiwarden-Group-Key"] == n.group_key
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Severity: critical" in plain and "feature=amount" in plain
    assert "https://runbooks.example/drift" in plain
    assert "<h2>[FIRING:2] Drift on fraud-detector</h2>" in html
    assert "<a href='https://runbooks.example/drift'>Runbook</a>" in html


def test_email_reaches_a_real_smtp_server() -> None:
    with SMTPServer() as smtp:
        r = receiver_from_config({
            "type": "email", "name": "mail", "host": "127.0.0.1", "port": smtp.port,
            "security": "none", "from": "aiwarden@example.com",
            "to": ["oncall@example.com", "ml@example.com"]}, LOOPBACK)
        n = note(annotations={"summary": "<b>not bold</b>"})
        [attempt] = fast().deliver_now(r, n)
        assert attempt.ok and attempt.status == 250
        _check_mail(smtp, n)
        html = smtp.messages[0][1].get_body(("html",)).get_content()
        assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_email_uses_starttls_and_login(tmp_path: Path) -> None:
    pem = self_signed_cert(tmp_path)
    if pem is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = pem
    with SMTPServer(cert=cert, key=key, login=("alerts", "smtp-pa55word")) as smtp:
        conf = {"type": "email", "name": "mail", "host": "127.0.0.1", "port": smtp.port,
                "security": "starttls", "ca_file": str(cert), "username": "alerts",
                "password": "smtp-pa55word", "from": "aiwarden@example.com",
                "to": ["oncall@example.com", "ml@example.com"]}
        n = note()
        assert fast().deliver_now(receiver_from_config(conf, LOOPBACK), n)[0].ok
        _check_mail(smtp, n)
        assert smtp.box.logins == ["alerts"]

        wrong = fast().deliver_now(
            receiver_from_config({**conf, "password": "nope-nope"}, LOOPBACK), n)
        assert [(a.ok, a.status, a.final) for a in wrong] == [(False, 535, True)]
        untrusted = fast().deliver_now(receiver_from_config(
            {k: v for k, v in conf.items() if k != "ca_file"}, LOOPBACK), n)
        assert len(untrusted) == 1 and untrusted[0].error == "TLS certificate not trusted"
        assert len(smtp.messages) == 1


def test_503s_are_retried_until_delivered(endpoint: WebhookServer) -> None:
    seen: list[DeliveryAttempt] = []
    endpoint.fail(2)
    attempts = fast(on_attempt=seen.append).deliver_now(
        WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK), note())
    assert attempts == seen
    assert [(a.ok, a.status, a.final, a.attempt) for a in attempts] == [
        (False, 503, False, 1), (False, 503, False, 2), (True, 200, True, 3)]
    assert attempts[0].error == "HTTP 503 from receiver" and attempts[0].retry_in
    assert len(endpoint.delivered) == 1 and len(endpoint.requests) == 3
    assert seen[0].to_dict()["at"].endswith("+00:00")


def test_429_waits_at_least_retry_after(endpoint: WebhookServer) -> None:
    endpoint.fail(1, status=429, retry_after="0.3")
    r = WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK)
    attempts = fast(max_delay=1).deliver_now(r, note())
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[0].retry_in is not None and attempts[0].retry_in >= 0.3
    assert (attempts[1].at - attempts[0].at).total_seconds() >= 0.3


def test_a_400_is_not_retried(endpoint: WebhookServer) -> None:
    endpoint.status = 400
    seen: list[DeliveryAttempt] = []
    d = fast(on_attempt=seen.append)
    assert d.send(WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK), note())
    assert d.flush(timeout=5)
    [a] = seen
    assert (a.ok, a.status, a.final, a.retry_in) == (False, 400, True, None)
    assert "gave up" not in str(a.error)
    assert len(endpoint.requests) == 1 and d.pending() == 0


def test_gives_up_after_max_attempts_or_give_up_after() -> None:
    with WebhookServer() as srv:
        url = srv.url()
    r = WebhookReceiver(name="down", url=url, egress=LOOPBACK)  # nothing listens there any more
    by_count = fast(max_attempts=3).deliver_now(r, note())
    assert [a.final for a in by_count] == [False, False, True]
    assert str(by_count[-1].error).startswith("connection refused")
    assert "gave up after 3 tries" in str(by_count[-1].error)
    start = time.monotonic()
    by_time = fast(give_up_after=0.4).deliver_now(r, note())
    assert 0.35 < time.monotonic() - start < 2 and len(by_time) >= 3
    assert by_time[-1].final and "gave up" in str(by_time[-1].error)


def test_a_receiver_down_for_two_seconds_loses_nothing(endpoint: WebhookServer) -> None:
    seen: list[DeliveryAttempt] = []
    r = WebhookReceiver(name="ops", url=endpoint.url(), secret=HMAC_SECRET, egress=LOOPBACK)
    sent = [note(), note(status="resolved"), note(group_key="fraud-detector/quality")]
    endpoint.stop()
    with fast(on_attempt=seen.append, max_delay=0.4) as d:
        for n in sent:
            assert d.send(r, n)
        time.sleep(2.0)
        assert d.pending() == 3 and endpoint.requests == []
        jobs = d.pending_jobs()
        assert [j["notification"]["id"] for j in jobs] == [n.id for n in sent]
        assert jobs[0]["attempts"] >= 3 and jobs[1]["attempts"] == 0
        endpoint.start()  # same port
        assert d.flush(timeout=10)
    assert d.pending() == 0
    got = [q.json()["id"] for q in endpoint.delivered]
    assert got == [n.id for n in sent]  # all of them, in order: resolved never overtakes
    failed = [a for a in seen if not a.ok]
    assert len(failed) >= 3 and all(not a.final and a.error == "connection refused"
                                    for a in failed)
    assert sum(a.ok for a in seen) == 3


def test_one_receiver_down_does_not_hold_up_another(endpoint: WebhookServer) -> None:
    with WebhookServer() as gone:
        dead_url = gone.url()
    d = fast()
    d.send(WebhookReceiver(name="dead", url=dead_url, egress=LOOPBACK), note())
    d.send(WebhookReceiver(name="live", url=endpoint.url(), egress=LOOPBACK), note())
    attempts = d.process_due()
    assert sorted((a.receiver, a.ok) for a in attempts) == [("dead", False), ("live", True)]
    assert d.pending() == 1 and len(endpoint.delivered) == 1


def test_send_resolved_false_skips_resolved(endpoint: WebhookServer) -> None:
    r = receiver_from_config({"type": "webhook", "name": "ops", "url": endpoint.url(),
                              "send_resolved": False}, LOOPBACK)
    d = fast()
    assert not d.send(r, note(status="resolved")) and d.pending() == 0
    assert d.deliver_now(r, note(status="resolved")) == []


def test_secrets_never_reach_logs_repr_describe_or_errors(
        endpoint: WebhookServer, caplog: pytest.LogCaptureFixture) -> None:
    token, slack_token, routing_key = "TOKEN-abc123xyz", "B000/XXXXsecretXXXX", "R" * 32
    password, header_token = "smtp-pa55word", "Bearer hdr-t0ken-123"
    secrets = [token, slack_token, routing_key, password, header_token, HMAC_SECRET]
    with WebhookServer() as gone:
        dead_port = gone.port
    receivers = [
        receiver_from_config({"type": "webhook", "name": "ops",
                              "url": endpoint.url(f"/hook/{token}?key={token}"),
                              "secret": HMAC_SECRET,
                              "headers": {"Authorization": header_token}}, LOOPBACK),
        SlackReceiver(name="chat", url=endpoint.url(f"/services/T000/{slack_token}"),
                      egress=LOOPBACK),
        PagerDutyReceiver(name="pd", routing_key=routing_key, url=endpoint.url("/v2/enqueue"),
                          egress=LOOPBACK),
        EmailReceiver(name="mail", host="127.0.0.1", port=dead_port, sender="a@example.com",
                      to="b@example.com", username="alerts", password=password, egress=LOOPBACK),
        WebhookReceiver(name="dead", url=f"http://127.0.0.1:{dead_port}/hook/{token}",
                        egress=LOOPBACK),
    ]
    seen: list[DeliveryAttempt] = []
    caplog.set_level(logging.DEBUG)
    endpoint.fail(3, status=503)
    d = fast(on_attempt=seen.append, max_attempts=2)
    for r in receivers:
        d.deliver_now(r, note())
    endpoint.status = 400
    for r in receivers[:3]:
        d.deliver_now(r, note())
    assert any(not a.ok for a in seen) and any(a.ok for a in seen)
    assert any(a.error == "connection refused" for a in seen if a.receiver == "mail")
    shown = [caplog.text, *map(repr, receivers), *(str(r.describe()) for r in receivers),
             *(str(a.to_dict()) for a in seen)]
    for text in shown:
        for s in secrets:
            assert s not in text
    assert "***" in repr(receivers[0]) and receivers[3].describe()["password"] == "***"
    # A bad value of a secret field is not echoed back either.
    with pytest.raises(ParameterError) as e:
        receiver_from_config({"type": "webhook", "name": "x", "url": f"htp://h/{token}"})
    assert token not in str(e.value)


def test_deliverer_parameters_use_the_house_message() -> None:
    with pytest.raises(ParameterError, match=re.escape(
            "The 'max_attempts' parameter of Deliverer must be None or an int >= 1. "
            "Got 0 instead.")):
        Deliverer(max_attempts=0)
    with pytest.raises(ParameterError, match="'max_delay' parameter"):
        Deliverer(base_delay=2, max_delay=1)


def test_module_doctests() -> None:
    result = doctest.testmod(notifiers.delivery)
    assert result.attempted > 0 and result.failed == 0


def test_a_resumed_message_keeps_its_tries_deadline_and_outbox_id(
        endpoint: WebhookServer) -> None:
    seen: list[DeliveryAttempt] = []
    r = WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK)
    d = fast(on_attempt=seen.append, give_up_after=60)
    endpoint.fail(1)
    assert d.send(r, note(), outbox_id=7, attempts=3, queued_at=time.time() - 61)
    assert d.send(r, note(), outbox_id=7) and d.pending() == 1  # already queued: once
    assert d.pending_jobs()[0]["outbox_id"] == 7
    d.process_due()
    [a] = seen  # the 4th try overall, and the 24 h (here 60 s) budget is spent
    assert (a.attempt, a.ok, a.final, a.outbox_id) == (4, False, True, 7)
    assert "gave up after 4 tries" in str(a.error)
    later = time.time() + 30
    assert d.send(r, note(status="resolved"), outbox_id=8, next_attempt_at=later)
    assert d.process_due() == [] and 29 < d.pending_jobs()[0]["next_in"] <= 30


def test_clear_drops_the_queue_and_rebind_redirects_it(endpoint: WebhookServer) -> None:
    with WebhookServer() as gone:
        dead_url = gone.url()
    dead = WebhookReceiver(name="ops", url=dead_url, egress=LOOPBACK)
    d = fast()
    for status in ("firing", "resolved"):
        d.send(dead, note(status=status))
    assert [a.ok for a in d.process_due()] == [False]
    # URL corrected
    d.rebind({"ops": WebhookReceiver(name="ops", url=endpoint.url(), egress=LOOPBACK)})
    assert d.flush(timeout=5)
    assert [q.json()["status"] for q in endpoint.delivered] == ["firing", "resolved"]
    d.send(dead, note())
    d.send(WebhookReceiver(name="other", url=dead_url, egress=LOOPBACK), note())
    assert d.clear() == 2 and d.pending() == 0 and d.process_due() == []
