"""What the gateway's ingest pre-check (gateway/_ingestable.py) costs on the champion's
fast path, off vs on in one run.

One in-process :class:`Gateway` on the models of bench/gateway.py, alternating blocks of
500 one-row requests (with a prediction_id) with the arm's ingest check *off* (a stand-in
that finds nothing: the code before) and *on*; then 1000-row batches the same way. CPU time
of the calling thread per request (the machine is shared).

    .venv/bin/python bench/gateway_ingestable.py [--requests 6000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.engine.schema import infer_schema
from aiwarden.gateway import Gateway
from bench._machine import machine_line
from bench.gateway import NUMS, _models
from bench.gateway_checks import _Source


class _Off:
    def refusals(self, items: Any, version: str) -> list[Any]:
        return []


def run(kind: str, n: int, batch: int) -> None:
    v1, _, df, _ = _models(kind)
    gw = Gateway("fraud", _Source(v1, NUMS if kind == "array" else None, infer_schema(df)),
                 lambda rows: None, poll=0, max_queue=10**7)
    arm = gw._snapshot.primary
    arms = {True: arm, False: replace(arm, ingest=_Off())}
    feats = df.head(2000).to_dict("records")
    ms: dict[bool, list[float]] = {True: [], False: []}
    k = 0
    for block in range(2 * n // 500):
        on = block % 2 == 1
        gw._snapshot = replace(gw._snapshot, primary=arms[on])
        for _ in range(500):
            req = {"features": feats[k % len(feats)], "prediction_id": f"r{k}"}
            k += 1
            t0 = time.thread_time_ns()
            gw.predict(req)
            ms[on].append((time.thread_time_ns() - t0) / 1e6)
    big: dict[bool, list[float]] = {True: [], False: []}
    rows = [{"features": f} for f in feats[:batch]]
    for i in range(20):
        on = i % 2 == 1
        gw._snapshot = replace(gw._snapshot, primary=arms[on])
        t0 = time.thread_time_ns()
        gw.predict({"rows": rows})
        big[on].append((time.thread_time_ns() - t0) / 1e6)
    gw.close(1)
    p = {o: np.median(ms[o]) for o in (False, True)}
    b = {o: np.median(big[o]) for o in (False, True)}
    print(f"model {kind}: one row, p50 CPU ms off {p[False]:.3f}, on {p[True]:.3f} "
          f"(ratio {p[True] / p[False]:.3f}); {batch}-row batch median off {b[False]:.2f}, "
          f"on {b[True]:.2f} ms (ratio {b[True] / b[False]:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    print(machine_line())
    for kind in ("array", "frame"):
        run(kind, args.requests, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
