"""Slack incoming webhook (and the many chat tools that accept the same JSON).

The body is ``text`` (what phone notifications and old clients show) plus one attachment
coloured by severity holding Block Kit blocks. Slack caps header text at 150 characters,
section text at 3000 and section fields at 10, so long content is cut, never rejected.
"""

from __future__ import annotations

from typing import Any

from aiwarden.alerting.notifiers.base import (
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

__all__ = ["COLORS", "SlackReceiver", "slack_payload"]

COLORS = {"critical": "#d62728", "error": "#e8590c", "warning": "#f2c744", "info": "#439fe0",
          "resolved": "#2eb67d"}
_HEADER_MAX, _TEXT_MAX, _MAX_ALERTS = 150, 3000, 20


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: object) -> str:
    """Slack mrkdwn escaping: only &, < and > are special."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _TEXT_MAX)}}


def slack_payload(n: Notification) -> dict[str, Any]:
    """The incoming-webhook JSON for ``n`` (without channel overrides)."""
    color = COLORS["resolved"] if n.status == "resolved" else COLORS[n.severity]
    fields = [("Status", n.status.upper()), ("Severity", n.severity),
              ("Model", n.model or "—"), ("Alerts", str(len(n.alerts)))]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(n.headline, _HEADER_MAX),
                                    "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v)}"}
                                       for k, v in fields]},
    ]
    about = [n.annotations.get(k) for k in ("summary", "description") if n.annotations.get(k)]
    if about:
        blocks.append(_section("\n".join(_esc(a) for a in about)))
    if n.alerts:
        lines = [f"• {_esc(alert_line(a))}" for a in n.alerts[:_MAX_ALERTS]]
        if len(n.alerts) > _MAX_ALERTS:
            lines.append(f"… and {len(n.alerts) - _MAX_ALERTS} more")
        blocks.append(_section("*Alerts*\n" + "\n".join(lines)))
    if n.runbook and not n.runbook_url:
        blocks.append(_section("*Runbook*\n" + _esc(n.runbook)))
    if n.labels:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(n.labels.items()))
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _cut(_esc(labels), _TEXT_MAX)}]})
    buttons = [(label, link) for label, link in (("Open in aiwarden", n.url),
                                                 ("Runbook", n.runbook_url))
               if link and link.startswith(("http://", "https://"))]
    if buttons:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": link}
            for label, link in buttons]})
    return {"text": n.headline,
            "attachments": [{"color": color, "fallback": n.headline, "blocks": blocks}]}


@register
class SlackReceiver(Receiver):
    """POSTs :func:`slack_payload` to a Slack incoming-webhook URL (a secret: it is the token).

    ``channel``, ``username`` and ``icon_emoji`` are passed through for legacy webhooks and
    Slack-compatible tools that honour them.
    """

    kind = "slack"

    def __init__(self, *, name: str, url: str, channel: str | None = None,
                 username: str | None = None, icon_emoji: str | None = None,
                 timeout: float = 10.0, send_resolved: bool = True,
                 egress: EgressPolicy | None = None) -> None:
        super().__init__(name=name, timeout=timeout, send_resolved=send_resolved,
                         egress=egress)
        self._url = check_url(self.owner, "url", url)
        self.channel = check_str(self.owner, "channel", channel, optional=True)
        self.username = check_str(self.owner, "username", username, optional=True)
        self.icon_emoji = check_str(self.owner, "icon_emoji", icon_emoji, optional=True)

    def payload(self, notification: Notification) -> dict[str, Any]:
        extra = {k: v for k, v in (("channel", self.channel), ("username", self.username),
                                   ("icon_emoji", self.icon_emoji)) if v}
        return {**slack_payload(notification), **extra}

    def send(self, notification: Notification) -> int | None:
        return post_json(self, self._url, dumps(self.payload(notification)))

    def targets(self) -> list[tuple[str, str]]:
        return [("url", self._url)]

    def _public(self) -> dict[str, Any]:
        return {"url": redact_url(self._url), "channel": self.channel}

    def _secrets(self) -> list[str]:
        return url_secrets(self._url)
