"""The chatbot story's LLM: a small OpenAI-compatible chat completions server on loopback.

``POST /v1/chat/completions`` answers from :func:`aiwarden.demo.chatbot_texts.reply` (the
system prompt's version and locale, the last user message), as one JSON body or as
Server-Sent Events with ``"stream": true``; usage counts are the words, roughly. It stands
in for a provider so the demo needs no network and no key, and it is deterministic.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiwarden.demo.chatbot_texts import reply

__all__ = ["FakeSupportLLM"]


def _answer(body: Any) -> tuple[int, dict[str, Any] | str]:
    """(status, chat completion or error) for a request body."""
    msgs = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        return 400, "messages: expected a non-empty list of {role, content}"
    system = "\n".join(str(m.get("content") or "") for m in msgs if m.get("role") == "system")
    users = [str(m.get("content") or "") for m in msgs if m.get("role") == "user"]
    text = reply(system, users[-1] if users else "")
    words_in = sum(len(str(m.get("content") or "").split()) for m in msgs)
    return 200, {"id": f"chatcmpl-demo-{time.monotonic_ns()}", "object": "chat.completion",
                 "created": int(time.time()), "model": body.get("model") or "acme-support-1",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": words_in, "completion_tokens": len(text.split()),
                           "total_tokens": words_in + len(text.split())}}


class FakeSupportLLM:
    """Serves until :meth:`close` (or the ``with`` block ends); ``base_url`` ends in ``/v1``.

    Examples
    --------
    >>> import httpx
    >>> with FakeSupportLLM() as llm:
    ...     r = httpx.post(llm.base_url + "/chat/completions", json={"messages": [
    ...         {"role": "user", "content": "Where is my parcel?"}]})
    >>> r.json()["choices"][0]["finish_reason"], llm.calls
    ('stop', 1)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls = 0
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://{host}:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="aiwarden-demo-llm")

    def start(self) -> FakeSupportLLM:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSupportLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # the demo's terminal is the story's
                pass

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}', "application/json")
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get(
                        "content-length") or 0)) or b"null")
                except ValueError:
                    body = None
                status, doc = _answer(body)
                llm.calls += 1
                if isinstance(doc, str):
                    self._send(status, json.dumps({"error": {
                        "message": doc, "type": "invalid_request_error"}}).encode(),
                        "application/json")
                elif not body.get("stream"):
                    self._send(200, json.dumps(doc).encode(), "application/json")
                else:
                    self._send(200, _sse(doc), "text/event-stream")

        return Handler


def _sse(doc: dict[str, Any]) -> bytes:
    """The completion as stream chunks, a few words each, then ``[DONE]``."""
    base = {k: doc[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    words = doc["choices"][0]["message"]["content"].split(" ")
    parts = [" ".join(words[i:i + 4]) + (" " if i + 4 < len(words) else "")
             for i in range(0, len(words), 4)]
    chunks = [{"role": "assistant"}] + [{"content": p} for p in parts]
    out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
           for d in chunks]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in out) + \
        b"data: [DONE]\n\n"
