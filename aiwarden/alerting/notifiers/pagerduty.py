"""PagerDuty Events API v2 (and services that accept its format, at a configurable URL).

A firing notification is a ``trigger`` event, a resolved one a ``resolve`` event; both carry
``dedup_key`` = the notification's group key, which is how PagerDuty knows the resolve
closes the incident the trigger opened. The routing (integration) key is a secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiwarden.alerting.notifiers.base import (
    MASK,
    Notification,
    Receiver,
    alert_line,
    check_str,
    check_url,
    dumps,
    post_json,
    redact_url,
    register,
    url_secrets,
)
from aiwarden.egress import EgressPolicy

__all__ = ["DEFAULT_URL", "PagerDutyReceiver", "pagerduty_event"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
_SUMMARY_MAX, _DEDUP_MAX = 1024, 255


def dedup_key(n: Notification) -> str:
    """The group key, hashed when longer than PagerDuty's 255-character limit."""
    key = n.group_key
    return key if len(key) <= _DEDUP_MAX else hashlib.sha256(key.encode()).hexdigest()


def pagerduty_event(n: Notification, routing_key: str, source: str = "aiwarden"
                    ) -> dict[str, Any]:
    """The Events v2 body for ``n``; ``resolve`` events carry only what the API reads."""
    event: dict[str, Any] = {"routing_key": routing_key,
                             "event_action": "resolve" if n.status == "resolved" else "trigger",
                             "dedup_key": dedup_key(n)}
    if n.status == "resolved":
        return event
    summary = n.title if not n.model else f"{n.title} ({n.model})"
    details: dict[str, Any] = {"labels": dict(n.labels), "annotations": dict(n.annotations),
                               "alerts": [alert_line(a) for a in n.alerts]}
    if n.runbook and not n.runbook_url:
        details["runbook"] = n.runbook
    payload: dict[str, Any] = {"summary": summary[:_SUMMARY_MAX], "source": source,
                               "severity": n.severity, "timestamp": n.created_at.isoformat(),
                               "custom_details": details}
    if n.model:
        payload["component"] = n.model
    links = [{"href": href, "text": text} for href, text in ((n.url, "Open in aiwarden"),
                                                             (n.runbook_url, "Runbook")) if href]
    event.update(payload=payload, client="aiwarden")
    if n.url:
        event["client_url"] = n.url
    if links:
        event["links"] = links
    return event


@register
class PagerDutyReceiver(Receiver):
    """Sends Events v2 to ``url`` (default PagerDuty's); ``source`` names this deployment."""

    kind = "pagerduty"

    def __init__(self, *, name: str, routing_key: str, url: str = DEFAULT_URL,
                 source: str = "aiwarden", timeout: float = 10.0,
                 send_resolved: bool = True, egress: EgressPolicy | None = None) -> None:
        super().__init__(name=name, timeout=timeout, send_resolved=send_resolved,
                         egress=egress)
        self._routing_key = check_str(self.owner, "routing_key", routing_key, secret=True)
        self.url = check_url(self.owner, "url", url)
        self.source = check_str(self.owner, "source", source)

    def event(self, notification: Notification) -> dict[str, Any]:
        return pagerduty_event(notification, self._routing_key, self.source)

    def send(self, notification: Notification) -> int | None:
        return post_json(self, self.url, dumps(self.event(notification)))

    def targets(self) -> list[tuple[str, str]]:
        return [("url", self.url)]

    def _public(self) -> dict[str, Any]:
        return {"url": redact_url(self.url, keep_path=True), "routing_key": MASK,
                "source": self.source}

    def _secrets(self) -> list[str]:
        return [self._routing_key, *url_secrets(self.url)[:1]]
