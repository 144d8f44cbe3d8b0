"""A client retrying a batch with a bad row: rejected again, stored and counted once."""

from __future__ import annotations

import time
import uuid

from tests.server.conftest import json_rows, register_model, scored_frame


def test_retried_bad_row_is_quarantined_once(http) -> None:
    name = f"qretry-{uuid.uuid4().hex[:6]}"
    register_model(http, name, scored_frame(1000))
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
