"""Does image ingest slow tabular ingest in the same server? (issue 16)

One real server (tests/server/live.ThreadServer, SQLite in a temporary folder) with a tabular
model and an image model. Phase A: a client posts tabular batches (``--rows`` rows) and we
record each request's wall time. Phase B: the same, while a second client thread posts image
batches (``--images`` 224x224 JPEGs, multipart) back to back. Printed: medians of the tabular
request time in each phase, their ratio, and the image throughput in phase B. Wall time is
what a tabular client sees; on a machine shared with others (see the load average printed)
read the ratio over several runs. Image decode and properties run in a worker thread before
the tabular ingest's write lock (aiwarden.monitoring.image_events), so the ratio is the
cost of sharing the CPU, not of waiting on a lock.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/image_ingest.py --batches 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import numpy as np
from _machine import machine_line

from aiwarden.images import properties
from aiwarden.images.synthetic import fruit_jpeg
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--images", type=int, default=64)
    a = ap.parse_args()
    print(machine_line())
    rng = np.random.default_rng(0)
    images = [fruit_jpeg(k, rng, 224) for k in ["banana", "cucumber"] * (a.images // 2)]
    ref = properties(images).to_pandas()[["brightness", "contrast", "sharpness"]]
    ref["pred"] = ["banana", "cucumber"] * (a.images // 2)
    with tempfile.TemporaryDirectory() as tmp, ThreadServer(settings_for(
            f"sqlite:///{tmp}/b.db", Path(tmp), evaluate_every=0)) as srv, httpx.Client(
            base_url=srv.url + "/api/v1", timeout=120) as http:
        register_model(http, "tab")
        register_model(http, "img", ref, {"prediction": "pred"})
        now = time.time() - 600
        frames = [json_rows(scored_frame(a.rows, seed=i), now) for i in range(2 * a.batches)]
        for j, rows in enumerate(frames):
            for r in rows:
                r["prediction_id"] = f"{j}-{r['prediction_id']}"

        def tabular(part: list) -> list[float]:
            out = []
            for rows in part:
                t = time.perf_counter()
                http.post("/models/tab/predictions", json=rows).raise_for_status()
                out.append(time.perf_counter() - t)
            return out

        alone = tabular(frames[:a.batches])
        stop, sent = threading.Event(), [0]

        def image_client() -> None:
            with httpx.Client(base_url=srv.url + "/api/v1", timeout=120) as c:
                k = 0
                while not stop.is_set():
                    metas = [{"prediction_id": f"i{k}-{i}", "timestamp": now,
                              "prediction": "banana"} for i in range(len(images))]
                    c.post("/models/img/images", data={"metadata": json.dumps(metas)},
                           files=[("files", (f"{i}.jpg", d, "image/jpeg"))
                                  for i, d in enumerate(images)]).raise_for_status()
                    sent[0] += len(images)
                    k += 1

        th = threading.Thread(target=image_client)
        t0 = time.perf_counter()
        th.start()
        time.sleep(1.0)  # the image client is under way
        busy = tabular(frames[a.batches:])
        stop.set()
        th.join()
        spent = time.perf_counter() - t0
    m_alone, m_busy = statistics.median(alone), statistics.median(busy)
    print(f"tabular batch of {a.rows} rows, median wall: alone {m_alone * 1000:.1f} ms, "
          f"with image ingest {m_busy * 1000:.1f} ms, ratio {m_busy / m_alone:.2f}")
    print(f"image ingest meanwhile: {sent[0]} images in {spent:.1f} s "
          f"({sent[0] / spent:.0f} images/s, 224x224 JPEG, batches of {len(images)})")


if __name__ == "__main__":
    main()
