"""The serving gateway's added latency, and how fast an alias move reaches it.

Three processes, as in production: the aiwarden server (registry, monitoring, ingest of
the gateway's events), the gateway, and this process, which generates the load and runs
the baseline. The baseline is the same scikit-learn model called in this process on the
same rows: build the one-row frame from the request's features, ``predict``,
``predict_proba`` (what the gateway computes for a caller). The gateway's figure is a
client's: from writing the request on a kept-alive connection to reading the answer.

* paced load: ``--rate`` requests/s from ``--workers`` threads, each on its own schedule
  (a late thread sends at once rather than skipping), for ``--seconds``; the baseline
  runs at the same pace in this process before the gateways are loaded;
* gateways: ``aiwarden serve`` (standalone, logging to the server over HTTP) and the
  server's own ``POST /api/v1/models/{name}/predict`` (logging in-process);
* alias moves under the same load: the champion is promoted back and forth; the delay is
  from the move's answer to the first response made by the new version.

Target (issue 5): at 500 requests/s, at most +1 ms at p50 and +5 ms at p99.

    .venv/bin/python bench/gateway.py [--rate 500] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.demo.synthetic import transactions
from aiwarden.sdk import Client
from tests.server.live import ProcessServer, free_port

NAME = "fraud"
CATS, NUMS = ["merchant", "country"], ["amount", "hour", "account_age_days"]
MODELS = {"array": "scaler + logistic regression on a numeric array, 3 features",
          "frame": "one-hot + scaler + logistic regression on a DataFrame, 5 features"}


def _models(kind: str) -> tuple[Any, Any, pd.DataFrame, Any]:
    """Two versions of a fraud model, the rows, and how an in-process caller would turn a
    request's features into the model's input.

    ``array``: scaler + logistic regression fitted on a numeric array (registered with its
    input order), called with a one-row array. ``frame``: one-hot + scaler + logistic
    regression fitted on a DataFrame, called with a one-row DataFrame; scikit-learn's
    pandas checks make each call cost ~0.7 ms here, so 500 requests/s of it need most of
    a core before any serving.
    """
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = transactions(20_000, np.random.default_rng(0))
    y = df.pop("is_fraud")
    if kind == "array":
        df = df[NUMS]

        def fit(c: float) -> Any:
            return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(
                df.to_numpy(), y)

        def to_input(f: dict[str, Any]) -> Any:
            return np.array([[f[c] for c in NUMS]])
    else:
        def fit(c: float) -> Any:
            pre = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), CATS),
                                          (StandardScaler(), NUMS))
            return make_pipeline(pre, LogisticRegression(C=c, max_iter=1000)).fit(df, y)

        def to_input(f: dict[str, Any]) -> Any:
            return pd.DataFrame({c: [v] for c, v in f.items()})

    return fit(1.0), fit(0.01), df, to_input


def _pct(ms: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.median(ms)), "p90": float(np.quantile(ms, 0.9)),
            "p99": float(np.quantile(ms, 0.99)), "p99.9": float(np.quantile(ms, 0.999)),
            "max": float(ms.max()), "mean": float(ms.mean())}


def _row(label: str, n: int, p: dict[str, float]) -> str:
    return (f"  {label:<34} n={n:>6}  p50 {p['p50']:6.2f}  p90 {p['p90']:6.2f}  p99 "
            f"{p['p99']:6.2f}  p99.9 {p['p99.9']:6.2f}  max {p['max']:7.2f}  (ms)")


def _histogram(ms: np.ndarray, label: str) -> None:
    edges = [0, 0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 20, 50, np.inf]
    counts, _ = np.histogram(ms, edges)
    print(f"  {label} latency distribution:")
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        bar = "#" * round(60 * c / max(len(ms), 1))
        print(f"    {lo:>5}-{hi:<5} ms {c:>6}  {bar}")


def paced(fn: Any, rate: float, seconds: float, workers: int) -> list[tuple[float, Any]]:
    """Call ``fn(worker)`` ``rate`` times a second for ``seconds``; per call (ms, result)."""
    out: list[list[tuple[float, Any]]] = [[] for _ in range(workers)]
    start = time.perf_counter() + 0.05
    interval = workers / rate

    def run(k: int) -> None:
        n = 0
        while True:
            due = start + (k / workers + n) * interval
            if due > start + seconds:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            result = fn(k)
            out[k].append(((time.perf_counter() - t0) * 1000, result))
            n += 1

    threads = [threading.Thread(target=run, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for xs in out for x in xs]


class HttpLoad:
    """Kept-alive stdlib connections, one per worker: the leanest client Python has."""

    def __init__(self, port: int, path: str, bodies: list[bytes], workers: int) -> None:
        self.path, self.bodies = path, bodies
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                      for _ in range(workers)]
        self.i = [0] * workers

    def __call__(self, k: int) -> tuple[int, str | None]:
        body = self.bodies[self.i[k] % len(self.bodies)]
        self.i[k] += 1
        conn = self.conns[k]
        try:
            conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            return r.status, r.getheader("x-aiwarden-version")
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return 0, type(exc).__name__


def _cpu(pid: int) -> float:
    """CPU seconds a process used so far (user + system, from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(label: str, port: int, path: str, bodies: list[bytes], args: argparse.Namespace,
            base: dict[str, float], pids: dict[str, int]) -> dict[str, Any]:
    load = HttpLoad(port, path, bodies, args.workers)
    paced(load, args.rate, 2.0, args.workers)  # warm up: connections, caches, JIT-less paths
    before = {k: _cpu(p) for k, p in pids.items()}
    t0 = time.perf_counter()
    res = paced(load, args.rate, args.seconds, args.workers)
    elapsed = time.perf_counter() - t0  # longer than asked when the gateway falls behind
    used = {k: (_cpu(p) - before[k]) / elapsed * 100 for k, p in pids.items()}
    ms = np.array([r[0] for r in res])
    failed = sum(1 for r in res if r[1][0] != 200)
    p = _pct(ms)
    print(_row(label, len(ms), p) + f"  failed {failed}")
    _histogram(ms, label)
    print(f"    overhead vs in-process: p50 {p['p50'] - base['p50']:+.2f} ms, "
          f"p99 {p['p99'] - base['p99']:+.2f} ms   achieved {len(ms) / elapsed:.0f} req/s")
    print("    CPU (% of one core): " + ", ".join(f"{k} {v:.0f}" for k, v in used.items())
          + f"; machine load average {os.getloadavg()[0]:.2f}")
    return {"p": p, "failed": failed, "n": len(ms)}


def switch_times(client: Client, port: int, path: str, bodies: list[bytes],
                 args: argparse.Namespace, moves: int) -> tuple[list[float], int, int]:
    """Promote 2, 1, 2, ... under load; per move, seconds until the new version answered."""
    load = HttpLoad(port, path, bodies, args.workers)
    log: list[tuple[float, int, str | None]] = []
    lock = threading.Lock()

    def call(k: int) -> None:
        sent = time.time()
        status, version = load(k)
        with lock:
            log.append((sent, status, version))

    stop_at = 2.0 * moves + 1.5
    t = threading.Thread(target=paced, args=(call, args.rate, stop_at, args.workers))
    t.start()
    marks = []
    time.sleep(1.0)
    for i in range(moves):
        target = "2" if i % 2 == 0 else "1"
        client.promote(NAME, target, reason=f"bench move {i}")
        marks.append((time.time(), target))
        time.sleep(2.0)
    t.join()
    delays = []
    for at, target in marks:
        after = [s for s, status, v in log if s >= at and v == target]
        delays.append(min(after) - at if after else float("inf"))
    failed = sum(1 for _, status, _ in log if status != 200)
    return delays, failed, len(log)


def _wait(port: int, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("aiwarden serve exited")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("aiwarden serve did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--moves", type=int, default=6)
    ap.add_argument("--model", choices=("array", "frame"), default="array")
    ap.add_argument("--quick", action="store_true", help="5 s per phase, 2 moves")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.moves = 5, 2
    v1, v2, df, to_input = _models(args.model)
    feats = df.head(1000).to_dict("records")
    bodies = [orjson.dumps({"features": f}) for f in feats]
    print(f"gateway bench: {args.rate:.0f} req/s from {args.workers} threads of another "
          f"process, {args.seconds:.0f} s per phase, {os.cpu_count()} cores; model: "
          f"{MODELS[args.model]}")

    # -- baseline: the same model, in this process, at the same pace, one thread (no GIL
    # contention between callers inflates it) ---------------------------------------------
    count = [0]

    def inproc(k: int) -> None:
        f = feats[count[0] % len(feats)]
        count[0] += 1
        x = to_input(f)
        v1.predict(x)
        v1.predict_proba(x)

    paced(inproc, args.rate, 2.0, 1)
    t0 = time.perf_counter()
    res = paced(inproc, args.rate, args.seconds, 1)
    if time.perf_counter() - t0 > args.seconds * 1.1:
        print(f"  (the model alone cannot keep up with {args.rate:.0f} req/s on one thread: "
              f"{len(res) / (time.perf_counter() - t0):.0f} req/s)")
    base_ms = np.array([r[0] for r in res])
    base = _pct(base_ms)
    print(_row("in-process predict + predict_proba", len(base_ms), base))
    _histogram(base_ms, "in-process")

    with tempfile.TemporaryDirectory() as tmp:
        env = {"AIWARDEN_GATEWAY_RESOURCES_EVERY": "5"}
        srv = ProcessServer(None, Path(tmp), extra_env=env).start()
        serve = None
        try:
            with Client(srv.url) as client:
                x = df.sample(5000, random_state=1)
                meta = {"inputs": NUMS} if args.model == "array" else None
                for model in (v1, v2):
                    version = client.register_version(NAME, model, metadata=meta)["version"]
                    xin = x.to_numpy() if args.model == "array" else x
                    ref = x.assign(prediction=model.predict(xin),
                                   score=model.predict_proba(xin)[:, 1])
                    client.upload_reference(NAME, version, ref, prediction="prediction",
                                            scores="score")
                client.promote(NAME, "1", reason="bench")
                port = free_port()
                serve = subprocess.Popen(
                    [sys.executable, "-m", "aiwarden.cli", "serve", NAME, "--port", str(port),
                     "--url", srv.url, "--resources-every", "5"],
                    env={**os.environ, "AIWARDEN_LOG_LEVEL": "warning"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                _wait(port, serve)
                print("\n[aiwarden serve] standalone process, events to the server over HTTP")
                pids = {"serve": serve.pid, "server": srv.proc.pid, "load generator": os.getpid()}
                alone = measure("aiwarden serve /predict", port, "/predict", bodies, args, base,
                                pids)
                delays, failed, n = switch_times(client, port, "/predict", bodies, args,
                                                 args.moves)
                print(f"  alias moves under load: switched after "
                      f"{', '.join(f'{d * 1000:.0f}' for d in delays)} ms; "
                      f"{failed} of {n} requests failed")
                stats = orjson.loads(_get(port, "/gateway"))
                print(f"  events: {stats['events']}")
                print("\n[aiwarden server] POST /api/v1/models/fraud/predict, events in-process")
                path = f"/api/v1/models/{NAME}/predict"
                del pids["serve"]
                inner = measure("server /predict", srv.port, path, bodies, args, base, pids)
                delays2, failed2, n2 = switch_times(client, srv.port, path, bodies, args,
                                                    args.moves)
                print(f"  alias moves under load: switched after "
                      f"{', '.join(f'{d * 1000:.0f}' for d in delays2)} ms; "
                      f"{failed2} of {n2} requests failed")
                gws = orjson.loads(_get(srv.port, f"/api/v1/models/{NAME}/gateway"))["gateways"]
                print(f"  events: {gws[0]['events']}")
        finally:
            if serve is not None:
                serve.terminate()
                serve.wait(30)
            srv.stop()
    ok = (alone["p"]["p50"] - base["p50"] <= 1 and alone["p"]["p99"] - base["p99"] <= 5)
    print(f"\ntarget (+1 ms p50, +5 ms p99) for aiwarden serve: {'met' if ok else 'NOT met'}; "
          f"server route: p50 {inner['p']['p50'] - base['p50']:+.2f} ms, "
          f"p99 {inner['p']['p99'] - base['p99']:+.2f} ms")
    return 0


def _get(port: int, path: str) -> bytes:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    return c.getresponse().read()


if __name__ == "__main__":
    raise SystemExit(main())
