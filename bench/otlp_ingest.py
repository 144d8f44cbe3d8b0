"""OTLP/HTTP trace ingest: spans/s through a real server (``aiwarden server`` process).

Bodies are protobuf ``ExportTraceServiceRequest``s of ``--batch`` spans (what the SDK's
batch processor sends, 512 by default), built before the clock starts. Two mixes:

* ``llm``: every span an LLM call (GenAI attributes, a distinct ``--output-chars`` answer
  each, 1 kB by default), the worst case: every span is evaluated, stored and profiled;
* ``traces``: one LLM call in every five spans (an HTTP server span, a retriever, a tool
  call and a database span around it), closer to what an instrumented app exports.

The client is a process of its own (``spawn``, two connections by default) that receives
the encoded bodies before its clock starts, so sending costs the server's process nothing
and little CPU at all (its CPU per span is printed). For each mix the bench prints wall
spans/s and the CPU each span cost the server process and its evaluator workers
(``/proc``), the cores the server had, and the load average: on a shared machine wall
figures measure the load, CPU per span is the steadier number. ``--nice -10`` (as root)
raises the priority of the bench, its server and its client there: with the kernel's
autogroups on (``/proc/sys/kernel/sched_autogroup_enabled``), niceness only ranks processes
within one session, so ``nice -n -10`` alone does nothing against other sessions' load; the
option sets the session's autogroup niceness too.

Baselines measured in the same run: the same LLM events sent as JSON to the REST route
(``POST /api/v1/models/{name}/llm-events``), so the ratio is the cost of OTLP itself; the
decode + mapping alone in this process; and each figure with the evaluators in the server
process (``AIWARDEN_LLM_EVAL_WORKERS=0``) and in its worker pool (one per core but one),
servers alternated over ``--rounds`` rounds, medians shown.

``--baseline DIR`` runs a second tree's server (say ``git archive <commit> | tar -x -C
DIR``) in the same run, alternated with this tree's, so before/after figures share the
machine's load; ``--server-args "--workers 2"`` passes flags to ``aiwarden server`` (several
processes need PostgreSQL). CPU is counted over the server process and all its descendants.

Target (issue 13): >= 5,000 spans/s.

    .venv/bin/python bench/otlp_ingest.py [--nice -10] [--db sqlite|postgresql] [--spans 10240]
        [--baseline /tmp/base] [--scenarios llm,traces] [--server-args "--workers 2"]
"""

from __future__ import annotations

import argparse
import http.client
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


def send(url: str, path: str, payloads: list[bytes], media: str, clients: int
         ) -> tuple[float, float]:
    """Seconds to send every payload with ``clients`` concurrent connections, and the CPU
    seconds this (client) process spent doing it."""
    todo = list(reversed(payloads))
    lock = threading.Lock()
    failures: list[str] = []

    host, port = url.removeprefix("http://").rsplit(":", 1)

    def work() -> None:  # the standard library's client: little CPU per request
        c = http.client.HTTPConnection(host, int(port), timeout=300)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    body = todo.pop()
                c.request("POST", path, body, {"content-type": media})
                r = c.getresponse()
                answer = r.read()
                if r.status != 200:
                    failures.append(answer[:300].decode(errors="replace"))
        finally:
            c.close()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    t, c0 = time.perf_counter(), time.process_time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {failures[0]}")
    return time.perf_counter() - t, time.process_time() - c0


class Client:
    """The sending side in a process of its own (``spawn``), so its HTTP work neither
    shares this process's GIL nor is counted with the server's: the payloads are encoded
    here, before the clock, and pickled to it; it sends them and returns (wall seconds,
    its CPU seconds)."""

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._pool.submit(time.sleep, 0).result()  # started (imports done) before any clock

    def send(self, url: str, path: str, payloads: list[bytes], media: str, clients: int
             ) -> tuple[float, float]:
        return self._pool.submit(send, url, path, payloads, media, clients).result()

    def close(self) -> None:
        self._pool.shutdown()


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
    ap.add_argument("--spans", type=int, default=10_240)
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
    ap.add_argument("--nice", type=int, default=None,
                    help="niceness of the bench, its server and client (negative: root), "
                    "and of this session's autogroup when the kernel has them")
    args = ap.parse_args()
    if args.nice is not None:
        _renice(args.nice)
    here = str(Path(__file__).resolve().parents[1])
    trees = [("", here)] + ([("base:", str(args.baseline.resolve()))] if args.baseline else [])
    configs = [pre + w.strip() for pre, _ in trees for w in args.workers.split(",")
               if w.strip()]
    wanted = [SHORT[x.strip()] for x in args.scenarios.split(",") if x.strip()]
    server_args = ["--host", "127.0.0.1", *shlex.split(args.server_args)]
    print(machine_line() + f"; niceness {os.getpriority(os.PRIO_PROCESS, 0)}, "
          f"{_autogroup()} (the server and the client inherit them)")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; "
          f"{args.spans} spans per mix, {args.batch} per request, {args.clients} clients "
          f"(one client process), {args.output_chars}-character answers; evaluator workers "
          f"{configs}, {args.rounds} rounds; db {args.db}; server args {server_args}; trees "
          + ", ".join(f"{pre or 'this:'} {t}" for pre, t in trees))

    probe, _ = bodies(args.spans, args.batch, "llm", 0, args.output_chars)
    t = time.process_time()
    for b in probe:
        otlp.read(b, otlp.PROTOBUF)
    print(f"decode + map in this process (protobuf, llm mix): "
          f"{(time.process_time() - t) / args.spans * 1e6:.1f} us CPU per span")

    # per (config, scenario), one entry per round: (spans/s, server process CPU s/span,
    # its descendants' (evaluator workers') CPU s/span, client CPU s/span, load)
    runs: dict[tuple[str, str], list[tuple[float, float, float, float, float]]] = {}
    spans_of = {SCENARIOS[0]: 0, SCENARIOS[1]: args.spans, SCENARIOS[2]: args.spans}
    tag = 1
    client = Client()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for config in configs if r % 2 == 0 else configs[::-1]:
                    tag = _round(args, r, config, trees, wanted, server_args, Path(tmp), tag,
                                 client, runs, spans_of)
    finally:
        client.close()
    _report(args, runs, configs, wanted, server_args)


def _renice(n: int) -> None:
    """This process's niceness (children inherit it) and its session's autogroup's."""
    os.setpriority(os.PRIO_PROCESS, 0, n)
    group = Path("/proc/self/autogroup")
    if group.exists():
        group.write_text(str(n))


def _autogroup() -> str:
    try:
        return Path("/proc/self/autogroup").read_text().strip().lstrip("/")
    except OSError:
        return "no autogroup"


def _round(args: argparse.Namespace, r: int, config: str, trees: list[tuple[str, str]],
           wanted: list[str], server_args: list[str], tmp: Path, tag: int, client: Client,
           runs: dict, spans_of: dict[str, int]) -> int:
    """One server (one config) started, each wanted scenario sent once, the server
    stopped; the next set's tag."""
    tree = dict(trees)["base:" if config.startswith("base:") else ""]
    w = config.removeprefix("base:")
    # PYTHONPATH picks the tree (it precedes the editable install's finder);
    # the bench runs from a neutral directory (python -m puts the cwd first)
    env = {"PYTHONPATH": tree} | ({} if w == "auto" else {"AIWARDEN_LLM_EVAL_WORKERS": w})
    workers = llm_eval_pool.auto_workers() if w == "auto" else int(w)
    with database_url(args.db, tmp) as url:
        srv = ProcessServer(url, tmp, extra_env=env, args=server_args).spawn()
        try:
            srv.wait_ready(within=300)  # in the try: one never ready is stopped
            _setup(srv.url)
            _warm(srv, bodies(args.batch, args.batch, "llm", 9999, args.output_chars)[0][0],
                  workers)
            llm_b, n_llm = bodies(args.spans, args.batch, "llm", tag, args.output_chars)
            mixed_b, _ = bodies(args.spans, args.batch, "traces", tag + 1, args.output_chars)
            spans_of[SCENARIOS[0]] = n_llm
            for name, payloads, path, media in [
                    (SCENARIOS[0], _rest(llm_b) if SCENARIOS[0] in wanted else [],
                     "/api/v1/models/bench-bot/llm-events", "application/json"),
                    (SCENARIOS[1], llm_b, "/v1/traces", otlp.PROTOBUF),
                    (SCENARIOS[2], mixed_b, "/v1/traces", otlp.PROTOBUF)]:
                if name not in wanted:
                    continue
                spans = spans_of[name]
                (m0, w0), load0 = _cpu_split(srv.proc.pid), os.getloadavg()[0]
                secs, client_cpu = client.send(srv.url, path, payloads, media, args.clients)
                m1, w1 = _cpu_split(srv.proc.pid)
                load = (load0 + os.getloadavg()[0]) / 2
                runs.setdefault((config, name), []).append(
                    (spans / secs, (m1 - m0) / spans, (w1 - w0) / spans, client_cpu / spans,
                     load))
                us_main, us_work = (m1 - m0) / spans * 1e6, (w1 - w0) / spans * 1e6
                print(f"round {r} workers={config:4s} {name:44s} {spans / secs:7,.0f} "
                      f"spans/s ({secs:5.1f} s); CPU per span: server {us_main:4.0f} + "
                      f"workers {us_work:4.0f} us, client {client_cpu / spans * 1e6:3.0f} us; "
                      "server had "
                      f"{(m1 - m0 + w1 - w0) / secs:.2f} cores; load {load:.2f}")
        finally:
            srv.stop()
    return tag + 2


def _report(args: argparse.Namespace, runs: dict, configs: list[str], wanted: list[str],
            server_args: list[str]) -> None:
    """Medians per config and scenario: wall spans/s, CPU per span, and the rate free cores
    would allow at that CPU."""
    cores = os.cpu_count() or 1
    multi = "--workers" in server_args
    print(f"\n{machine_line()}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    print(f"medians over {args.rounds} rounds. CPU per span: the server process (+ its "
          "evaluator workers, or the other server processes); 'bound' is the rate "
          + (f"{cores} free cores allow: {cores} / total" if multi else
             f"{cores} free cores allow: min(1 / server process, {cores} / total), one "
             "process being one core (the GIL)"))
    print(f"  {'config':10s} {'scenario':44s} {'spans/s':>8s} {'server+workers us':>18s} "
          f"{'client us':>9s} {'bound':>7s} {'load':>5s}  target 5,000")
    us: dict[tuple[str, str], float] = {}
    for (config, name), vals in runs.items():
        med = [statistics.median(v[k] for v in vals) for k in range(5)]
        main_us, work_us, client_us = med[1] * 1e6, med[2] * 1e6, med[3] * 1e6
        us[(config, name)] = main_us + work_us
        bound = (cores * 1e6 / (main_us + work_us) if multi else 1e6 / main_us
                 if not work_us else min(1e6 / main_us, cores * 1e6 / (main_us + work_us)))
        verdict = "" if name == SCENARIOS[0] else "met" if med[0] >= 5000 else "NOT met"
        print(f"  {config:10s} {name:44s} {med[0]:8,.0f} {main_us:8.0f} + {work_us:6.0f}  "
              f"{client_us:9.0f} {bound:7,.0f} {med[4]:5.1f}  {verdict}"
              + ("" if len(vals) < 2 else "   rounds: " + ", ".join(
                  f"{v[0]:,.0f}/s {(v[1] + v[2]) * 1e6:.0f}us" for v in vals)))
    for config in configs:
        if config.startswith("base:"):
            print(f"CPU per span, this tree vs {config}: " + ", ".join(
                f"{n.split(' (')[0]}: {us[(config[5:], n)]:.0f} vs {us[(config, n)]:.0f} us "
                f"(baseline / this {us[(config, n)] / us[(config[5:], n)]:.2f}x)"
                for n in wanted if (config, n) in us and (config[5:], n) in us))


if __name__ == "__main__":
    main()
