"""Does image ingest slow tabular ingest in the same server? (issue 16)

A real server process (``aiwarden server``, SQLite in a temporary folder) with a tabular
model and an image model, run twice: images measured in the server process
(``AIWARDEN_IMAGE_WORKERS=0``, how it was) and in a worker process (the default on this
machine: half the cores, aiwarden/images/_pool.py). In each run, phase A: a client posts
tabular batches (``--rows`` rows) back to back; phase B: the same while a second client
posts image batches (``--images`` 224x224 JPEGs, multipart) back to back.

Printed per run: the tabular request's median and 90th percentile wall time in each phase
and their ratio, tabular rows/s, images/s in phase B, and CPU seconds (psutil, user+system)
of the server process and of its image workers per phase. Wall time is what a tabular
client sees; the machine is shared (load average printed), so read the ratios, and the CPU
seconds, which the load does not inflate: the server process's CPU per tabular batch in
phase B against phase A is the GIL and cache cost image ingest puts on the tabular path.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/image_ingest.py --batches 30
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import numpy as np
import psutil
from _machine import machine_line

from aiwarden.images import properties
from aiwarden.images.synthetic import fruit_jpeg
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ProcessServer


def _cpu(proc: psutil.Process) -> tuple[float, float]:
    """(server process, its children) CPU seconds so far."""
    t = proc.cpu_times()
    kids = 0.0
    for c in proc.children(recursive=True):
        try:
            ct = c.cpu_times()
            kids += ct.user + ct.system
        except psutil.Error:
            pass
    return t.user + t.system, kids


def _post_images(c: httpx.Client, images: list[bytes], now: float, k: int) -> None:
    metas = [{"prediction_id": f"i{k}-{i}", "timestamp": now, "prediction": "banana"}
             for i in range(len(images))]
    while True:
        r = c.post("/models/img/images", data={"metadata": json.dumps(metas)},
                   files=[("files", (f"{i}.jpg", d, "image/jpeg"))
                          for i, d in enumerate(images)])
        if r.status_code != 429:
            r.raise_for_status()
            return
        time.sleep(float(r.headers.get("retry-after", "1")))


def _image_client(url: str, images: list[bytes], now: float, stop: Any, sent: Any) -> None:
    # stands for a camera's uploader on another machine: here it shares the two cores, so
    # it takes only what the server and the tabular client leave (nice 19), or the bench
    # would measure this client's multipart encoding against the tabular path
    os.nice(19)
    with httpx.Client(base_url=url + "/api/v1", timeout=120) as c:
        k = 0
        while not stop.is_set():
            _post_images(c, images, now, k)
            with sent.get_lock():
                sent.value += len(images)
            k += 1


def run(workers: int, a: argparse.Namespace, images: list[bytes], ref) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        srv = ProcessServer(f"sqlite:///{tmp}/b.db", Path(tmp), extra_env={
            "AIWARDEN_IMAGE_WORKERS": str(workers), "OPENBLAS_NUM_THREADS": "1",
            "AIWARDEN_EVALUATE_EVERY": "0"}).start()
        try:
            return _phases(srv, a, images, ref)
        finally:
            srv.stop()


def _phases(srv: ProcessServer, a: argparse.Namespace, images: list[bytes], ref
            ) -> dict[str, float]:
    proc = psutil.Process(srv.proc.pid)
    now = time.time() - 600
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=120) as http:
        register_model(http, "tab")
        register_model(http, "img", ref, {"prediction": "pred"})
        frames = [json_rows(scored_frame(a.rows, seed=i), now) for i in range(2 * a.batches)]
        for j, rows in enumerate(frames):
            for r in rows:
                r["prediction_id"] = f"{j}-{r['prediction_id']}"

        for k in range(3):  # warm up: the image workers start on the first batches
            _post_images(http, images, now, -1 - k)
            time.sleep(1.0)

        def tabular(part: list) -> list[float]:
            out = []
            for rows in part:
                t = time.perf_counter()
                http.post("/models/tab/predictions", json=rows).raise_for_status()
                out.append(time.perf_counter() - t)
            return out

        c0 = _cpu(proc)
        t0 = time.perf_counter()
        alone = tabular(frames[:a.batches])
        wall_a = time.perf_counter() - t0
        c1 = _cpu(proc)
        ctx = multiprocessing.get_context("spawn")
        stop, sent = ctx.Event(), ctx.Value("q", 0)
        # its own process: a client thread in this one took the tabular client's GIL, so
        # the bench measured its own client, not the server
        th = ctx.Process(target=_image_client, args=(srv.url, images, now, stop, sent))
        th.start()
        while sent.value == 0:  # the image client is under way
            time.sleep(0.1)
        c2, s2 = _cpu(proc), sent.value
        t2 = time.perf_counter()
        busy = tabular(frames[a.batches:])
        wall_b = time.perf_counter() - t2
        c3, s3 = _cpu(proc), sent.value
        stop.set()
        th.join()
    q = statistics.quantiles
    return {"alone_ms": statistics.median(alone) * 1000, "busy_ms": statistics.median(busy) * 1000,
            "alone_p90": q(alone, n=10)[-1] * 1000, "busy_p90": q(busy, n=10)[-1] * 1000,
            "rows_a": a.rows * a.batches / wall_a, "rows_b": a.rows * a.batches / wall_b,
            "images_s": (s3 - s2) / wall_b,
            "srv_cpu_a": c1[0] - c0[0], "srv_cpu_b": c3[0] - c2[0],
            "kid_cpu_b": c3[1] - c2[1], "images_b": s3 - s2}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 1],
                    help="image workers per run (0: in the server process)")
    a = ap.parse_args()
    print(machine_line())
    rng = np.random.default_rng(0)
    images = [fruit_jpeg(k, rng, 224) for k in ["banana", "cucumber"] * (a.images // 2)]
    ref = properties(images).to_pandas()[["brightness", "contrast", "sharpness"]]
    ref["pred"] = ["banana", "cucumber"] * (a.images // 2)
    print(f"tabular batches of {a.rows} rows ({a.batches} per phase); image batches of "
          f"{len(images)} 224x224 JPEGs. Wall ms, CPU s (psutil, user+system).")
    print(f"{'workers':>7} {'tab ms A':>8} {'tab ms B':>8} {'ratio':>5} {'p90 A':>6} "
          f"{'p90 B':>6} {'rows/s A':>8} {'rows/s B':>8} {'img/s B':>7} {'srv CPU A':>9} "
          f"{'srv CPU B':>9} {'wrk CPU B':>9} {'srv ms/img B':>12}")
    for w in a.workers:
        r = run(w, a, images, ref)
        # server CPU in phase B beyond what the tabular batches cost alone, per image
        per_img = (r["srv_cpu_b"] - r["srv_cpu_a"]) / max(r["images_b"], 1) * 1000
        print(f"{w:7d} {r['alone_ms']:8.1f} {r['busy_ms']:8.1f} "
              f"{r['busy_ms'] / r['alone_ms']:5.2f} {r['alone_p90']:6.1f} {r['busy_p90']:6.1f} "
              f"{r['rows_a']:8.0f} {r['rows_b']:8.0f} {r['images_s']:7.0f} "
              f"{r['srv_cpu_a']:9.2f} {r['srv_cpu_b']:9.2f} {r['kid_cpu_b']:9.2f} "
              f"{per_img:12.2f}", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
