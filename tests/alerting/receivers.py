"""Real local receivers for notifier tests: an HTTP endpoint and an SMTP server, in threads.

Nothing is mocked: the notifiers open real sockets to 127.0.0.1, so encoding, headers,
TLS, SMTP dialogue and connection failures are the ones production sees.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from aiwarden.egress import EgressPolicy

# The egress policy denies loopback by default; these receivers listen on 127.0.0.1, so the
# tests that use them allow exactly that address, explicitly.
LOOPBACK = EgressPolicy("127.0.0.1")


@dataclass(frozen=True)
class Received:
    """One request as the endpoint saw it, and the status it answered with."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner = self.server.owner
        status, extra = owner._answer(self, body)
        payload = b"ok" if status < 400 else owner.error_body
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


class _Server(HTTPServer):
    owner: WebhookServer


class WebhookServer:
    """An HTTP endpoint on 127.0.0.1 that records requests and answers as told.

    ``fail(k)`` makes the next ``k`` requests get 503 (or another status); ``stop()`` and
    ``start()`` close and reopen the same port, like a receiver that goes down and returns.
    ``error_body`` is what error answers carry, ``headers`` extra answer headers (e.g. a
    redirect's Location); with ``tls`` (cert, key) it speaks HTTPS.
    """

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.port = 0
        self.tls = tls
        self.error_body = b"no_service"
        self.headers: dict[str, str] = {}
        self.requests: list[Received] = []
        self.status = 200
        self._fail_left = 0
        self._fail_status = 503
        self._retry_after: str | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def fail(self, k: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._fail_left, self._fail_status, self._retry_after = k, status, retry_after

    @property
    def delivered(self) -> list[Received]:
        """Requests answered with 2xx."""
        with self._lock:
            return [r for r in self.requests if r.status < 300]

    def _answer(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str]]:
        with self._lock:
            extra: dict[str, str] = dict(self.headers)
            if self._fail_left > 0:
                self._fail_left -= 1
                status = self._fail_status
                if self._retry_after is not None:
                    extra["Retry-After"] = self._retry_after
            else:
                status = self.status
            self.requests.append(Received(h.command, h.path, {
                k.lower(): v for k, v in h.headers.items()}, body, status))
            return status, extra


@dataclass
class _Mailbox:
    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    reject: str | None = None  # e.g. "550 go away": the reply to DATA instead of accepting

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reject is not None:
            return self.reject
        raw = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(raw, policy=policy.default)))
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's controller, but able to listen on port 0 (it probes its own port)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives.

    With ``cert``/``key`` it offers STARTTLS and requires it; with ``login`` it requires
    AUTH with that (username, password).
    """

    def __init__(self, cert: Path | None = None, key: Path | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.box = _Mailbox()
        kw: dict[str, Any] = {}
        if cert is not None and key is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            kw.update(tls_context=ctx, require_starttls=True)
        if login is not None:
            kw.update(authenticator=self._auth(login), auth_required=True)
        self._login = login
        self._ctl = _Controller(self.box, hostname="127.0.0.1", port=0, **kw)

    def _auth(self, login: tuple[str, str]) -> Any:
        def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                data.login.decode(), data.password.decode()) == login
            if ok:
                self.box.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)
        return check

    @property
    def port(self) -> int:
        return int(self._ctl.port)

    @property
    def messages(self) -> list[tuple[Envelope, EmailMessage]]:
        return self.box.messages

    def __enter__(self) -> Self:
        self._ctl.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctl.stop()


def self_signed_cert(folder: Path, names: str = "IP:127.0.0.1,DNS:localhost"
                     ) -> tuple[Path, Path] | None:
    """A throwaway certificate (for 127.0.0.1 unless ``names`` says otherwise) made with
    the openssl CLI (None if absent)."""
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=aiwarden-test", "-addext",
                    f"subjectAltName={names}"],
                   check=True, capture_output=True)
    return cert, key
