"""A fake OpenAI-compatible moderation endpoint on loopback, for the model-based evaluator
tests: a text holding a trigger word is scored high in that word's category; it can hang
(beyond a client's timeout) or fail, and it records what it received."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

#: trigger word -> OpenAI category; "harassment" maps to aiwarden's hate
TRIGGERS = {"zebra": "self-harm/intent", "walrus": "violence", "ferret": "harassment"}
ALL = ("self-harm", "self-harm/intent", "self-harm/instructions", "violence",
       "violence/graphic", "harassment", "hate", "sexual", "sexual/minors")


class FakeModeration:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0  # seconds before answering
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"body": body,
                                       "authorization": self.headers.get("Authorization")})
                time.sleep(outer.delay)
                if outer.status != 200:
                    self.send_response(outer.status)
                    self.end_headers()
                    return
                out = json.dumps({"id": "modr-1", "model": body.get("model", "m"),
                                  "results": [outer.result(t) for t in body["input"]]})
                data = out.encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (its timeout): nothing to answer
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def result(text: str) -> dict[str, Any]:
        scores = {c: 0.01 for c in ALL}
        for word, category in TRIGGERS.items():
            if word in text.lower():
                scores[category] = 0.93
        return {"flagged": any(v > 0.5 for v in scores.values()),
                "categories": {c: v > 0.5 for c, v in scores.items()},
                "category_scores": scores}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/moderations"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delay = 0.0
        self._server.shutdown()
        self._server.server_close()
