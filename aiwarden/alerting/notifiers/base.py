"""What every receiver shares: the notification value, the error, config checks, redaction.

Secrets (tokens in webhook URLs, HMAC secrets, SMTP passwords, routing keys) are held by the
receiver and leave it only on the wire: ``repr``, ``describe()``, log lines and error texts
show ``***`` instead, because all of those end up in logs, the API and the database.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from aiwarden import __version__
from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import AiwardenError, ParameterError

__all__ = [
    "MASK",
    "SEVERITIES",
    "STATUSES",
    "DeliveryError",
    "Notification",
    "Receiver",
    "post_json",
    "receiver_from_config",
    "receiver_types",
    "redact_url",
    "register",
    "transport_reason",
    "url_secrets",
]

MASK = "***"
STATUSES = ("firing", "resolved")
SEVERITIES = ("critical", "error", "warning", "info")
USER_AGENT = f"aiwarden/{__version__}"

_REGISTRY: dict[str, type[Receiver]] = {}
R = TypeVar("R", bound="type[Receiver]")


class DeliveryError(AiwardenError):
    """A send failed; ``retryable`` says whether trying again later can help.

    ``status`` is the HTTP or SMTP code when the far end answered, ``retry_after`` the
    seconds it asked us to wait (HTTP ``Retry-After``). The message never holds a secret.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def _json_default(obj: object) -> object:
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON; datetimes as ISO 8601 so alert dicts need no preparation."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default).encode("utf-8")


@dataclass(frozen=True)
class Notification:
    """One message about one alert group, the same for every receiver.

    ``group_key`` identifies the group across messages (PagerDuty's dedup key), so the
    ``resolved`` message closes what the ``firing`` one opened.
    """

    title: str
    status: str = "firing"
    severity: str = "warning"
    model: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    runbook: str | None = None
    alerts: Sequence[Mapping[str, Any]] = field(default_factory=list)
    url: str | None = None
    group_key: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        owner = "Notification"
        if not isinstance(self.title, str) or not self.title.strip():
            raise ParameterError(f"The 'title' parameter of {owner} must be a non-empty str. "
                                 f"Got {self.title!r} instead.", "title")
        if self.status not in STATUSES:
            raise ParameterError(f"The 'status' parameter of {owner} must be one of "
                                 f"{list(STATUSES)}. Got {self.status!r} instead.", "status")
        if self.severity not in SEVERITIES:
            raise ParameterError(f"The 'severity' parameter of {owner} must be one of "
                                 f"{list(SEVERITIES)}. Got {self.severity!r} instead.",
                                 "severity")
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise ParameterError(f"The 'created_at' parameter of {owner} must be a timezone-"
                                 f"aware datetime. Got {self.created_at!r} instead.",
                                 "created_at")
        if not self.group_key:
            object.__setattr__(self, "group_key", hashlib.sha256(dumps(
                [self.title, self.model, sorted(self.labels.items())])).hexdigest()[:32])

    @property
    def id(self) -> str:
        """Stable id of this exact message: receivers use it to drop duplicate deliveries."""
        return hashlib.sha256(dumps(self._fields())).hexdigest()[:32]

    def _fields(self) -> dict[str, Any]:
        return {
            "title": self.title, "status": self.status, "severity": self.severity,
            "model": self.model, "labels": dict(self.labels),
            "annotations": dict(self.annotations), "runbook": self.runbook,
            "alerts": [dict(a) for a in self.alerts], "url": self.url,
            "group_key": self.group_key, "created_at": self.created_at.isoformat(),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``id``; :meth:`from_dict` reads it back."""
        return {"id": self.id, **self._fields()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notification:
        """Rebuild a notification saved with :meth:`to_dict` (e.g. a pending delivery)."""
        kw = {k: d[k] for k in inspect.signature(cls).parameters if k in d}
        if isinstance(kw.get("created_at"), str):
            kw["created_at"] = datetime.fromisoformat(kw["created_at"])
        return cls(**kw)

    @property
    def headline(self) -> str:
        """``[FIRING:2] title`` — the one line used for subjects, Slack text and summaries."""
        n = f":{len(self.alerts)}" if self.alerts else ""
        return f"[{self.status.upper()}{n}] {self.title}"

    @property
    def runbook_url(self) -> str | None:
        """The runbook when it is a link; markdown runbooks are shown as text instead."""
        rb = (self.runbook or "").strip()
        return rb if rb.startswith(("http://", "https://")) and " " not in rb else None


def alert_line(alert: Mapping[str, Any]) -> str:
    """One readable line for an alert dict of any shape the rules layer produces."""
    labels = alert.get("labels")
    parts = [str(alert.get("name") or alert.get("alertname") or alert.get("rule") or "alert")]
    if isinstance(labels, Mapping) and labels:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    for key in ("state", "status", "severity", "value"):
        if alert.get(key) is not None:
            parts.append(f"{key}={alert[key]}")
    summary = alert.get("summary") or (alert.get("annotations") or {}).get("summary")
    if summary:
        parts.append(f"— {summary}")
    return " ".join(parts)


def redact_url(url: str, keep_path: bool = False) -> str:
    """Scheme and host only (plus the path when ``keep_path``); tokens live in the rest."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path if keep_path else ("/" + MASK if parts.path.strip("/") else "")
    query = "?" + MASK if parts.query else ""
    return f"{parts.scheme}://{host}{path}{query}"


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` where tokens sit (path, query, password), for scrubbing."""
    parts = urlsplit(url)
    return [url, *(p for p in (parts.path.strip("/"), parts.query, parts.password or "") if p)]


# -- config checks: one message template, the field named, secrets never echoed ------------

def _fail(owner: str, name: str, expected: str, got: object, secret: bool = False) -> None:
    shown = f"a {type(got).__name__} (value hidden)" if secret and isinstance(got, str) \
        else repr(got)
    raise ParameterError(f"The {name!r} field of {owner} must be {expected}. "
                         f"Got {shown} instead.", name)


def check_str(owner: str, name: str, value: object, *, optional: bool = False,
              secret: bool = False) -> str | None:
    """A non-empty string (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(owner, name, "a non-empty str", value, secret)
    return value  # type: ignore[return-value]


def check_url(owner: str, name: str, value: object, *, secret: bool = True) -> str:
    """An absolute http(s) URL; hidden in the message because URLs carry tokens."""
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") \
            and bool(parts.hostname) and (parts.port is None or parts.port > 0) \
            and not any(c.isspace() or ord(c) < 32 for c in value)  # type: ignore[union-attr]
    except ValueError:  # "[::1", a port out of range or not a number
        ok = False
    if not ok:
        _fail(owner, name, "an http(s) URL", value, secret)
    return value  # type: ignore[return-value]


def check_number(owner: str, name: str, value: object, lo: float, hi: float) -> float:
    """A real number in ``(lo, hi]``; bools are refused even though they are ints."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not lo < value <= hi:
        _fail(owner, name, f"a number in ({lo:g}, {hi:g}]", value)
    return float(value)  # type: ignore[arg-type]


def check_bool(owner: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        _fail(owner, name, "a bool", value)
    return value  # type: ignore[return-value]


def check_str_map(owner: str, name: str, value: object, secret: bool = False) -> dict[str, str]:
    """A mapping of str to str (headers, labels)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        _fail(owner, name, "a mapping of str to str",
              "<hidden>" if secret and isinstance(value, Mapping) else value)
    return dict(value)  # type: ignore[arg-type]


# -- receivers ------------------------------------------------------------------------------

class Receiver(ABC):
    """Where notifications go. Subclasses set ``kind``, validate in ``__init__`` and send.

    ``send`` returns the far end's status code on success and raises
    :class:`DeliveryError` otherwise; retrying is the deliverer's job, not the receiver's.
    """

    kind: ClassVar[str] = ""
    config_aliases: ClassVar[dict[str, str]] = {}  # config key -> parameter ("from" -> sender)
    _not_config: ClassVar[frozenset[str]] = frozenset({"self", "egress"})

    def __init__(self, *, name: str, timeout: float = 10.0, send_resolved: bool = True,
                 egress: EgressPolicy | None = None) -> None:
        self.name = check_str(f"{self.kind} receiver", "name", name)
        owner = self.owner
        self.timeout = check_number(owner, "timeout", timeout, 0, 600)
        self.send_resolved = check_bool(owner, "send_resolved", send_resolved)
        # Where this receiver may connect: deny-by-default unless the deployment says so.
        # Never part of the receiver's config, so a config cannot widen it.
        self.egress = egress if egress is not None else EgressPolicy()

    @property
    def owner(self) -> str:
        """How messages name this receiver: ``webhook receiver 'ops'``."""
        return f"{self.kind} receiver {self.name!r}"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], egress: EgressPolicy | None = None
                    ) -> Self:
        """Build from a config dict; unknown or missing keys are named in the error.

        ``egress`` is the deployment's policy; it is not a config key.
        """
        owner = f"{cls.kind} receiver {config.get('name')!r}"
        params = {p: v for p, v in inspect.signature(cls.__init__).parameters.items()
                  if p not in cls._not_config}
        accepted = set(params)
        keys = {cls.config_aliases.get(k, k): k for k in config if k != "type"}
        unknown = sorted(k for p, k in keys.items() if p not in accepted)
        if unknown:
            valid = sorted((accepted - set(cls.config_aliases.values()))
                           | set(cls.config_aliases) | {"type"})
            raise ParameterError(f"The {unknown[0]!r} field of {owner} is not known. "
                                 f"Valid fields are {valid}.", unknown[0])
        for p, spec in params.items():
            if spec.default is inspect.Parameter.empty and p not in keys:
                key = next((k for k, v in cls.config_aliases.items() if v == p), p)
                raise ParameterError(f"The {key!r} field of {owner} is required.", key)
        kwargs = {p: config[k] for p, k in keys.items()}
        if "egress" in inspect.signature(cls.__init__).parameters:
            return cls(**kwargs, egress=egress)
        receiver = cls(**kwargs)  # a receiver written before the egress policy existed
        if egress is not None:
            receiver.egress = egress
        return receiver

    def wants(self, notification: Notification) -> bool:
        """Whether this receiver takes the message at all (``send_resolved: false``)."""
        return self.send_resolved or notification.status != "resolved"

    @abstractmethod
    def send(self, notification: Notification) -> int | None:
        """Deliver once; return the status code or raise :class:`DeliveryError`."""

    def _public(self) -> dict[str, Any]:
        """Kind-specific settings with secrets masked; extended by subclasses."""
        return {}

    def targets(self) -> list[tuple[str, str]]:
        """(config field, URL or ``host:port``) of every place this receiver connects to."""
        return []

    def check_egress(self) -> None:
        """Refuse, at configuration time, a target the egress policy denies on its face (a
        denied literal address in any spelling, a metadata or loopback name, a non-http(s)
        scheme), naming the field. Names are checked again, resolved, on every connect."""
        for name, target in self.targets():
            try:
                if "://" in target:
                    self.egress.check_url(target)
                else:
                    host, _, port = target.rpartition(":")
                    self.egress.check_host(host, int(port))
            except EgressDenied as exc:
                raise ParameterError(f"The {name!r} field of {self.owner} is refused by the "
                                     f"egress policy: {exc}. To allow it, list it in "
                                     "AIWARDEN_EGRESS_ALLOW (server flag --egress-allow).",
                                     name) from None

    def _secrets(self) -> list[str]:
        """Every secret string this receiver holds, so texts can be scrubbed of them."""
        return []

    def describe(self) -> dict[str, Any]:
        """Settings safe to show in the API, logs and UI: secrets appear as ``***``."""
        return {"name": self.name, "type": self.kind, **self._public(),
                "timeout": self.timeout, "send_resolved": self.send_resolved}

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***`` (longest first)."""
        for s in sorted((s for s in self._secrets() if s and len(s) >= 4), key=len,
                        reverse=True):
            text = text.replace(s, MASK)
        return text

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "type")
        return f"{type(self).__name__}({args})"


def register(cls: R) -> R:
    """Class decorator: make ``cls`` buildable by its ``kind`` from config."""
    _REGISTRY[cls.kind] = cls
    return cls


def receiver_types() -> list[str]:
    """The registered receiver kinds, sorted."""
    return sorted(_REGISTRY)


def receiver_from_config(config: Mapping[str, Any], egress: EgressPolicy | None = None,
                         secrets_dir: str | Path | None = None) -> Receiver:
    """Build a receiver from ``{"type": ..., "name": ..., ...}``; errors name the field.

    ``egress`` is where it may connect (deny-by-default when None); ``secrets_dir`` the
    folder ``{file: ...}`` references are read from (None: refused).
    """
    if not isinstance(config, Mapping):
        raise ParameterError(f"A receiver config must be a mapping. Got {config!r} instead.")
    kind = config.get("type")
    if not isinstance(kind, str) or kind not in _REGISTRY:  # a list or mapping: no 500
        raise ParameterError(f"The 'type' field of receiver {config.get('name')!r} must be one "
                             f"of {receiver_types()}. Got {kind!r} instead.", "type")
    from aiwarden.alerting.notifiers.secrets import resolve_secrets

    # ${env:NAME} / ${file:PATH} references: resolved here, never stored resolved
    return _REGISTRY[kind].from_config(resolve_secrets(config, secrets_dir), egress)


# -- HTTP -----------------------------------------------------------------------------------

def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def post_json(receiver: Receiver, url: str, body: bytes,
              headers: Mapping[str, str] | None = None) -> int:
    """POST ``body`` and classify the answer; return the 2xx status or raise DeliveryError.

    Connects only where ``receiver.egress`` allows, checked on the resolved address
    (:class:`aiwarden.egress.EgressTransport`), and through a transport rather than an
    ``httpx.Client`` because the client logs every request URL at INFO, and webhook URLs
    carry tokens. Redirects are not followed. The error holds a fixed reason and the
    status, never the far end's body: attempts are shown to every ``read`` key.
    Connection errors, timeouts, 408, 429 and 5xx are retryable; other 4xx and 3xx are not.
    """
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **(headers or {})}
    timeout = httpx.Timeout(receiver.timeout)
    request = httpx.Request("POST", url, content=body, headers=all_headers,
                            extensions={"timeout": timeout.as_dict()})
    try:
        with receiver.egress.http_transport() as transport:
            response = transport.handle_request(request)
            response.close()  # the body is never read: it is the far end's to fill
    except EgressDenied as e:
        raise DeliveryError(receiver.scrub(str(e)), retryable=False) from None
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out after {receiver.timeout:g}s", retryable=True
                            ) from None
    except httpx.TransportError as e:
        raise DeliveryError(transport_reason(e), retryable=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return status
    retryable = status >= 500 or status in (408, 429)
    note = " (redirects are not followed)" if 300 <= status < 400 else ""
    raise DeliveryError(f"HTTP {status} from receiver{note}", retryable=retryable,
                        status=status, retry_after=_retry_after(
                            response.headers.get("Retry-After")))


def transport_reason(exc: BaseException) -> str:
    """A fixed, content-free reason for a failed connection (no remote text, no URL)."""
    text = str(exc).lower()
    for needle, reason in (("refused", "connection refused"), ("resolve", "name does not "
                           "resolve"), ("name or service", "name does not resolve"),
                           ("certificate", "TLS certificate not trusted"),
                           ("ssl", "TLS handshake failed"), ("tls", "TLS handshake failed"),
                           ("reset", "connection reset"), ("unreachable", "network "
                           "unreachable")):
        if needle in text:
            return reason
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the receiver broke the HTTP protocol"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection lost"
    return f"connection failed ({type(exc).__name__})"
