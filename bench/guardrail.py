"""What the gateway's guardrails add to a chat completion, against calling the upstream
directly, in the same run.

The upstream is the tests' fake OpenAI-compatible server (tests/gateway/fake_llm_upstream.py)
in this process; the aiwarden server is a child process on SQLite whose model has a
guardrail policy (block safety and injection, redact PII and secrets, flag refusals). Each
round sends one request straight to the upstream and one through
``POST /api/v1/models/bot/v1/chat/completions``, alternating, on kept-alive connections, so
both see the same machine load. Latency is the client's, from writing the request to the
last byte of the answer (for ``stream: true``, the whole SSE stream). The answer is about
1 kB of safe support text in 8 sentences, so every evaluator reads a realistic output; the
events are logged through the gateway's queue as in production.

Target (issue 13): overhead <= 5 ms at p50.

    .venv/bin/python bench/guardrail.py [--requests 400] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway.fake_llm_upstream import FakeUpstream
from tests.server.live import ProcessServer

REPLY = ("Thanks for reaching out about your order. I checked the tracking number you sent "
         "and the parcel left our warehouse in Leeds yesterday afternoon. It is now with the "
         "courier and should arrive within two working days. You will get an e-mail with a "
         "delivery window the evening before it comes. If nobody is home, the courier leaves "
         "a card and tries again the next day. You can also pick the parcel up at the local "
         "depot with the card and a photo ID. Is there anything else I can help you with "
         "today? Have a lovely rest of your week, and thank you for shopping with us again. "
         "We really appreciate your patience while the delivery team catches up on orders.")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    ms = (time.perf_counter() - t0) * 1000
    if resp.status >= 300:
        raise RuntimeError(f"{path}: {resp.status} {data[:300]!r}")
    if resp.getheader("connection", "").lower() == "close":
        conn.close()
    return ms, data


def _stats(ms: list[float]) -> tuple[float, float]:
    a = np.array(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="rounds per mode")
    ap.add_argument("--quick", action="store_true", help="60 rounds per mode")
    args = ap.parse_args()
    n = 60 if args.quick else args.requests
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start; "
          f"{n} rounds per mode, answer {len(REPLY)} characters")
    import tempfile

    with FakeUpstream({"default": REPLY}, chunk_chars=24) as fake, \
            tempfile.TemporaryDirectory() as tmp:
        srv = ProcessServer(f"sqlite:///{tmp}/bench.db", Path(tmp),
                            extra_env={"AIWARDEN_EGRESS_ALLOW": "127.0.0.1"}).start()
        try:
            api = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            _post(api, "/api/v1/models", orjson.dumps({"name": "bot",
                                                        "task": "text_generation"}))
            api.request("PUT", "/api/v1/models/bot/versions/v1/llm-reference", orjson.dumps(
                [{"request_id": f"r{i}", "version": "v1", "input": "where is my order?",
                  "output": REPLY} for i in range(50)]), {"content-type": "application/json"})
            api.getresponse().read()
            api.request("PUT", "/api/v1/models/bot/guardrail", orjson.dumps({
                "upstream": {"base_url": fake.base_url},
                "block": ["safety", "injection"], "redact": ["pii", "secrets"],
                "flag": ["refusal"], "version": "v1"}), {"content-type": "application/json"})
            r = api.getresponse()
            assert r.status == 200, r.read()
            r.read()
            up = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=60)
            for stream in (False, True):
                body = orjson.dumps({"model": "gpt-4o-mini", "stream": stream, "messages": [
                    {"role": "system", "content": "You are a helpful support bot."},
                    {"role": "user", "content": "Hi, where is my parcel? I ordered it on "
                                                "Monday and have not heard anything."}]})
                for _ in range(10):  # warm: connections, the policy cache, the evaluators
                    _post(up, "/v1/chat/completions", body)
                    _post(api, "/api/v1/models/bot/v1/chat/completions", body)
                direct, guarded = [], []
                cpu0, load0, t0 = _cpu_seconds(srv.proc.pid), os.getloadavg()[0], time.time()
                for _ in range(n):
                    direct.append(_post(up, "/v1/chat/completions", body)[0])
                    ms, data = _post(api, "/api/v1/models/bot/v1/chat/completions", body)
                    guarded.append(ms)
                    if not stream:
                        assert orjson.loads(data)["choices"][0]["message"]["content"] == REPLY
                wall = time.time() - t0
                cpu = _cpu_seconds(srv.proc.pid) - cpu0
                (d50, d99), (g50, g99) = _stats(direct), _stats(guarded)
                overhead = np.array(guarded) - np.array(direct)
                o50, o99 = float(np.percentile(overhead, 50)), float(np.percentile(overhead, 99))
                mode = "stream" if stream else "json  "
                print(f"{mode}: direct p50 {d50:6.2f} ms p99 {d99:6.2f} ms | guarded p50 "
                      f"{g50:6.2f} ms p99 {g99:6.2f} ms | overhead p50 {g50 - d50:+.2f} ms "
                      f"(paired {o50:+.2f}), p99 {g99 - d99:+.2f} ms (paired {o99:+.2f}) | "
                      f"server CPU {cpu / n * 1000:.2f} ms/request, {cpu / wall:.0%} of a core;"
                      f" load {load0:.2f} -> {os.getloadavg()[0]:.2f} | target p50 <= 5 ms: "
                      f"{'met' if g50 - d50 <= 5 else 'NOT met'}")
        except Exception:
            print(srv.log()[-3000:])
            raise
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
