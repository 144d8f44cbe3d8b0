"""A client retrying a batch with a bad row: rejected again, stored and counted once."""

from __future__ import annotations

import io
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from tests.server.conftest import HINTS, json_rows, scored_frame


def test_retried_bad_row_is_quarantined_once(http) -> None:
    name = f"qretry-{uuid.uuid4().hex[:6]}"
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(scored_frame(1000), preserve_index=False), buf)
    http.post("/models", json={"name": name}).raise_for_status()
    http.put(f"/models/{name}/versions/v1/reference", content=buf.getvalue(), params=HINTS,
             headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()
    rows = json_rows(scored_frame(20, seed=2), time.time() - 120)
    rows[4]["features"]["x"] = "corrupt"
    for attempt in range(3):
        body = http.post(f"/models/{name}/predictions", json=rows).json()
        assert body["quarantined"] == 1 and body["errors"][0]["prediction_id"] == "p4"
        assert body["accepted"] == (19 if attempt == 0 else 0)
    assert len(http.get(f"/models/{name}/quarantine").json()) == 1
    q = http.get(f"/models/{name}/metrics", params={"metric": "quality", "start": "-1h"}).json()
    assert q["points"][0]["value"]["quarantined"] == 1
    # A different problem with the same id is a new record.
    rows[4]["features"]["x"] = [1, 2]
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    assert len(http.get(f"/models/{name}/quarantine").json()) == 2
