"""What the gateway's guardrails add to a chat completion, against calling the upstream
directly, in the same run.

The upstream is the tests' fake OpenAI-compatible server (tests/gateway/fake_llm_upstream.py)
in this process; the aiwarden server is a child process on SQLite whose model has a
guardrail policy (block safety and injection, redact PII and secrets, flag refusals), and
a standalone ``aiwarden serve bot`` gateway is another child process talking to it. Each
round sends one request straight to the upstream, one through the server's
``POST /api/v1/models/bot/v1/chat/completions`` and one through the standalone gateway's
``/v1/chat/completions``, one after another, on kept-alive connections, so all see the
same machine load. Latency is the client's, from writing the request to the
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
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway.fake_llm_upstream import FakeUpstream
from tests.server.live import ProcessServer, free_port

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


def _standalone(srv: ProcessServer, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``aiwarden serve bot`` against the server: the standalone gateway's guardrail."""
    port = free_port()
    log = open(tmp / "serve.log", "ab")  # noqa: SIM115 - the child holds it until it ends
    proc = subprocess.Popen([sys.executable, "-m", "aiwarden.cli", "serve", "bot", "--url",
                             srv.url, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**srv.env, "AIWARDEN_EGRESS_ALLOW": "127.0.0.1"})
    deadline = time.monotonic() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("aiwarden serve did not start: "
                               + (tmp / "serve.log").read_text()[-2000:])
        time.sleep(0.2)


def _round(n: int, stream: bool, up: http.client.HTTPConnection,
           paths: dict[str, tuple[http.client.HTTPConnection, str, int]]) -> None:
    """``n`` rounds of: the upstream directly, then each guarded path, one after another."""
    body = orjson.dumps({"model": "gpt-4o-mini", "stream": stream, "messages": [
        {"role": "system", "content": "You are a helpful support bot."},
        {"role": "user", "content": "Hi, where is my parcel? I ordered it on "
                                    "Monday and have not heard anything."}]})
    for _ in range(10):  # warm: connections, the policy cache, the evaluators
        _post(up, "/v1/chat/completions", body)
        for conn, path, _pid in paths.values():
            _post(conn, path, body)
    direct: list[float] = []
    guarded: dict[str, list[float]] = {k: [] for k in paths}
    cpu0 = {k: _cpu_seconds(pid) for k, (_, _, pid) in paths.items()}
    load0, t0 = os.getloadavg()[0], time.time()
    for _ in range(n):
        direct.append(_post(up, "/v1/chat/completions", body)[0])
        for k, (conn, path, _pid) in paths.items():
            ms, data = _post(conn, path, body)
            guarded[k].append(ms)
            if not stream:
                assert orjson.loads(data)["choices"][0]["message"]["content"] == REPLY
    wall = time.time() - t0
    d50, d99 = _stats(direct)
    mode = "stream" if stream else "json  "
    print(f"{mode}: direct p50 {d50:6.2f} ms p99 {d99:6.2f} ms; load {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    for k, ms in guarded.items():
        g50, g99 = _stats(ms)
        cpu = _cpu_seconds(paths[k][2]) - cpu0[k]
        overhead = np.array(ms) - np.array(direct)
        o50, o99 = float(np.percentile(overhead, 50)), float(np.percentile(overhead, 99))
        print(f"  {k:6}: guarded p50 {g50:6.2f} ms p99 {g99:6.2f} ms | overhead p50 "
              f"{g50 - d50:+.2f} ms (paired {o50:+.2f}), p99 {g99 - d99:+.2f} ms (paired "
              f"{o99:+.2f}) | its CPU {cpu / n * 1000:.2f} ms/request, {cpu / wall:.0%} of a "
              f"core | target p50 <= 5 ms: {'met' if g50 - d50 <= 5 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="rounds per mode")
    ap.add_argument("--quick", action="store_true", help="60 rounds per mode")
    ap.add_argument("--server-only", action="store_true",
                    help="leave out the standalone `aiwarden serve` gateway")
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
            alone = _standalone(srv, Path(tmp)) if not args.server_only else None
            api.close()  # idle while the standalone started: a fresh kept-alive connection
            paths = {"server": (http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60),
                                "/api/v1/models/bot/v1/chat/completions", srv.proc.pid)}
            if alone is not None:
                paths["serve"] = (http.client.HTTPConnection("127.0.0.1", alone[1], timeout=60),
                                  "/v1/chat/completions", alone[0].pid)
            try:
                for stream in (False, True):
                    _round(n, stream, up, paths)
            finally:
                if alone is not None:
                    alone[0].terminate()
                    alone[0].wait(30)
        except Exception:
            print(srv.log()[-3000:])
            raise
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
