"""OTLP/HTTP trace ingest: spans/s through a real server (``aiwarden server`` process).

Bodies are protobuf ``ExportTraceServiceRequest``s of ``--batch`` spans (what the SDK's
batch processor sends, 512 by default), built before the clock starts. Two mixes:

* ``llm``: every span an LLM call (GenAI attributes, ~300-character messages), the worst
  case: every span is evaluated, stored and profiled;
* ``traces``: one LLM call in every five spans (an HTTP server span, a retriever, a tool
  call and a database span around it), closer to what an instrumented app exports.

Baselines measured in the same run: the same LLM events sent as JSON to the REST route
(``POST /api/v1/models/{name}/llm-events``), so the ratio is the cost of OTLP itself, and
the decode + mapping alone in this process. Server CPU (seconds of CPU per wall second) and
the machine's load average are printed with each figure: on a shared machine they say how
much of the wall time the server had.

Target (issue 13): >= 5,000 spans/s.

    .venv/bin/python bench/otlp_ingest.py [--db sqlite|postgresql] [--spans 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.llm import otlp
from tests.llm.test_otlp import as_protobuf
from tests.server.live import ProcessServer, database_url

T0 = int((time.time() - 600) * 1e9)
ANSWERS = ["Your order ships tomorrow and should arrive within three working days. ",
           "You can reset the password from the settings page under Security. ",
           "Refunds are paid to the original card within five to seven days. "]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _llm_attrs(i: int) -> dict:
    text = ANSWERS[i % 3] * 4
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 40 + i % 7,
            "gen_ai.usage.output_tokens": 60 + i % 11, "gen_ai.conversation.id": f"c{i % 97}",
            "aiwarden.tag.locale": ("fr", "en", "de")[i % 3],
            "gen_ai.input.messages": orjson.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "Be helpful."}]},
                {"role": "user", "parts": [{"type": "text",
                                            "content": f"Question {i}: where is my order?"}]},
            ]).decode(),
            "gen_ai.output.messages": orjson.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": text}]}]).decode()}


OTHER = [{"http.request.method": "POST", "http.route": "/chat", "http.response.status_code": 200},
         {"openinference.span.kind": "RETRIEVER",
          "retrieval.documents.0.document.content": "Orders ship within a day."},
         {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"},
         {"db.system.name": "postgresql", "db.query.text": "SELECT 1"}]


def bodies(n: int, batch: int, mix: str, tag: str) -> tuple[list[bytes], int]:
    """Protobuf bodies of ``n`` spans and the number of LLM spans among them."""
    spans, llm = [], 0
    for i in range(n):
        trace = f"{tag}{i // 5:0{32 - len(tag)}x}"
        if mix == "llm" or i % 5 == 4:
            attrs, llm = _llm_attrs(i), llm + 1
        else:
            attrs = OTHER[i % 5]
        spans.append({"trace_id": trace, "span_id": f"{i + 1:016x}", "start": T0 + i * 1000,
                      "end": T0 + i * 1000 + 350_000_000, "attrs": attrs, "events": []})
    out = [as_protobuf(spans[s:s + batch], {"service.name": "bench-bot"})
           for s in range(0, n, batch)]
    return out, llm


def send(url: str, path: str, payloads: list[bytes], media: str, clients: int) -> float:
    """Seconds to send every payload with ``clients`` concurrent connections."""
    todo = list(reversed(payloads))
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    body = todo.pop()
                r = c.post(path, content=body, headers={"content-type": media})
                if r.status_code != 200:
                    failures.append(r.text[:300])
    threads = [threading.Thread(target=work) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {failures[0]}")
    return time.perf_counter() - t


def _setup(url: str) -> None:
    with httpx.Client(base_url=url + "/api/v1", timeout=120) as c:
        c.post("/models", json={"name": "bench-bot", "task": "text_generation",
                                "segments": ["locale"]}).raise_for_status()
        ref = [{"request_id": f"r{i}", "output": ANSWERS[i % 3] * 4, "tokens_in": 40,
                "tokens_out": 60, "input": "where is my order?",
                "tags": {"locale": ("fr", "en", "de")[i % 3]}} for i in range(500)]
        c.put("/models/bench-bot/versions/v1/llm-reference", json=ref).raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.spans} spans per mix, {args.batch} per request, {args.clients} clients")

    llm_bodies, n_llm = bodies(args.spans, args.batch, "llm", "a")
    mixed_bodies, n_mixed_llm = bodies(args.spans, args.batch, "traces", "b")
    t = time.perf_counter()
    for b in llm_bodies:
        found, _ = otlp.decode(b, otlp.PROTOBUF)
        otlp.map_spans(found)
    decode_rate = args.spans / (time.perf_counter() - t)
    rest = []
    for b in llm_bodies:  # the same events as REST JSON bodies, request ids apart
        found, _ = otlp.decode(b, otlp.PROTOBUF)
        rows = [dict(r, request_id="rest-" + r["request_id"])
                for _, _, r in otlp.map_spans(found).events]
        rest.append(orjson.dumps(rows))
    print(f"decode + map in this process (protobuf, llm mix): {decode_rate:,.0f} spans/s")

    with tempfile.TemporaryDirectory() as tmp, database_url(args.db, Path(tmp)) as url:
        srv = ProcessServer(url, Path(tmp)).spawn().wait_ready()
        try:
            _setup(srv.url)
            results = {}
            for name, payloads, path, media, spans in [
                    ("REST JSON baseline (llm events)", rest,
                     "/api/v1/models/bench-bot/llm-events", "application/json", n_llm),
                    ("OTLP protobuf, llm mix", llm_bodies, "/v1/traces", otlp.PROTOBUF,
                     args.spans),
                    ("OTLP protobuf, traces mix (1 LLM span in 5)", mixed_bodies,
                     "/v1/traces", otlp.PROTOBUF, args.spans)]:
                cpu0, load0 = _cpu_seconds(srv.proc.pid), os.getloadavg()[0]
                secs = send(srv.url, path, payloads, media, args.clients)
                cpu = (_cpu_seconds(srv.proc.pid) - cpu0) / secs
                results[name] = spans / secs
                # spans per server CPU-second: what one core would do, whatever the load
                print(f"{name:46s} {spans / secs:9,.0f} spans/s  ({secs:5.1f} s; server CPU "
                      f"{cpu:.2f} s/s, {spans / secs / max(cpu, 1e-9):,.0f} spans per CPU-s; "
                      f"load {load0:.2f} -> {os.getloadavg()[0]:.2f})")
            base = results["REST JSON baseline (llm events)"]
            for name, rate in results.items():
                if name.startswith("OTLP"):
                    print(f"{name}: {rate / base:.2f}x the REST baseline per event-bearing span"
                          if "llm mix" in name else f"{name}: {rate:,.0f} spans/s, "
                          f"{rate * n_mixed_llm / args.spans:,.0f} LLM events/s")
            print("target >= 5,000 spans/s:",
                  {k: ("met" if v >= 5000 else "NOT met") for k, v in results.items()
                   if k.startswith("OTLP")})
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
