"""Generic webhook: the notification as JSON, signed so the receiver can trust it.

The receiver checks ``X-Aiwarden-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
under the shared secret, with a constant-time compare::

    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Aiwarden-Signature"])

``X-Aiwarden-Notification`` is the notification id: deliveries are at-least-once (a retry
after a lost response repeats a message), so receivers that care drop repeated ids.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aiwarden.alerting.notifiers.base import (
    MASK,
    Notification,
    Receiver,
    check_str,
    check_str_map,
    check_url,
    dumps,
    post_json,
    redact_url,
    register,
    url_secrets,
)
from aiwarden.egress import EgressPolicy
from aiwarden.errors import ParameterError

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookReceiver", "sign"]

SIGNATURE_HEADER = "X-Aiwarden-Signature"
TIMESTAMP_HEADER = "X-Aiwarden-Timestamp"
ID_HEADER = "X-Aiwarden-Notification"
_RESERVED = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, ID_HEADER,
                                 "content-type", "content-length", "host")}


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@register
class WebhookReceiver(Receiver):
    """POSTs ``{"version": "1", "receiver": name, **notification.to_dict()}``.

    Parameters
    ----------
    url : the endpoint; treated as a secret because such URLs often embed a token.
    secret : HMAC key; without it no signature header is sent.
    headers : extra headers (e.g. ``Authorization``); their values are treated as secrets.
    """

    kind = "webhook"

    def __init__(self, *, name: str, url: str, secret: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10.0,
                 send_resolved: bool = True, egress: EgressPolicy | None = None) -> None:
        super().__init__(name=name, timeout=timeout, send_resolved=send_resolved,
                         egress=egress)
        self._url = check_url(self.owner, "url", url)
        self._secret = check_str(self.owner, "secret", secret, optional=True, secret=True)
        self._headers = check_str_map(self.owner, "headers", headers, secret=True)
        clash = sorted(h for h in self._headers if h.lower() in _RESERVED)
        if clash:
            raise ParameterError(f"The 'headers' field of {self.owner} must not set "
                                 f"{clash[0]!r}; aiwarden sets it.", "headers")

    def body(self, notification: Notification) -> bytes:
        """The exact bytes sent (and signed)."""
        return dumps({"version": "1", "receiver": self.name, **notification.to_dict()})

    def send(self, notification: Notification) -> int | None:
        body = self.body(notification)
        headers = {**self._headers, TIMESTAMP_HEADER: str(int(time.time())),
                   ID_HEADER: notification.id}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        return post_json(self, self._url, body, headers)

    def targets(self) -> list[tuple[str, str]]:
        return [("url", self._url)]

    def _public(self) -> dict[str, Any]:
        return {"url": redact_url(self._url), "secret": MASK if self._secret else None,
                "headers": {k: MASK for k in self._headers}}

    def _secrets(self) -> list[str]:
        return [*url_secrets(self._url), self._secret or "",
                *self._headers.values()]

