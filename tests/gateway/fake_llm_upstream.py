"""A fake OpenAI-compatible upstream on loopback: ``POST /v1/chat/completions`` answers a
scripted reply, as one JSON body or as SSE chunks (``"stream": true``), and records every
request it received (so a test can tell it was never called).

The reply is the script entry whose key occurs in the last user message (``default``
otherwise); streamed replies are cut into chunks of ``chunk_chars`` characters. A streamed
reply stops at ``__STALL__`` (for ``stall_seconds``, then the connection ends) and pauses at
``__PAUSE__`` (for ``pause_seconds``, then the rest follows). A request with ``n`` > 1 gets
the reply, then ``other_choices`` (the reply again when there are none), n choices at most.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeUpstream"]


class FakeUpstream:
    def __init__(self, script: dict[str, str] | None = None, chunk_chars: int = 7,
                 api_key: str | None = None) -> None:
        self.script = dict(script or {})
        self.script.setdefault("default", "Hello! How can I help you today?")
        self.chunk_chars, self.api_key = chunk_chars, api_key
        self.stall_seconds = 3.0
        self.pause_seconds = 1.0
        self.raw: dict[str, tuple[int, bytes]] = {}  # marker → (status, body) sent as is
        self.other_choices: list[str] = []  # choices 2.. when a request asks n > 1
        self.calls: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply_for(self, body: dict[str, Any]) -> str:
        users = [m.get("content", "") for m in body.get("messages", [])
                 if m.get("role") == "user"]
        last = users[-1] if users else ""
        for key, reply in self.script.items():
            if key != "default" and key in last:
                return reply
        return self.script["default"]

    def raw_for(self, body: dict[str, Any]) -> tuple[int, bytes] | None:
        """The scripted raw answer ``(status, body)`` whose key is in the last message."""
        last = str((body.get("messages") or [{}])[-1].get("content", ""))
        return next((v for k, v in self.raw.items() if k in last), None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                fake.calls.append(body)
                fake.headers.append(dict(self.headers))
                if fake.api_key and self.headers.get("authorization") != \
                        f"Bearer {fake.api_key}":
                    self._json(401, {"error": {"message": "bad key", "type": "auth"}})
                    return
                raw = fake.raw_for(body)
                if raw is not None:  # a scripted error answer, sent as it is
                    self.send_response(raw[0])
                    self.send_header("content-length", str(len(raw[1])))
                    self.end_headers()
                    self.wfile.write(raw[1])
                    return
                reply = fake.reply_for(body)
                base = {"id": f"chatcmpl-{len(fake.calls)}", "created": int(time.time()),
                        "model": body.get("model", "fake")}
                if not body.get("stream"):
                    n = body.get("n") if isinstance(body.get("n"), int) else 1
                    replies = [reply, *(fake.other_choices or [reply])][:max(n, 1)]
                    self._json(200, {**base, "object": "chat.completion", "choices": [
                        {"index": i, "message": {"role": "assistant", "content": r},
                         "finish_reason": "stop"} for i, r in enumerate(replies)],
                        "usage": {"prompt_tokens": 11, "completion_tokens": len(reply) // 4,
                                  "total_tokens": 11 + len(reply) // 4}})
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                chunk = {**base, "object": "chat.completion.chunk"}
                first = {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                               "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
                n = fake.chunk_chars
                reply, _, after = reply.partition("__PAUSE__")  # the rest after pause_seconds
                stall = reply.find("__STALL__")  # stop sending there for stall_seconds
                for i in range(0, len(reply), n):
                    if 0 <= stall < i + n:
                        doc = {**chunk, "choices": [{"index": 0, "delta": {
                            "content": reply[i:stall]}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(doc)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(fake.stall_seconds)
                        return
                    doc = {**chunk, "choices": [{"index": 0, "delta": {
                        "content": reply[i:i + n]}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(doc)}\n\n".encode())
                    self.wfile.flush()
                if after:
                    time.sleep(fake.pause_seconds)
                    doc = {**chunk, "choices": [{"index": 0, "delta": {"content": after},
                                                 "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(doc)}\n\n".encode())
                last = {**chunk, "choices": [{"index": 0, "delta": {},
                                              "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        return Handler

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
