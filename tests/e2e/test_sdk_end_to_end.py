"""The SDK against the real server on SQLite and PostgreSQL: the whole monitoring loop.

Register a model, upload its reference, log predictions from every input kind the SDK
takes, join labels late, read the metrics back and check them against the data; then a
serving loop with the BackgroundLogger, including the server going away and coming back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

import aiwarden
from tests.server.conftest import HINTS, json_rows, scored_frame
from tests.server.live import ThreadServer, settings_for

HOUR = 3600


@pytest.fixture
def client(server: ThreadServer) -> Iterator[aiwarden.Client]:
    with aiwarden.Client(server.url, timeout=60) as c:
        yield c


def _name(kind: str) -> str:
    return f"e2e-{kind}-{uuid.uuid4().hex[:8]}"


def _register(client: aiwarden.Client, name: str) -> None:
    assert client.create_model(name, task="binary")["name"] == name
    out = client.upload_reference(name, "v1", scored_frame(3000, seed=0), **HINTS)
    assert (out["rows"], out["columns"]) == (3000, 5)


def _flat(df: pd.DataFrame, prefix: str, t0: float) -> pd.DataFrame:
    """Bulk layout: prediction_id, timestamp, latency_ms and the schema's columns (no target)."""
    return pd.DataFrame({"prediction_id": [f"{prefix}{i}" for i in range(len(df))],
                         "timestamp": t0 + 2.0 * pd.RangeIndex(len(df)),
                         "latency_ms": 4.0, "x": df.x.to_numpy(), "c": df.c.to_numpy(),
                         "score": df.score.to_numpy(), "pred": df.pred.to_numpy()})


def _point(client: aiwarden.Client, name: str, metric: str, t0: float, t1: float) -> dict:
    out = client.metrics(name, metric, start=t0, end=t1)
    assert len(out["points"]) == 1
    return out["points"][0]


def test_batch_ingest_late_labels_and_queries(client: aiwarden.Client) -> None:
    name = _name("batch")
    _register(client, name)
    assert name in [m["name"] for m in client.list_models()]
    a0 = (time.time() // HOUR - 4) * HOUR        # window A: like the reference
    b0 = a0 + HOUR                                # window B: x shifted by 1.5 sd
    q0 = a0 + 2 * HOUR                            # window Q: a quarantined row
    base = scored_frame(1200, seed=1)
    parts = [base.iloc[i:i + 300].reset_index(drop=True) for i in range(0, 1200, 300)]

    frame = _flat(parts[0], "pd", a0)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    answers = [
        client.log_predictions(name, frame),
        client.log_predictions(name, pl.from_pandas(_flat(parts[1], "pl", a0 + 1))),
        client.log_predictions(name, pa.Table.from_pandas(_flat(parts[2], "pa", a0 + 600),
                                                          preserve_index=False)),
        client.log_predictions(name, json_rows(parts[3], a0 + 1200, prefix="js")),
    ]
    for ans in answers:
        assert ans == {"received": 300, "accepted": 300, "duplicates": 0, "quarantined": 0,
                       "labels_joined": 0}
    shifted = scored_frame(300, seed=2, shift=1.5)
    assert client.log_predictions(name, _flat(shifted, "sh", b0))["accepted"] == 300

    # labels arrive late, as a frame and as dicts, for 700 of the 1,200 window-A rows
    labelled = pd.concat([parts[0].assign(pid=[f"pd{i}" for i in range(300)]),
                          parts[1].assign(pid=[f"pl{i}" for i in range(300)]),
                          parts[3].head(100).assign(pid=[f"js{i}" for i in range(100)])])
    first = client.log_labels(name, pd.DataFrame({"prediction_id": labelled.pid[:600],
                                                  "label": labelled.y[:600]}))
    second = client.log_labels(name, [{"prediction_id": p, "label": int(y)}
                                      for p, y in zip(labelled.pid[600:], labelled.y[600:],
                                                      strict=True)])
    assert (first["joined"], first["pending"]) == (600, 0)
    assert (second["joined"], second["pending"]) == (100, 0)
    again = client.log_labels(name, [{"prediction_id": "pd0", "label": 1 - int(parts[0].y[0])}])
    assert again["duplicates"] == 1  # the first label wins

    vol_a = _point(client, name, "volume", a0, b0)
    assert vol_a["value"] == {"rows": 1200, "quarantined": 0, "labels": 700}
    assert _point(client, name, "volume", b0, q0)["value"]["rows"] == 300

    perf = _point(client, name, "performance", a0, b0)["value"]
    assert perf["labels"] == 700
    y, pred, score = labelled.y.to_numpy(), labelled.pred.to_numpy(), labelled.score.to_numpy()
    m = perf["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=0.01)
    assert _point(client, name, "performance", b0, q0)["value"] == {"labels": 0,
                                                                     "metrics": None}

    drift_a = _point(client, name, "drift", a0, b0)["value"]
    drift_b = _point(client, name, "drift", b0, q0)["value"]
    assert drift_a["n_current"] == 1200 and "x" not in drift_a["drifted_features"]
    assert drift_b["n_current"] == 300 and "x" in drift_b["drifted_features"]
    assert drift_b["columns"]["x"]["drifted"] is True

    frame_out = client.metrics_frame(name, "volume", start=a0, end=q0, step="1h")
    assert frame_out["rows"].tolist() == [1200, 300]
    assert frame_out["labels"].tolist() == [700, 0]
    assert frame_out["start"].tolist() == [pd.Timestamp(a0, unit="s", tz="UTC"),
                                           pd.Timestamp(b0, unit="s", tz="UTC")]

    cmp = client.compare(name, start=b0, end=q0, baseline_start=a0, baseline_end=b0)
    assert cmp["window"]["rows"] == 300 and cmp["baseline"]["rows"] == 1200
    assert "x" in cmp["drift"]["drifted_features"]
    assert "x" not in client.compare(name, start=a0, end=b0)["drift"]["drifted_features"]

    # a retried batch is counted once
    dup = client.log_predictions(name, json_rows(parts[3], a0 + 1200, prefix="js"))
    assert (dup["accepted"], dup["duplicates"]) == (0, 300)
    assert _point(client, name, "volume", a0, b0)["value"]["rows"] == 1200

    bad = json_rows(base.head(2), q0, prefix="q")
    bad[0]["features"]["x"] = "abc"
    res = client.log_predictions(name, bad)
    assert (res["accepted"], res["quarantined"]) == (1, 1)
    assert res["errors"][0]["prediction_id"] == "q0"
    held = client.quarantine(name)
    assert [(h["prediction_id"], h["field"]) for h in held] == [("q0", "features.x")]
    assert "abc" in held[0]["reason"]
    assert _point(client, name, "volume", q0, q0 + HOUR)["value"] == {
        "rows": 1, "quarantined": 1, "labels": 0}

    events = client.export_events(name, a0, q0 + HOUR)
    accepted = sum(a["accepted"] for a in answers) + 300 + res["accepted"]
    assert events.num_rows == accepted == 1501
    ids = events.column("prediction_id").to_pylist()
    assert len(set(ids)) == len(ids) and "q0" not in ids and "q1" in ids
    got = {p: lab for p, lab in zip(ids, events.column("label").to_pylist(), strict=True)
           if lab is not None}
    assert got == {p: str(v) for p, v in zip(labelled.pid, labelled.y, strict=True)}


def test_background_logger_in_a_serving_loop(client: aiwarden.Client) -> None:
    name = _name("serve")
    _register(client, name)
    traffic = scored_frame(5000, seed=3)
    labels: dict[str, int] = {}
    started = time.perf_counter()
    with client.logger(name, batch_size=500, flush_interval=0.05) as wl:
        for i, row in enumerate(traffic.itertuples()):
            assert wl.log(f"s{i}", {"x": row.x, "c": row.c}, prediction=row.pred,
                          scores=row.score, latency_ms=2.5)
            if i % 5 == 0 and i >= 100:  # ground truth for a request 100 calls ago
                labels[f"s{i - 100}"] = int(traffic.y[i - 100])
                assert wl.log_label(f"s{i - 100}", labels[f"s{i - 100}"])
        loop = time.perf_counter() - started
        assert wl.flush(60)
        stats = wl.stats()
    assert loop < 10, f"5,000 log() calls took {loop:.1f} s: logging blocks the caller"
    n = 5000 + len(labels)
    assert stats == {"accepted": n, "sent": n, "dropped": 0, "failed": 0, "retries": 0,
                     "throttled": 0, "quarantined": 0, "queued": 0, "last_error": None}
    vol = client.metrics(name, "volume")["points"][0]["value"]
    assert len(labels) == 980
    assert vol == {"rows": 5000, "quarantined": 0, "labels": 980}
    perf = client.metrics(name, "performance")["points"][0]["value"]
    ids = [int(p[1:]) for p in labels]
    assert perf["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(traffic.y[ids], traffic.pred[ids]), abs=1e-12)


def test_logger_survives_server_restart_without_double_counting(
        db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    name = _name("restart")
    rows = scored_frame(3500, seed=4)

    def log(wl: aiwarden.BackgroundLogger, ids: range, prefix: str = "r") -> list[bool]:
        return [wl.log(f"{prefix}{i}", {"x": rows.x[i], "c": rows.c[i]},
                       prediction=rows.pred[i], scores=rows.score[i]) for i in ids]

    first = ThreadServer(settings).__enter__()
    client = aiwarden.Client(first.url, timeout=5)
    retrying = client.logger(name, batch_size=100, flush_interval=0.02, max_queue=1500,
                             max_retries=200, backoff=0.02, max_backoff=0.1)
    giving_up = client.logger(name, batch_size=100, flush_interval=0.02, max_retries=0)
    try:
        _register(client, name)
        assert all(log(retrying, range(500)))
        assert retrying.flush(30)
        assert retrying.stats()["sent"] == 500
        first.__exit__(None, None, None)  # the monitoring server goes away mid-stream

        started = time.perf_counter()
        kept = log(retrying, range(500, 3500))
        elapsed = time.perf_counter() - started
        assert elapsed < 5, f"log() blocked for {elapsed:.1f} s while the server was down"
        assert kept == [True] * 1500 + [False] * 1500  # queue bound: later calls drop
        assert not retrying.flush(0.5)  # nothing can be delivered, and flush does not hang
        s = retrying.stats()
        assert (s["accepted"], s["sent"], s["dropped"], s["failed"]) == (2000, 500, 1500, 0)
        assert s["queued"] == 1500 and s["retries"] > 0 and s["last_error"]

        assert all(log(giving_up, range(200), prefix="g"))
        assert giving_up.flush(30)
        g = giving_up.stats()
        assert (g["sent"], g["failed"], g["queued"]) == (0, 200, 0)
        assert "Connect" in g["last_error"]

        with ThreadServer(settings):  # back on the same database and port
            assert retrying.flush(60)
            s = retrying.stats()
            assert (s["accepted"], s["sent"], s["failed"], s["queued"]) == (2000, 2000, 0, 0)
            # the application replays what it logged before the outage: counted once
            assert all(log(retrying, range(500)))
            assert retrying.flush(30)
            replay = client.log_predictions(name, [
                {"prediction_id": f"r{i}", "features": {"x": float(rows.x[i]), "c": rows.c[i]},
                 "prediction": int(rows.pred[i]), "scores": float(rows.score[i])}
                for i in range(500, 2000)])
            assert (replay["accepted"], replay["duplicates"]) == (0, 1500)
            vol = client.metrics(name, "volume")["points"][0]["value"]
            assert vol["rows"] == 2000
            events = client.export_events(name, time.time() - HOUR, time.time() + 60)
            assert sorted(events.column("prediction_id").to_pylist()) == sorted(
                f"r{i}" for i in range(2000))
    finally:
        if first.thread.is_alive():
            first.__exit__(None, None, None)
        retrying.close(1)
        giving_up.close(1)
        client.close()


def test_a_dataframe_with_one_corrupted_value_quarantines_only_that_row(
        client: aiwarden.Client) -> None:
    name = _name("mixed")
    _register(client, name)
    df = scored_frame(50, seed=8).drop(columns=["y"])
    df.insert(0, "prediction_id", [f"m{i}" for i in range(len(df))])
    df["timestamp"] = time.time() - 60
    df["x"] = df["x"].astype(object)
    df.loc[7, "x"] = "N/A"  # pyarrow cannot type this column: the SDK sends it as text
    out = client.log_predictions(name, df)
    assert (out["accepted"], out["quarantined"]) == (49, 1)
    assert out["errors"][0]["prediction_id"] == "m7"
