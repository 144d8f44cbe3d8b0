"""A 2xx means committed: kill -9 during sustained ingest, restart, count every row once.

Also: several writers and label updates racing with ingest lose nothing, on both stores.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ProcessServer, database_url


def _register(api: str, name: str) -> None:
    with httpx.Client(base_url=api, timeout=60) as c:
        register_model(c, name, scored_frame(2000))


def _volume(c: httpx.Client, name: str, start: float) -> int:
    r = c.get(f"/models/{name}/metrics", params={"metric": "volume", "start": start - 3600})
    r.raise_for_status()
    return int(r.json()["points"][0]["value"]["rows"])


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_during_ingest_loses_no_acknowledged_row_and_counts_none_twice(
        kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        srv = ProcessServer(url, tmp_path).start()
        name = f"durable-{uuid.uuid4().hex[:6]}"
        api = f"{srv.url}/api/v1"
        _register(api, name)
        start = time.time()
        batches = [json_rows(scored_frame(100, seed=i), start - 600, prefix=f"b{i}-")
                   for i in range(400)]
        acked: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=api, timeout=10) as c:
                for i, rows in enumerate(batches):
                    if stop.is_set():
                        return
                    try:
                        r = c.post(f"/models/{name}/predictions", json=rows)
                    except httpx.HTTPError:
                        return  # the server died under us: this batch was not acknowledged
                    if r.status_code == 200:
                        acked.append(i)

        writer = threading.Thread(target=load)
        writer.start()
        deadline = time.monotonic() + 60
        while len(acked) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill()  # SIGKILL, mid-stream
        stop.set()
        writer.join(timeout=30)
        assert len(acked) >= 15, "the load did not get going before the kill"
        assert len(acked) < len(batches), "the kill came after the load had finished"

        srv2 = ProcessServer(url, tmp_path, port=srv.port).start()
        try:
            with httpx.Client(base_url=api, timeout=60) as c:
                r = c.get(f"/models/{name}/events", params={"start": start - 3600})
                stored = set(pq.read_table(io.BytesIO(r.content)).column(
                    "prediction_id").to_pylist())
                want = {row["prediction_id"] for i in acked for row in batches[i]}
                assert want <= stored, f"{len(want - stored)} acknowledged rows were lost"
                # Batches are all-or-nothing: nothing half-written survived the kill.
                counts = {}
                for pid in stored:
                    counts[pid.split("-")[0]] = counts.get(pid.split("-")[0], 0) + 1
                assert set(counts.values()) == {100}
                # The client retries everything it sent; each row counts exactly once.
                for rows in batches[: max(acked) + 2]:
                    c.post(f"/models/{name}/predictions", json=rows).raise_for_status()
                expected = 100 * (max(acked) + 2)
                assert _volume(c, name, start) == expected
                r = c.get(f"/models/{name}/events", params={"start": start - 3600})
                assert pq.read_table(io.BytesIO(r.content)).num_rows == expected
        finally:
            srv2.stop()


def test_concurrent_writers_and_racing_labels_lose_nothing(server, http) -> None:
    """Four writers with overlapping ids and two label senders racing them."""
    name = f"race-{uuid.uuid4().hex[:6]}"
    _register(f"{server.url}/api/v1", name)
    start = time.time()
    frame = scored_frame(4000, seed=3)
    rows = json_rows(frame, start - 1800, prefix="r", spacing=0.3)
    labels = [{"prediction_id": r["prediction_id"], "label": int(y)}
              for r, y in zip(rows, frame["y"], strict=True)]
    chunks = [rows[i:i + 100] for i in range(0, len(rows), 100)]
    errors: list[str] = []

    def send(c: httpx.Client, path: str, body: list[dict]) -> None:
        # A 429 stored nothing and says when to retry (the contract the SDK logger follows):
        # a loaded machine answers it when the model's write lock is busy past the wait
        for _ in range(120):
            r = c.post(path, json=body)
            if r.status_code != 429:
                break
            time.sleep(min(float(r.headers.get("retry-after", "1")), 2.0))
        if r.status_code != 200:
            errors.append(r.text)

    def writer(offset: int) -> None:
        # Each writer sends every other chunk from its own offset: chunks overlap pairwise.
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=120) as c:
            for chunk in chunks[offset::2]:
                send(c, f"/models/{name}/predictions", chunk)

    def labeller(part: list[dict]) -> None:
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=120) as c:
            for i in range(0, len(part), 150):
                send(c, f"/models/{name}/labels", part[i:i + 150])

    threads = [threading.Thread(target=writer, args=(k % 2,)) for k in range(4)]
    threads += [threading.Thread(target=labeller, args=(labels[k::2],)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    model = http.get(f"/models/{name}").json()
    assert model["predictions"] == len(rows)
    assert model["labels_pending"] == 0, "a label raced past its prediction and was left behind"
    assert _volume(http, name, start) == len(rows)
    perf = http.get(f"/models/{name}/metrics", params={
        "metric": "performance", "start": start - 3600}).json()["points"][0]["value"]
    assert perf["labels"] == len(rows)
    acc = float((frame["pred"] == frame["y"]).mean())
    assert perf["metrics"]["accuracy"] == pytest.approx(acc, abs=1e-12)
