"""Serving beside ingest and evaluation, with one and with several server processes, and
how fast a killed leader is replaced (issue 17, items 1 and 2).

Processes: ``aiwarden server --workers N`` on PostgreSQL (127.0.0.1:5432, a throwaway
database), an ingest load generator (a child of this script, posting 1,000-row batches of
a second model as fast as the server takes them), and this process, which sends paced
``POST /api/v1/models/fraud/predict`` requests on kept-alive connections and runs the
baseline: the same scikit-learn model called in this process at the same pace (as
bench/gateway.py does). The evaluation loop runs every 2 s over a drift rule on every
column of the ingested model, so ingest, compaction, evaluation and serving all run.

Phases, each measured in this one run: N=1 with ingest; N=2 without ingest (evaluation
only: what the route costs when nothing else runs Python in its worker); N=2 with ingest;
then, still under ingest, ``aiwarden serve`` as a dedicated serving process beside the
N=2 server (it takes no ingest: its events go to the server over HTTP), which is what
routing predict to processes that take no ingest amounts to; then the leading worker of
N=2 is killed (-9) and the time until another worker holds the lease is taken (the
default lease TTL, 10 s; the leader's session lock dies with it and the others try it at
every heartbeat, 1 s on PostgreSQL, so the beat bounds it, the TTL only as a fallback).
``--takeover N`` runs that measurement alone, N times, each on a fresh server.

``--pin`` measures instead the deployment docs/deployment.md recommends, placed as an
operator would (as root): ``aiwarden server --workers 1`` and the ingest load on core 0
(``taskset -c 0``), ``aiwarden serve`` on core 1 above everything else there
(``taskset -c 1 chrt -f 50``, or ``nice -n -15`` with ``--priority nice``), and this
process (the callers and the in-process baseline) on the same core at the same priority,
so the baseline gets what serving gets. Before pinning, the same run measures the baseline
and ``aiwarden serve`` unplaced, for contrast. What else runs on the machine (other jobs)
is not moved: it floats over both cores at ordinary priority.

Target (issue 5's gateway budget): at most +1 ms at p50 and +5 ms at p99 over in-process.
CPU is reported per process from /proc (user + system) beside the machine's load average
and its runnable processes: on a shared machine the wall-clock latencies move with them.

    .venv/bin/python bench/workers.py [--rate 500] [--seconds 15] [--quick]
                                      [--pin [--priority fifo|nice]] [--takeover N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import machine_line
from bench.gateway import NAME, NUMS, _cpu, _models, _pct, _row, measure, paced
from tests.server.live import ProcessServer

INGEST = "ingested"
SERVING_CORE, REST_CORE = 1, 0
FIFO = 50  # SCHED_FIFO priority: above every ordinary (SCHED_OTHER) process
NICE = -15


def runnable() -> int:
    """Processes runnable right now, machine-wide (/proc/stat procs_running)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("procs_running"):
                return int(line.split()[1]) - 1  # less this reader
    return -1


def _rest() -> None:
    """Child placement for the rest of the work (``taskset -c 0``, ordinary priority): a
    child of a pinned, prioritised process would otherwise inherit its core and priority."""
    os.sched_setaffinity(0, {REST_CORE})
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, 0, 0)


def place_self(priority: str) -> str:
    """This process (callers, in-process baseline) on the serving core at serving priority;
    threads started afterwards inherit both."""
    os.sched_setaffinity(0, {SERVING_CORE})
    if priority == "fifo":
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO))
    else:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    return _placement(priority)


def _placement(priority: str) -> str:
    return (f"taskset -c {SERVING_CORE} "
            + (f"chrt -f {FIFO}" if priority == "fifo" else f"nice -n {NICE}"))


class RestServer(ProcessServer):
    """``aiwarden server`` started as ``taskset -c 0 aiwarden server ...``."""

    def spawn(self) -> RestServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiwarden.cli", "server", "--port", str(self.port),
             *self.args], env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_rest)
        return self


def _children(pid: int) -> list[int]:
    """Worker processes of a uvicorn supervisor (spawned children running the app)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if ppid == pid and b"resource_tracker" not in cmd:
                out.append(int(entry))
    return sorted(out)


def _holder(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT holder FROM leases WHERE name = 'alert-evaluator'")).scalar()
    finally:
        engine.dispose()


def ingest_load(base: str, stop_after: float) -> None:
    """Child mode: post 1,000-row batches of ``INGEST`` until ``stop_after`` seconds."""
    import httpx

    from tests.server.conftest import json_rows, scored_frame

    frames = [json_rows(scored_frame(1000, seed=i, shift=0.3 * (i % 3)), 0.0, prefix=f"{i}-")
              for i in range(8)]
    end, k, sent = time.monotonic() + stop_after, 0, 0
    with httpx.Client(base_url=base, timeout=60) as c:
        while time.monotonic() < end:
            now = time.time()
            rows = [r | {"prediction_id": f"{k}-{r['prediction_id']}",
                         "timestamp": now - 30 + j * 0.01}
                    for j, r in enumerate(frames[k % len(frames)])]
            r = c.post(f"/api/v1/models/{INGEST}/predictions", content=orjson.dumps(rows),
                       headers={"content-type": "application/json"})
            sent += 1000 if r.status_code == 200 else 0
            k += 1
    print(orjson.dumps({"rows": sent}).decode(), flush=True)


def _setup(base: str, args: argparse.Namespace, v1: Any, v2: Any, df: Any) -> None:
    import httpx

    from aiwarden.sdk import Client
    from tests.server.conftest import register_model, scored_frame

    with Client(base) as client:
        x = df.sample(5000, random_state=1)
        for model in (v1, v2):
            version = client.register_version(NAME, model, metadata={"inputs": NUMS})["version"]
            ref = x.assign(prediction=model.predict(x.to_numpy()),
                           score=model.predict_proba(x.to_numpy())[:, 1])
            client.upload_reference(NAME, version, ref, prediction="prediction", scores="score")
        client.promote(NAME, "1", reason="bench")
    with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as http:
        register_model(http, INGEST, scored_frame(5000))
        http.put(f"/rules/{INGEST}/drift-all", json={
            "metric": "drift", "column": "*", "critical": 5.0}).raise_for_status()


def _ingesting(base: str, seconds: float,
               placed: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--ingest-load", base, str(seconds)],
                            stdout=subprocess.PIPE, preexec_fn=placed)


def _ingested(load: subprocess.Popen[bytes], seconds: float) -> None:
    got, _ = load.communicate(timeout=120)
    rows = orjson.loads(got.splitlines()[-1])["rows"] if got else 0
    print(f"  ingest meanwhile: {rows} rows accepted ({rows / seconds:.0f} rows/s over the "
          "load's life)")


def _serve(base: str, prefix: str = "",
           profile: str | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """``aiwarden serve`` for the model, logging to the server at ``base``; ``prefix`` is
    the operator's placement (``taskset -c 1 chrt -f 50``)."""
    from bench.gateway import _wait
    from tests.server.live import free_port

    port = free_port()
    proc = subprocess.Popen(
        [*prefix.split(), sys.executable,
         *(["-m", "pyinstrument", "-r", "text", "-o", profile] if profile else []),
         "-m", "aiwarden.cli", "serve", NAME, "--port", str(port), "--url", base,
         "--resources-every", "5"], env={**os.environ, "AIWARDEN_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, proc, within=300)  # imports take minutes on a saturated machine
    except RuntimeError:
        proc.kill()  # not left behind, serving nobody
        raise
    return proc, port


def _baseline(label: str, args: argparse.Namespace, v1: Any, feats: list[dict[str, Any]],
              to_input: Any) -> dict[str, float]:
    """The same model called in this process at the same pace: the figure serving adds to."""
    count = [0]

    def inproc(k: int) -> None:
        f = feats[count[0] % len(feats)]
        count[0] += 1
        x = to_input(f)
        v1.predict(x)
        v1.predict_proba(x)

    paced(inproc, args.rate, 2.0, 1)
    cpu0, load0, run0 = time.process_time(), os.getloadavg()[0], runnable()
    res = paced(inproc, args.rate, args.seconds, 1)
    ms = np.array([r[0] for r in res])
    base = _pct(ms)
    print(_row(label, len(ms), base) + f"  CPU {time.process_time() - cpu0:.2f} s; load "
          f"{load0:.2f}, runnable {run0}")
    return base


def _measured(label: str, port: int, bodies: list[bytes], args: argparse.Namespace,
              base: dict[str, float], pids: dict[str, int]) -> dict[str, Any]:
    """bench/gateway.measure, keeping the achieved rate it prints (for the summary)."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        out = measure(label, port, "/predict", bodies, args, base, pids)
    print(text.getvalue(), end="")
    rate = re.search(r"achieved (\d+) req/s", text.getvalue())
    return out | {"rate": float(rate.group(1)) if rate else float("nan")}


def _served(label: str, serve_prefix: str, srv: ProcessServer, args: argparse.Namespace,
            bodies: list[bytes], base: dict[str, float], pids: dict[str, int],
            profile: str | None = None) -> dict[str, Any]:
    """``aiwarden serve`` (placed by ``serve_prefix``) measured while the server ingests
    1,000-row batches on the rest core and evaluates."""
    life = args.seconds + 6
    serve, port = _serve(srv.url, serve_prefix, profile)
    try:
        load = _ingesting(srv.url, life, _rest)
        pids = pids | {"ingest load": load.pid, "aiwarden serve": serve.pid}
        time.sleep(1.0)
        print(f"\n[{label}] `{serve_prefix or '(unplaced)'} aiwarden serve {NAME}`; server "
              f"and ingest load `taskset -c {REST_CORE}`; runnable {runnable()}")
        out = _measured("aiwarden serve /predict", port, bodies, args, base, pids)
        _ingested(load, life)
    finally:
        # uvicorn re-raises SIGTERM after shutting down, which would kill the profiler
        # before it writes; SIGINT ends as KeyboardInterrupt, which pyinstrument reports
        serve.send_signal(signal.SIGINT if profile else signal.SIGTERM)
        serve.wait(30)
    return out


def pinned(url: str, tmp: Path, args: argparse.Namespace, bodies: list[bytes],
           models: tuple[Any, Any, Any], feats: list[dict[str, Any]],
           to_input: Any) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    """The recommended deployment, placed; unplaced first for contrast (same run)."""
    env = {"AIWARDEN_EVALUATE_EVERY": "2", "AIWARDEN_GATEWAY_RESOURCES_EVERY": "5"}
    srv = RestServer(url, tmp, extra_env=env,
                     args=["--host", "127.0.0.1", "--workers", "1"]).spawn()
    rows = []
    try:
        srv.wait_ready(within=300)
        _setup(srv.url, args, *models)
        assert srv.proc is not None
        pids = {"server (core 0)": srv.proc.pid, "this process": os.getpid()}
        base = _baseline("in-process, unplaced", args, models[0], feats, to_input)
        rows.append(("aiwarden serve, unplaced", _served(
            "unplaced", "", srv, args, bodies, base, pids), base))
        where = place_self(args.priority)
        print(f"\nthis process (callers, baseline) now `{where}`")
        base = _baseline(f"in-process, {where}", args, models[0], feats, to_input)
        rows.append((f"aiwarden serve, {where}", _served(
            "placed", where, srv, args, bodies, base, pids, args.profile), base))
    finally:
        srv.stop()
    return rows


def phase(workers: int, url: str, tmp: Path, args: argparse.Namespace, bodies: list[bytes],
          base: dict[str, float], models: tuple[Any, Any, Any], kill: bool) -> dict[str, Any]:
    env = {"AIWARDEN_EVALUATE_EVERY": "2", "AIWARDEN_GATEWAY_RESOURCES_EVERY": "5"}
    srv = ProcessServer(url, tmp, extra_env=env,
                        args=["--host", "127.0.0.1", "--workers", str(workers)]).spawn()
    out: dict[str, Any] = {}
    path = f"/api/v1/models/{NAME}/predict"
    life = args.seconds + 6
    try:
        srv.wait_ready(within=300)  # workers import the app in parallel: slow when loaded
        if not kill:  # the first phase sets up; the second serves the same store
            _setup(srv.url, args, *models)
        pids = {f"worker {i}": p for i, p in enumerate(
            _children(srv.proc.pid) if workers > 1 else [srv.proc.pid])}
        pids["this process"] = os.getpid()
        if kill:
            print(f"\n[--workers {workers}] server predict route, evaluation but no ingest")
            out["idle"] = measure(f"server /predict, {workers} worker(s), no ingest", srv.port,
                                  path, bodies, args, base, pids)
        load = _ingesting(srv.url, life)
        pids["ingest load"] = load.pid
        time.sleep(1.0)
        print(f"\n[--workers {workers}] server predict route while ingest and evaluation run")
        out["served"] = measure(f"server /predict, {workers} worker(s)", srv.port, path,
                                bodies, args, base, pids)
        _ingested(load, life)
        if kill:
            serve, port = _serve(srv.url)
            try:
                load = _ingesting(srv.url, life)
                pids |= {"ingest load": load.pid, "aiwarden serve": serve.pid}
                time.sleep(1.0)
                print(f"\n[aiwarden serve beside --workers {workers}] a dedicated serving "
                      "process (no ingest in it) while the server ingests and evaluates")
                out["dedicated"] = measure("aiwarden serve /predict", port, "/predict", bodies,
                                           args, base, pids)
                _ingested(load, life)
            finally:
                serve.terminate()
                serve.wait(30)
            out["takeover"] = takeover(srv.proc.pid, url)
    finally:
        srv.stop()
    return out


def takeover(supervisor: int, url: str) -> float | None:
    holder = _holder(url)
    if holder is None:
        print("  no lease holder: takeover not measured")
        return None
    pid = int(holder.split(":")[1])
    cpu0 = {p: _cpu(p) for p in _children(supervisor)}
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    while (h := _holder(url)) == holder:
        if time.monotonic() - t0 > 120:
            print("  nobody took over within 120 s")
            return None
        time.sleep(0.05)
    took = time.monotonic() - t0
    used = {p: _cpu(p) - c for p, c in cpu0.items() if p != pid and os.path.exists(f"/proc/{p}")}
    print(f"  leader (pid {pid}) killed -9: pid {h.split(':')[1]} holds the lease after "
          f"{took:.2f} s (lease TTL 10 s, heartbeat 1 s); survivors' CPU meanwhile "
          f"{sum(used.values()):.2f} s; load average {os.getloadavg()[0]:.2f}")
    return took


def takeovers(n: int) -> int:
    """Only the takeover: ``n`` times a fresh ``aiwarden server --workers 2`` (default lease
    TTL, evaluation every 2 s) on one database, its leader killed -9 once both workers beat."""
    from tests.server.live import database_url

    took: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, database_url("postgresql", Path(tmp)) as url:
        for _ in range(n):
            srv = ProcessServer(url, Path(tmp), extra_env={"AIWARDEN_EVALUATE_EVERY": "2"},
                                args=["--host", "127.0.0.1", "--workers", "2"]).spawn()
            try:
                srv.wait_ready(within=300)
                deadline = time.monotonic() + 300
                while not ((h := _holder(url)) and int(h.split(":")[1])
                           in _children(srv.proc.pid) and len(_children(srv.proc.pid)) == 2):
                    if time.monotonic() > deadline:
                        print("  no worker of this server took the lease")
                        return 1
                    time.sleep(0.2)
                time.sleep(3)  # the follower's app is up and beating too
                if (t := takeover(srv.proc.pid, url)) is not None:
                    took.append(t)
            finally:
                srv.stop()
    if took:
        print(f"takeover after kill -9, {len(took)} runs: median {np.median(took):.2f} s, "
              f"min {min(took):.2f}, max {max(took):.2f} s (lease TTL 10 s); finished "
              f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average "
              f"{os.getloadavg()[0]:.2f}")
    return 0 if len(took) == n else 1


def _budget(p: dict[str, float], base: dict[str, float]) -> str:
    ok = p["p50"] - base["p50"] <= 1 and p["p99"] - base["p99"] <= 5
    return (f"p50 {p['p50'] - base['p50']:+.2f} ms, p99 {p['p99'] - base['p99']:+.2f} ms "
            f"(p99 ratio {p['p99'] / base['p99']:.1f}x): budget {'met' if ok else 'NOT met'}")


def _pinned_main(args: argparse.Namespace, bodies: list[bytes], models: tuple[Any, Any, Any],
                 feats: list[dict[str, Any]], to_input: Any) -> int:
    from tests.server.live import database_url

    with tempfile.TemporaryDirectory() as tmp, database_url("postgresql", Path(tmp)) as url:
        rows = pinned(url, Path(tmp), args, bodies, models, feats, to_input)
    print("\nsummary (overhead over the in-process baseline placed the same way, same run):")
    for label, served, base in rows:
        print(f"  {label}: {_budget(served['p'], base)}; baseline p50 {base['p50']:.2f} / "
              f"p99 {base['p99']:.2f} ms; {served['rate']:.0f} req/s achieved")
    print(f"finished {time.strftime('%H:%M:%S', time.gmtime())} UTC, load average "
          f"{os.getloadavg()[0]:.2f}, runnable {runnable()}")
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--ingest-load":
        ingest_load(sys.argv[2], float(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workers", type=int, default=4, help="client threads")
    ap.add_argument("--quick", action="store_true", help="6 s per phase")
    ap.add_argument("--pin", action="store_true", help="the placed deployment: aiwarden "
                    f"serve and the callers on core {SERVING_CORE} above the rest, the server "
                    f"and ingest on core {REST_CORE}")
    ap.add_argument("--priority", choices=("fifo", "nice"), default="fifo",
                    help=f"with --pin: chrt -f {FIFO} (default) or nice -n {NICE}")
    ap.add_argument("--profile", metavar="FILE", help="with --pin: run the placed aiwarden "
                    "serve under pyinstrument (importable, e.g. on PYTHONPATH), its text "
                    "report to FILE (the profiler's cost is in that run's figures)")
    ap.add_argument("--takeover", type=int, metavar="N", help="only the leader kill -9 -> "
                    "takeover measurement, N times (each on a fresh --workers 2 server)")
    args = ap.parse_args()
    if args.quick:
        args.seconds = 6
    if args.takeover:
        print(f"workers bench, takeover only: machine: {machine_line()}, {runnable()} "
              f"runnable; started {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC")
        return takeovers(args.takeover)
    from tests.server.live import database_url

    v1, v2, df, to_input = _models("array")
    feats = df.head(1000).to_dict("records")
    bodies = [orjson.dumps({"features": f}) for f in feats]
    print(f"workers bench: {args.rate:.0f} req/s from {args.workers} threads, {args.seconds:.0f}"
          f" s per phase, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; model: "
          "scaler + logistic regression, 3 features; store: PostgreSQL 127.0.0.1:5432")
    print(f"machine: {machine_line()}, {runnable()} runnable; started "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC")
    if args.pin:
        return _pinned_main(args, bodies, (v1, v2, df), feats, to_input)
    base = _baseline("in-process predict + predict_proba", args, v1, feats, to_input)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, database_url("postgresql", Path(tmp)) as url:
        for n, kill in ((1, False), (2, True)):
            results[n] = phase(n, url, Path(tmp), args, bodies, base, (v1, v2, df), kill)
    print("\nsummary (overhead over in-process, same run):")
    rows = [(f"--workers {n}, {what}", r[key]) for n, r in results.items()
            for key, what in (("idle", "server route, no ingest"),
                              ("served", "server route, ingest running"),
                              ("dedicated", "aiwarden serve beside it, ingest running"))
            if key in r]
    for label, served in rows:
        print(f"  {label}: {_budget(served['p'], base)}")
    took = results[2].get("takeover")
    print(f"  leader kill -> takeover: {'n/a' if took is None else f'{took:.2f} s'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
