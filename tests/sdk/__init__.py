"""A real HTTP receiver for SDK tests: records bodies, can fail, refuse or hang on demand.

Kept here (not in a conftest) so both test modules import the same class.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the receiver answered

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """What the server does next: ``fail_first`` failures (``fail_status``, 503 unless set,
    with ``retry_after`` as its header if given), then ``status`` (200), or ``hang``."""

    url: str = ""
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    status: int = 200
    answer: bytes | None = None          # body for non-200 answers / fixed 200 answers
    content_type: str = "application/json"
    hang: bool = False
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prediction_ids(self) -> list[Any]:
        """Every prediction id in every 2xx-answered JSON body, in arrival order."""
        out = []
        for r in self.requests:
            if r.method == "POST" and r.status == 200:
                rows = r.json()
                out.extend(row["prediction_id"] for row in (rows if isinstance(rows, list)
                                                             else [rows]))
        return out

    def respond(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        req = Request(method, handler.path, headers, body)
        with self.lock:
            self.requests.append(req)
            failing = self.fail_first > 0
            self.fail_first -= failing
        if self.hang and not failing:
            self.release.wait(10)
        if failing:
            kind = b"overloaded" if self.fail_status == 429 else b"unavailable"
            status = self.fail_status
            payload = b'{"detail": {"error": "%s", "message": "busy"}}' % kind
        elif self.status != 200 or self.answer is not None:
            status, payload = self.status, self.answer or b""
        else:
            n = 0
            if body and headers.get("content-type") == "application/json":
                parsed = orjson.loads(body)
                n = len(parsed) if isinstance(parsed, list) else 1
            status, payload = 200, orjson.dumps({"received": n, "accepted": n, "duplicates": 0,
                                    "quarantined": 0, "labels_joined": 0, "errors": []})
        req.status = status
        handler.send_response(status)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        if failing and self.retry_after is not None:
            handler.send_header("Retry-After", self.retry_after)
        handler.end_headers()
        handler.wfile.write(payload)


@contextmanager
def serve(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """Run ``receiver`` on 127.0.0.1 in a thread; stopped (and hangs released) on exit."""
    rec = receiver or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rec.respond(self, "GET")

        def do_POST(self) -> None:
            rec.respond(self, "POST")

        def do_PUT(self) -> None:
            rec.respond(self, "PUT")

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
