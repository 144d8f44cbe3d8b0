"""Logged rows found by prediction id: the values accepted, their version and label, in
the order asked, across batches and versions, with unknown ids named."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.errors import DataError
from aiwarden.monitoring import event_lookup

HINTS = {"target": "y", "prediction": "pred", "scores": "score"}


def _reference(n: int = 400) -> pa.Table:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-2 * x))
    return pa.Table.from_pandas(pd.DataFrame({
        "x": x, "c": rng.choice(["a", "b"], n), "score": score,
        "pred": (score > 0.5).astype(int), "y": (rng.random(n) < score).astype(int)}),
        preserve_index=False)


def _rows(prefix: str, n: int, t0: float, version: str) -> list[dict[str, Any]]:
    return [{"prediction_id": f"{prefix}{i}", "timestamp": t0 + i, "version": version,
             "features": {"x": i / 10, "c": "ab"[i % 2]}, "prediction": i % 2,
             "scores": 0.25 + i / 100} for i in range(n)]


def test_rows_come_back_as_accepted_in_the_order_asked(monitor: Any) -> None:
    name = f"lookup-{uuid.uuid4().hex[:8]}"
    monitor.create_model(name)
    for v in ("v1", "v2"):
        monitor.upload_reference(name, v, _reference(), HINTS)
    t0 = time.time() - 3600
    assert monitor.log_predictions(name, _rows("a", 5, t0, "v1")).accepted == 5
    assert monitor.log_predictions(name, _rows("b", 5, t0 + 60, "v2")).accepted == 5
    assert monitor.log_labels(name, [{"prediction_id": "b3", "label": 1}]).joined == 1

    got = monitor.events_by_id(name, ["b3", "nope", "a1", "b3", "a4"])
    t = got["table"].to_pandas()
    assert list(t.prediction_id) == ["b3", "a1", "a4"]  # asked order, once each
    assert got["versions"] == ["v2", "v1", "v1"]
    assert got["missing"] == ["nope"]
    assert t.x.tolist() == pytest.approx([0.3, 0.1, 0.4])
    assert t.c.tolist() == ["b", "b", "a"]
    assert t.timestamp.tolist() == pytest.approx([t0 + 63, t0 + 1, t0 + 4])
    assert got["table"].column("label").to_pylist() == ["1", None, None]


def test_unknown_ids_only_and_the_lookup_bound(monitor: Any) -> None:
    name = f"lookup-{uuid.uuid4().hex[:8]}"
    monitor.create_model(name)
    got = monitor.events_by_id(name, ["x", "y"])
    assert got["table"].num_rows == 0 and got["missing"] == ["x", "y"]
    with pytest.raises(DataError) as err:
        monitor.events_by_id(name, [str(i) for i in range(event_lookup.MAX_IDS + 1)])
    assert err.value.field == "prediction_ids"
