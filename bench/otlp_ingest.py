"""OTLP/HTTP trace ingest: spans/s through a real server (``aiwarden server`` process).

Bodies are protobuf ``ExportTraceServiceRequest``s of ``--batch`` spans (what the SDK's
batch processor sends, 512 by default), built before the clock starts. Two mixes:

* ``llm``: every span an LLM call (GenAI attributes, a distinct ``--output-chars`` answer
  each, 1 kB by default), the worst case: every span is evaluated, stored and profiled;
* ``traces``: one LLM call in every five spans (an HTTP server span, a retriever, a tool
  call and a database span around it), closer to what an instrumented app exports.

Baselines measured in the same run: the same LLM events sent as JSON to the REST route
(``POST /api/v1/models/{name}/llm-events``), so the ratio is the cost of OTLP itself; the
decode + mapping alone in this process; and each figure with the evaluators in the server
process (``AIWARDEN_LLM_EVAL_WORKERS=0``) and in its worker pool (one per core), servers
alternated over ``--rounds`` rounds, medians shown. Server CPU (seconds of CPU per wall
second, its evaluator workers included) and the machine's load average are printed with
each figure: on a shared machine they say how much of the wall time the server had.

``--baseline DIR`` runs a second tree's server (say ``git archive <commit> | tar -x -C
DIR``) in the same run, alternated with this tree's, so before/after figures share the
machine's load; ``--server-args "--workers 2"`` passes flags to ``aiwarden server`` (several
processes need PostgreSQL). CPU is counted over the server process and all its descendants.

Target (issue 13): >= 5,000 spans/s.

    .venv/bin/python bench/otlp_ingest.py [--db sqlite|postgresql] [--spans 10000]
        [--baseline /tmp/base] [--scenarios llm,traces] [--server-args "--workers 2"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.llm import otlp
from aiwarden.monitoring import llm_eval_pool
from bench._machine import machine_line
from tests.llm.test_otlp import as_protobuf
from tests.server.live import ProcessServer, database_url

T0 = int((time.time() - 600) * 1e9)
ANSWERS = ["Your order ships tomorrow and should arrive within three working days. ",
           "You can reset the password from the settings page under Security. ",
           "Refunds are paid to the original card within five to seven days. "]


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return []


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and (st := _stat(int(p.name))) and int(st[1]) == pid]


def _descendants(pid: int) -> list[int]:
    out, todo = [], _children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds of the server process and of its live descendants (evaluator workers,
    and the server processes of ``--workers N`` with theirs)."""
    out = []
    for pids in ([pid], _descendants(pid)):
        total = 0
        for p in pids:
            st = _stat(p)
            if st:
                total += int(st[11]) + int(st[12])
        out.append(total / os.sysconf("SC_CLK_TCK"))
    return out[0], out[1]


def _cpu_seconds(pid: int) -> float:
    return sum(_cpu_split(pid))


def _answer(i: int, chars: int) -> str:
    """A distinct benign answer of ``chars`` characters."""
    text = f"Answer {i}: " + "".join(ANSWERS[(i + k) % 3] for k in range(chars // 60 + 2))
    return text[:chars]


def _llm_attrs(i: int, chars: int = 300) -> dict:
    text = _answer(i, chars)
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


def bodies(n: int, batch: int, mix: str, tag: int, chars: int = 300
           ) -> tuple[list[bytes], int]:
    """Protobuf bodies of ``n`` spans and the number of LLM spans among them; ``tag`` keeps
    the span ids (the request ids) of one set apart from another's."""
    spans, llm = [], 0
    for i in range(n):
        trace = f"{tag:04x}{i // 5:028x}"
        if mix == "llm" or i % 5 == 4:
            attrs, llm = _llm_attrs(i, chars), llm + 1
        else:
            attrs = OTHER[i % 5]
        spans.append({"trace_id": trace, "span_id": f"{tag:04x}{i + 1:012x}",
                      "start": T0 + i * 1000,
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
        ref = [{"request_id": f"r{i}", "output": _answer(i, 300), "tokens_in": 40,
                "tokens_out": 60, "input": "where is my order?",
                "tags": {"locale": ("fr", "en", "de")[i % 3]}} for i in range(500)]
        c.put("/models/bench-bot/versions/v1/llm-reference", json=ref).raise_for_status()


def _warm(srv: ProcessServer, body: bytes, workers: int) -> None:
    """One request (loads the evaluators), then wait until the evaluator workers, if any,
    have started and gone idle, so no figure pays for their start."""
    send(srv.url, "/v1/traces", [body], otlp.PROTOBUF, 1)
    deadline = time.monotonic() + 120
    while workers and time.monotonic() < deadline:
        kids = _children(srv.proc.pid)
        before = _cpu_seconds(srv.proc.pid)
        time.sleep(1.0)
        if len(kids) >= workers and _cpu_seconds(srv.proc.pid) - before < 0.05:
            break  # the workers are up and idle


def _rest(payloads: list[bytes]) -> list[bytes]:
    """The same events as REST JSON bodies, request ids apart."""
    out = []
    for b in payloads:
        found, _ = otlp.decode(b, otlp.PROTOBUF)
        rows = [dict(r, request_id="rest-" + r["request_id"])
                for _, _, r in otlp.map_spans(found).events]
        out.append(orjson.dumps(rows))
    return out


SCENARIOS = ("REST JSON baseline (llm events)", "OTLP protobuf, llm mix",
             "OTLP protobuf, traces mix (1 LLM span in 5)")
SHORT = {"rest": SCENARIOS[0], "llm": SCENARIOS[1], "traces": SCENARIOS[2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--spans", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--output-chars", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="0,auto",
                    help="AIWARDEN_LLM_EVAL_WORKERS values to compare (auto: the default)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another tree (e.g. a git archive of an older commit) whose server "
                    "runs alternated with this tree's: config names get a 'base:' prefix")
    ap.add_argument("--scenarios", default="rest,llm,traces",
                    help="which of rest, llm, traces to send")
    ap.add_argument("--server-args", default="", help="extra `aiwarden server` flags")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parents[1])
    trees = [("", here)] + ([("base:", str(args.baseline.resolve()))] if args.baseline else [])
    configs = [pre + w.strip() for pre, _ in trees for w in args.workers.split(",")
               if w.strip()]
    wanted = [SHORT[x.strip()] for x in args.scenarios.split(",") if x.strip()]
    server_args = ["--host", "127.0.0.1", *shlex.split(args.server_args)]
    print(machine_line())
    print(f"load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.spans} spans per mix, {args.batch} per request, {args.clients} clients, "
          f"{args.output_chars}-character answers; evaluator workers {configs}, "
          f"{args.rounds} rounds; db {args.db}; server args {server_args}; trees "
          + ", ".join(f"{pre or 'this:'} {t}" for pre, t in trees))

    probe, _ = bodies(args.spans, args.batch, "llm", 0, args.output_chars)
    t = time.perf_counter()
    for b in probe:
        found, _ = otlp.decode(b, otlp.PROTOBUF)
        otlp.map_spans(found)
    print(f"decode + map in this process (protobuf, llm mix): "
          f"{args.spans / (time.perf_counter() - t):,.0f} spans/s")

    rates: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    per_span: dict[tuple[str, str], list[tuple[float, float]]] = {}
    tag = 1
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for config in configs if r % 2 == 0 else configs[::-1]:
                tree = dict(trees)["base:" if config.startswith("base:") else ""]
                w = config.removeprefix("base:")
                # PYTHONPATH picks the tree (it precedes the editable install's finder);
                # the bench runs from a neutral directory (python -m puts the cwd first)
                env = {"PYTHONPATH": tree} | (
                    {} if w == "auto" else {"AIWARDEN_LLM_EVAL_WORKERS": w})
                workers = llm_eval_pool.auto_workers() if w == "auto" else int(w)
                with database_url(args.db, Path(tmp)) as url:
                    srv = ProcessServer(url, Path(tmp), extra_env=env,
                                        args=server_args).spawn()
                    try:
                        srv.wait_ready(within=300)  # in the try: one never ready is stopped
                        _setup(srv.url)
                        _warm(srv, bodies(args.batch, args.batch, "llm", 9999,
                                          args.output_chars)[0][0], workers)
                        llm_b, n_llm_each = bodies(args.spans, args.batch, "llm", tag,
                                                   args.output_chars)
                        mixed_b, n_mixed = bodies(args.spans, args.batch, "traces", tag + 1,
                                                  args.output_chars)
                        tag += 2
                        for name, payloads, path, media, spans in [
                                (SCENARIOS[0], _rest(llm_b) if SCENARIOS[0] in wanted
                                 else [], "/api/v1/models/bench-bot/"
                                 "llm-events", "application/json", n_llm_each),
                                (SCENARIOS[1], llm_b, "/v1/traces", otlp.PROTOBUF,
                                 args.spans),
                                (SCENARIOS[2], mixed_b, "/v1/traces", otlp.PROTOBUF,
                                 args.spans)]:
                            if name not in wanted:
                                continue
                            (m0, w0), load0 = _cpu_split(srv.proc.pid), os.getloadavg()[0]
                            secs = send(srv.url, path, payloads, media, args.clients)
                            m1, w1 = _cpu_split(srv.proc.pid)
                            cpu = (m1 - m0 + w1 - w0) / secs
                            rates.setdefault((config, name), []).append(spans / secs)
                            cpus.setdefault((config, name), []).append(cpu)
                            per_span.setdefault((config, name), []).append(
                                ((m1 - m0) / spans, (w1 - w0) / spans))
                            # spans per server CPU-second: what one core would do
                            print(f"round {r} workers={config:4s} {name:44s} "
                                  f"{spans / secs:7,.0f} spans/s ({secs:5.1f} s; server CPU "
                                  f"{cpu:.2f} s/s, {spans / secs / max(cpu, 1e-9):,.0f} "
                                  f"spans per CPU-s; load {load0:.2f} -> "
                                  f"{os.getloadavg()[0]:.2f})")
                    finally:
                        srv.stop()

    print(f"\nmedians over {args.rounds} rounds (spans/s; server CPU s/s):")
    med = {k: statistics.median(v) for k, v in rates.items()}
    for key in rates:
        config, name = key
        rest = med.get((config, SCENARIOS[0]))
        extra = (f", {med[key] / rest:.2f}x REST" if name == SCENARIOS[1] and rest else
                 f", {med[key] * n_mixed / args.spans:,.0f} LLM events/s"
                 if name == SCENARIOS[2] else "")
        print(f"  workers={config:9s} {name:44s} {med[key]:7,.0f}  "
              f"(CPU {statistics.median(cpus[key]):.2f}{extra})")
    cores = os.cpu_count() or 1
    multi = "--workers" in server_args
    print(f"CPU per span (median; server process + its descendants) and the rate {cores} "
          "free cores would allow: " + (f"{cores} / total (several server processes)" if multi
                                        else "min(1 / server process, cores / total):"))
    us: dict[tuple[str, str], float] = {}
    for key, vals in per_span.items():
        main_us = statistics.median(v[0] for v in vals) * 1e6
        work_us = statistics.median(v[1] for v in vals) * 1e6
        us[key] = main_us + work_us
        # one process runs on one core however many there are (the GIL)
        bound = (cores * 1e6 / (main_us + work_us) if multi else 1e6 / main_us
                 if not work_us else min(1e6 / main_us, cores * 1e6 / (main_us + work_us)))
        print(f"  workers={key[0]:9s} {key[1]:44s} {main_us:6.0f} + {work_us:6.0f} us  "
              f"-> {bound:7,.0f} spans/s")
    for config in configs:
        if config.startswith("base:"):
            print(f"CPU per span, this tree vs {config}: " + ", ".join(
                f"{n.split(' (')[0]}: {us[(config[5:], n)]:.0f} vs {us[(config, n)]:.0f} us "
                f"(baseline / this {us[(config, n)] / us[(config[5:], n)]:.2f}x)"
                for n in wanted
                if (config, n) in us and (config[5:], n) in us))
    print("target >= 5,000 spans/s:", {f"{c} {n.split(',')[1].strip()}":
                                       ("met" if med[(c, n)] >= 5000 else "NOT met")
                                       for c, n in med if n != SCENARIOS[0]})

if __name__ == "__main__":
    main()
