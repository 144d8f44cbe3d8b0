"""What the served version's time limit (gateway/_watchdog.py) costs on the champion's path,
off vs on in one run.

With ``serve_timeout`` the champion's call runs on a reused worker thread while the caller
waits for it (a queue hand-off and an event per call); without it the call runs in the
caller's thread. This bench calls one in-process :class:`Gateway` (the route's model path,
without HTTP) on the models of bench/gateway.py, alternating blocks of 500 one-row
requests with the watch off and on, so both see the same machine load. Figures: CPU of
the whole process per request (the call now spends CPU in another thread, so the caller's
thread time alone would flatter it) and wall time per request, medians over blocks.

    .venv/bin/python bench/gateway_watch.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.engine.schema import infer_schema
from aiwarden.gateway import Gateway
from aiwarden.gateway._watchdog import Watch
from bench._machine import machine_line
from bench.gateway import NUMS, _models
from bench.gateway_checks import _Source

BLOCK = 500


def run(kind: str, n: int) -> None:
    v1, _, df, _ = _models(kind)
    inputs = NUMS if kind == "array" else None
    gw = Gateway("fraud", _Source(v1, inputs, infer_schema(df)), lambda rows: None, poll=0,
                 max_queue=10**7, serve_timeout=30.0)
    watches = {True: gw.served, False: None}
    assert isinstance(gw.served, Watch)
    feats = df.head(2000).to_dict("records")
    cpu: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    k = 0
    for block in range(2 * n // BLOCK):
        on = block % 2 == 1
        gw.served = watches[on]
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(BLOCK):
            gw.predict({"features": feats[k % len(feats)], "prediction_id": f"r{k}"})
            k += 1
        cpu[on].append((time.process_time() - c0) / BLOCK * 1e3)
        wall[on].append((time.perf_counter() - w0) / BLOCK * 1e3)
    gw.close(1)
    off_c, on_c = statistics.median(cpu[False]), statistics.median(cpu[True])
    off_w, on_w = statistics.median(wall[False]), statistics.median(wall[True])
    print(f"model {kind}: one-row requests, {n} each way, median over blocks of {BLOCK}")
    print(f"  CPU ms/request  watch off {off_c:.3f}  on {on_c:.3f}  "
          f"(+{(on_c - off_c) * 1e3:.0f} µs, x{on_c / off_c:.3f})")
    print(f"  wall ms/request watch off {off_w:.3f}  on {on_w:.3f}  "
          f"(+{(on_w - off_w) * 1e3:.0f} µs, x{on_w / off_w:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000)
    args = ap.parse_args()
    print(machine_line())
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    for kind in ("array", "frame"):
        run(kind, args.requests)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
