"""What the predict route's input checks cost on the champion's fast path, before vs after
in one run.

The gateway now checks each request against the served version's schema
(gateway/_check.py) and remembers caller-given prediction ids (gateway/_ids.py). This
bench calls one in-process :class:`Gateway` (the route's model path, without HTTP, which
the checks do not touch) on the models of bench/gateway.py, alternating blocks of 500
requests with the checks *off* (the arm without its schema check, no id ledger: the code
before) and *on*, so both see the same machine load. Figures are CPU time of the calling
thread per request (the machine is shared); one-row requests carry a prediction_id.

    .venv/bin/python bench/gateway_checks.py [--requests 20000] [--batch 1000]
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
from aiwarden.gateway.sources import ServingState
from aiwarden.registry.predictor import EstimatorPredictor
from bench._machine import machine_line
from bench.gateway import NUMS, _models


class _Source:
    """One version behind ``champion``, with the schema of its training frame."""

    def __init__(self, model: Any, inputs: list[str] | None, schema: Any) -> None:
        self.name, self.model, self.inputs, self._schema = "fraud", model, inputs, schema

    def stamp(self) -> Any:
        return (1,)

    def state(self) -> ServingState:
        return ServingState((1,), {"champion": "1"})

    def load(self, version: str) -> Any:
        return EstimatorPredictor(self.model, "skops", inputs=self.inputs, model=self.name,
                                  version=version)

    def schema(self, version: str) -> Any:
        return self._schema


class _NoLedger:
    def claim(self, items: Any, version: str, single: bool) -> list[bool]:
        return [False] * len(items)


def _toggle(gw: Gateway, on: bool, arms: dict[bool, Any], ledgers: dict[bool, Any]) -> None:
    snap = gw._snapshot
    gw._snapshot = replace(snap, primary=arms[on])
    gw.ids = ledgers[on]


def run(kind: str, n: int, batch: int) -> None:
    v1, _, df, _ = _models(kind)
    inputs = NUMS if kind == "array" else None
    gw = Gateway("fraud", _Source(v1, inputs, infer_schema(df)), lambda rows: None, poll=0,
                 max_queue=10**7)
    arm = gw._snapshot.primary
    assert arm.check is not None, "the schema did not reach the arm"
    arms = {True: arm, False: replace(arm, check=None)}
    ledgers = {True: gw.ids, False: _NoLedger()}
    feats = df.head(2000).to_dict("records")
    ms: dict[bool, list[float]] = {True: [], False: []}
    k = 0
    for block in range(2 * n // 500):
        on = block % 2 == 1
        _toggle(gw, on, arms, ledgers)
        for _ in range(500):
            f = feats[k % len(feats)]
            req = {"features": f, "prediction_id": f"r{k}"}
            k += 1
            t0 = time.thread_time_ns()
            gw.predict(req)
            ms[on].append((time.thread_time_ns() - t0) / 1e6)
    big: dict[bool, list[float]] = {True: [], False: []}
    rows = [{"features": f} for f in feats[:batch]]
    for i in range(20):
        on = i % 2 == 1
        _toggle(gw, on, arms, ledgers)
        t0 = time.thread_time_ns()
        gw.predict({"rows": rows})
        big[on].append((time.thread_time_ns() - t0) / 1e6)
    gw.close(1)
    p = {o: (np.median(ms[o]), np.quantile(ms[o], 0.99)) for o in (False, True)}
    b = {o: np.median(big[o]) for o in (False, True)}
    print(f"model {kind}: one row, {n} requests each way, CPU ms per request")
    print(f"  checks off (before): p50 {p[False][0]:.3f}  p99 {p[False][1]:.3f}")
    print(f"  checks on  (after):  p50 {p[True][0]:.3f}  p99 {p[True][1]:.3f}   "
          f"p50 ratio {p[True][0] / p[False][0]:.3f}, p99 ratio {p[True][1] / p[False][1]:.3f}")
    print(f"  {batch}-row batch, median of 10 each: off {b[False]:.2f} ms, on {b[True]:.2f} ms "
          f"(ratio {b[True] / b[False]:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    print(machine_line())
    for kind in ("array", "frame"):
        run(kind, args.requests, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
