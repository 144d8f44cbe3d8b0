"""Email over SMTP: a plain-text part for every client, an HTML part for those that show it.

``security`` is ``starttls`` (default, port 587), ``ssl`` (implicit TLS, port 465) or
``none`` (port 25). A password is refused with ``none``: it would cross the network in
clear. ``ca_file`` trusts a private CA, as internal relays often use one.

The connection goes only to an address the receiver's egress policy allows, resolved and
checked when connecting (TLS still verifies the configured host name); errors carry the
SMTP code and a fixed reason, never the server's reply text.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, ClassVar

from aiwarden.alerting.notifiers.base import (
    MASK,
    DeliveryError,
    Notification,
    Receiver,
    alert_line,
    check_str,
    register,
    transport_reason,
)
from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import ParameterError

__all__ = ["EmailReceiver", "render_email"]

_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _lines(n: Notification) -> list[tuple[str, str]]:
    """(label, value) rows shared by both parts, so they never disagree."""
    rows = [("Status", n.status.upper()), ("Severity", n.severity)]
    if n.model:
        rows.append(("Model", n.model))
    rows += [(k.capitalize(), v) for k, v in n.annotations.items()]
    if n.labels:
        rows.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(n.labels.items()))))
    return rows


def render_email(n: Notification) -> tuple[str, str]:
    """The (plain text, HTML) bodies for ``n``."""
    rows = _lines(n)
    text = [n.headline, ""] + [f"{k}: {v}" for k, v in rows]
    if n.alerts:
        text += ["", "Alerts:"] + [f"  - {alert_line(a)}" for a in n.alerts]
    if n.runbook:
        text += ["", "Runbook:", n.runbook]
    if n.url:
        text += ["", f"Open in aiwarden: {n.url}"]
    e = html.escape
    parts = [f"<h2>{e(n.headline)}</h2>", "<table>"]
    parts += [f"<tr><th align='left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table>")
    if n.alerts:
        parts.append("<h3>Alerts</h3><ul>" + "".join(
            f"<li>{e(alert_line(a))}</li>" for a in n.alerts) + "</ul>")
    if n.runbook_url:
        parts.append(f"<p><a href='{e(n.runbook_url)}'>Runbook</a></p>")
    elif n.runbook:
        parts.append(f"<h3>Runbook</h3><pre>{e(n.runbook)}</pre>")
    if n.url:
        parts.append(f"<p><a href='{e(n.url)}'>Open in aiwarden</a></p>")
    return "\n".join(text) + "\n", "<html><body>" + "\n".join(parts) + "</body></html>\n"


class _SMTP(smtplib.SMTP):
    """smtplib's client, connecting to checked addresses instead of the host name."""

    egress: EgressPolicy

    def __init__(self, *args: Any, egress: EgressPolicy | None = None, **kw: Any) -> None:
        if egress is not None:
            self.egress = egress
        super().__init__(*args, **kw)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return self.egress.create_connection(host, port, timeout, self.source_address)


class _SMTPSSL(smtplib.SMTP_SSL, _SMTP):
    """Implicit TLS over :class:`_SMTP`'s checked connection (SMTP_SSL wraps its socket)."""

    def __init__(self, *args: Any, egress: EgressPolicy, **kw: Any) -> None:
        self.egress = egress
        super().__init__(*args, **kw)


@register
class EmailReceiver(Receiver):
    """Sends one multipart email per notification to every address in ``to``."""

    kind = "email"
    config_aliases: ClassVar[dict[str, str]] = {"from": "sender"}

    def __init__(self, *, name: str, host: str, sender: str, to: list[str] | str,
                 port: int | None = None, security: str = "starttls",
                 username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, subject_prefix: str = "[aiwarden]",
                 timeout: float = 10.0, send_resolved: bool = True,
                 egress: EgressPolicy | None = None) -> None:
        super().__init__(name=name, timeout=timeout, send_resolved=send_resolved,
                         egress=egress)
        o = self.owner
        self.host = check_str(o, "host", host)
        self.sender = _address(o, "from", sender)
        to_list = [to] if isinstance(to, str) else to
        if not isinstance(to_list, list) or not to_list:
            raise ParameterError(f"The 'to' field of {o} must be an address or a non-empty "
                                 f"list of addresses. Got {to!r} instead.", "to")
        self.to = [_address(o, "to", a) for a in to_list]
        if security not in _PORTS:
            raise ParameterError(f"The 'security' field of {o} must be one of "
                                 f"{list(_PORTS)}. Got {security!r} instead.", "security")
        self.security = security
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 < port < 65536):
            raise ParameterError(f"The 'port' field of {o} must be an int in [1, 65535]. "
                                 f"Got {port!r} instead.", "port")
        self.port = _PORTS[security] if port is None else port
        self.username = check_str(o, "username", username, optional=True)
        self._password = check_str(o, "password", password, optional=True, secret=True)
        if (self.username is None) != (self._password is None):
            raise ParameterError(f"The 'username' and 'password' fields of {o} must be given "
                                 "together.", "password")
        if self._password is not None and security == "none":
            raise ParameterError(f"The 'password' field of {o} needs 'security' starttls or "
                                 "ssl; it would be sent in clear.", "password")
        self.ca_file = check_str(o, "ca_file", ca_file, optional=True)
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ParameterError(f"The 'ca_file' field of {o} must be a readable file. "
                                 f"Got {ca_file!r} instead.", "ca_file")
        if not isinstance(subject_prefix, str):
            raise ParameterError(f"The 'subject_prefix' field of {o} must be a str. "
                                 f"Got {subject_prefix!r} instead.", "subject_prefix")
        self.subject_prefix = subject_prefix

    def message(self, notification: Notification) -> EmailMessage:
        """The email as sent, with both parts."""
        text, html_body = render_email(notification)
        msg = EmailMessage()
        msg["Subject"] = f"{self.subject_prefix} {notification.headline}".strip()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        msg["X-Aiwarden-Group-Key"] = notification.group_key
        msg["X-Aiwarden-Notification"] = notification.id
        msg.set_content(text)
        msg.add_alternative(html_body, subtype="html")
        return msg

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, notification: Notification) -> int | None:
        msg = self.message(notification)
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                smtp = _SMTPSSL(self.host, self.port, timeout=self.timeout,
                                context=self._tls(), egress=self.egress)
            else:
                smtp = _SMTP(self.host, self.port, timeout=self.timeout, egress=self.egress)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._tls())
                if self.username and self._password:
                    smtp.login(self.username, self._password)
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=self.to)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()]
            raise DeliveryError(self.scrub(f"all recipients refused: {codes}"),
                                retryable=all(400 <= c < 500 for c in codes),
                                status=codes[0] if codes else None) from None
        except smtplib.SMTPResponseException as e:  # the reply text is the server's: not kept
            raise DeliveryError(f"SMTP {e.smtp_code} from receiver",
                                retryable=400 <= e.smtp_code < 500, status=e.smtp_code) from None
        except EgressDenied as e:
            raise DeliveryError(str(e), retryable=False) from None
        except smtplib.SMTPServerDisconnected:
            raise DeliveryError("connection lost", retryable=True) from None
        except TimeoutError:
            raise DeliveryError(f"timed out after {self.timeout:g}s", retryable=True) from None
        except OSError as e:  # refused, reset, TLS
            raise DeliveryError(transport_reason(e),
                                retryable=not isinstance(e, ssl.SSLCertVerificationError)
                                ) from None
        except smtplib.SMTPException as e:  # e.g. STARTTLS not offered: a config problem
            raise DeliveryError(self.scrub(f"{type(e).__name__}: {e}"), retryable=False
                                ) from None
        if refused:  # some recipients took it; retrying would send theirs twice
            raise DeliveryError(self.scrub(f"recipients refused: {sorted(refused)}"),
                                retryable=False)
        return 250

    def targets(self) -> list[tuple[str, str]]:
        return [("host", f"{self.host}:{self.port}")]

    def _public(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "security": self.security,
                "from": self.sender, "to": list(self.to), "username": self.username,
                "password": MASK if self._password else None}

    def _secrets(self) -> list[str]:
        return [self._password or ""]


def _address(owner: str, name: str, value: object) -> str:
    if not isinstance(value, str) or "@" not in value or any(c in value for c in "\r\n,"):
        raise ParameterError(f"The {name!r} field of {owner} must be an email address. "
                             f"Got {value!r} instead.", name)
    return value
