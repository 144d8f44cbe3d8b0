"""What is sent is what is stored and exported, field by field, on every ingest path
(issue 11): REST JSON rows (nested and flat), Arrow and Parquet bodies (flat and nested),
CLI files (json, jsonl, csv, parquet), the SDK client and its BackgroundLogger, and the
gateway's own prediction events; on SQLite and PostgreSQL against a live server.

Then one regression test per defect of issue 11 that this part fixes: mixed JSON types in
one column (3), one deeply nested value (4), nested rows from a CLI file (12), a version
registered without a reference (13), bulk files without ``prediction_id`` and with
unknown columns (14).
"""

from __future__ import annotations

import io
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiwarden.monitoring.rows import concat_stored
from aiwarden.sdk import Client
from aiwarden.sdk._payload import to_ipc, to_parquet
from tests.server.test_cli import cli, ok, one_line_error

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
HINTS = {"target": "y", "prediction": "pred", "scores": "score", "segments": "region"}
N = 12


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def _reference(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b", "c"], n),
                         "region": rng.choice(["eu", "us"], n), "score": score,
                         "pred": (score > 0.5).astype(int),
                         "y": (rng.random(n) < score).astype(int)})


def _model(http: httpx.Client, version: str = "v1") -> str:
    name = f"int-{uuid.uuid4().hex[:10]}"
    assert http.post("/models", json={"name": name}).status_code == 201
    r = http.put(f"/models/{name}/versions/{version}/reference", params=HINTS,
                 content=to_parquet(pa.Table.from_pandas(_reference(), preserve_index=False)),
                 headers={"content-type": PARQUET})
    assert r.status_code == 201, r.text
    return name


@pytest.fixture(scope="module")
def model(server: Any) -> str:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        return _model(http)


def _sent(prefix: str, t0: float, seed: int) -> pd.DataFrame:
    """N flat rows as a client holds them: ids, times, features, tag, outputs, latency."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, N)
    score = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({"prediction_id": [f"{prefix}-{i}" for i in range(N)],
                         "timestamp": t0 + np.arange(N) * 1.25,
                         "x": x, "c": rng.choice(["a", "b", "c"], N),
                         "region": rng.choice(["eu", "us"], N),
                         "pred": (score > 0.5).astype(int), "score": score,
                         "latency_ms": rng.uniform(1, 20, N).round(3)})


def _nested_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """docs/api.md's nested row form."""
    return [{"prediction_id": r.prediction_id, "timestamp": float(r.timestamp),
             "features": {"x": float(r.x), "c": r.c}, "prediction": int(r.pred),
             "scores": float(r.score), "tags": {"region": r.region},
             "latency_ms": float(r.latency_ms)} for r in df.itertuples()]


def _flat_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def _flat_table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _nested_table(df: pd.DataFrame) -> pa.Table:
    """The nested form as Arrow: struct columns features/tags, prediction, scores."""
    return pa.table({
        "prediction_id": df.prediction_id.tolist(), "timestamp": df.timestamp.to_numpy(),
        "features": pa.StructArray.from_arrays(
            [pa.array(df.x.to_numpy()), pa.array(df.c.tolist())], ["x", "c"]),
        "tags": pa.StructArray.from_arrays([pa.array(df.region.tolist())], ["region"]),
        "prediction": df.pred.to_numpy(), "scores": df.score.to_numpy(),
        "latency_ms": df.latency_ms.to_numpy()})


def _dotted(df: pd.DataFrame) -> pd.DataFrame:
    """The nested form as flat file columns: features.x, tags.region, prediction, scores."""
    return df.rename(columns={"x": "features.x", "c": "features.c", "region": "tags.region",
                              "pred": "prediction", "score": "scores"})


# ------------------------------------------------------------------------ the paths
def _post(server: Any, model: str, body: Any, media: str | None = None) -> dict[str, Any]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        if media is None:
            r = http.post(f"/models/{model}/predictions", json=body)
        else:
            r = http.post(f"/models/{model}/predictions", content=body,
                          headers={"content-type": media})
    assert r.status_code == 200, r.text
    return r.json()


def _cli_file(server: Any, model: str, tmp: Path, name: str,
              write: Callable[[Path], None]) -> dict[str, Any]:
    path = tmp / name
    write(path)
    out = ok(cli("log", "predictions", model, str(path), "--url", server.url))
    assert out.startswith(f"predictions from {path}: received {N}, accepted {N}, "
                          "duplicates 0, quarantined 0"), out
    assert "ignored" not in out, out
    return {"accepted": N, "quarantined": 0}


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _logger(server: Any, model: str, df: pd.DataFrame) -> dict[str, Any]:
    with Client(server.url) as c:
        log = c.logger(model, flush_interval=0.05)
        for r in df.itertuples():
            assert log.log(r.prediction_id, {"x": float(r.x), "c": r.c}, prediction=int(r.pred),
                           scores=float(r.score), timestamp=float(r.timestamp),
                           latency_ms=float(r.latency_ms), tags={"region": r.region})
        assert log.flush(timeout=60)
        stats = log.stats()
        log.close()
    assert stats["sent"] == N and stats["failed"] == 0 and stats["quarantined"] == 0, stats
    return {"accepted": N, "quarantined": 0}


def _via_client(server: Any, model: str, data: Any) -> dict[str, Any]:
    with Client(server.url) as c:
        return c.log_predictions(model, data)


PATHS: dict[str, Callable[[Any, str, pd.DataFrame, Path], dict[str, Any]]] = {
    "rest-json-nested": lambda s, m, df, t: _post(s, m, _nested_rows(df)),
    "rest-json-flat": lambda s, m, df, t: _post(s, m, _flat_rows(df)),
    "rest-arrow-flat": lambda s, m, df, t: _post(s, m, to_ipc(_flat_table(df)), ARROW),
    "rest-arrow-nested": lambda s, m, df, t: _post(s, m, to_ipc(_nested_table(df)), ARROW),
    "rest-parquet-flat": lambda s, m, df, t: _post(s, m, to_parquet(_flat_table(df)), PARQUET),
    "rest-parquet-nested": lambda s, m, df, t: _post(s, m, to_parquet(_nested_table(df)),
                                                     PARQUET),
    "cli-json": lambda s, m, df, t: _cli_file(
        s, m, t, "p.json", lambda p: p.write_text(json.dumps(_nested_rows(df)))),
    "cli-jsonl": lambda s, m, df, t: _cli_file(
        s, m, t, "p.jsonl", lambda p: p.write_text(_jsonl(_nested_rows(df)))),
    "cli-csv": lambda s, m, df, t: _cli_file(
        s, m, t, "p.csv", lambda p: df.to_csv(p, index=False)),
    "cli-csv-dotted": lambda s, m, df, t: _cli_file(
        s, m, t, "d.csv", lambda p: _dotted(df).to_csv(p, index=False)),
    "cli-parquet": lambda s, m, df, t: _cli_file(
        s, m, t, "p.parquet", lambda p: pq.write_table(_flat_table(df), p)),
    "cli-parquet-nested": lambda s, m, df, t: _cli_file(
        s, m, t, "n.parquet", lambda p: pq.write_table(_nested_table(df), p)),
    "sdk-frame": lambda s, m, df, t: _via_client(s, m, df),
    "sdk-rows": lambda s, m, df, t: _via_client(s, m, _nested_rows(df)),
    "sdk-logger": lambda s, m, df, t: _logger(s, m, df),
}


def _export(server: Any, model: str, t0: float, t1: float) -> pd.DataFrame:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        r = http.get(f"/models/{model}/events", params={"start": t0, "end": t1})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == PARQUET
    return pq.read_table(io.BytesIO(r.content)).to_pandas()


def _same(stored: Any, sent: Any) -> bool:
    if isinstance(sent, float):
        return isinstance(stored, float) and (stored == sent or (math.isnan(stored)
                                                                 and math.isnan(sent)))
    return type(stored) is type(sent) and stored == sent


@pytest.mark.parametrize("path", sorted(PATHS))
def test_what_is_sent_is_stored_and_exported_field_by_field(
        server: Any, model: str, path: str, tmp_path: Path) -> None:
    t0 = float(int(time.time()) - 3 * 3600 + sorted(PATHS).index(path) * 60)
    df = _sent(path, t0, seed=sorted(PATHS).index(path))
    ans = PATHS[path](server, model, df, tmp_path)
    assert ans["accepted"] == N and ans["quarantined"] == 0, ans
    assert not ans.get("ignored_columns"), ans
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        labels = [{"prediction_id": p, "label": int(i % 2)} for i, p in
                  enumerate(df.prediction_id)]
        assert http.post(f"/models/{model}/labels", json=labels).json()["joined"] == N
    out = _export(server, model, t0 - 1, t0 + N * 2)
    out = out[out.prediction_id.str.startswith(f"{path}-")].set_index("prediction_id")
    assert sorted(out.index) == sorted(df.prediction_id)
    for i, r in enumerate(df.itertuples()):
        row = out.loc[r.prediction_id]
        expected = {"timestamp": float(r.timestamp), "version": "v1", "x": float(r.x),
                    "c": r.c, "region": r.region, "pred": str(int(r.pred)),
                    "score": float(r.score), "latency_ms": float(r.latency_ms),
                    "label": str(i % 2)}
        got = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in expected}
        for k, v in expected.items():
            assert _same(got[k], v), (path, r.prediction_id, k, got[k], v)
        assert pd.isna(row["error"])
    assert set(out.columns) == {"timestamp", "version", "latency_ms", "error", "x", "c",
                                "region", "pred", "score", "label"}


def test_gateway_events_are_stored_as_served(server: Any, client: Client) -> None:
    """The gateway's own events: features as requested, prediction and score as answered."""
    from tests.gateway.models import FEATURES, fitted, frame, rows

    name = f"gw-{uuid.uuid4().hex[:8]}"
    model = fitted(seed=0)
    version = client.register_version(name, model)["version"]
    x, _ = frame(500, seed=3)
    client.upload_reference(name, version, x.assign(prediction=model.predict(x),
                                                    score=model.predict_proba(x)[:, 1]),
                            prediction="prediction", scores="score")
    client.promote(name, version, reason="serve it")
    data = rows(15, seed=5)
    t0 = time.time() - 1
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        answers = []
        for i, r in enumerate(data):
            resp = http.post(f"/models/{name}/predict",
                             json={"features": r, "prediction_id": f"g{i}"})
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())
        assert http.post(f"/models/{name}/gateway/flush").json()["flushed"]
        assert http.get(f"/models/{name}/quarantine").json() == []
    out = _export(server, name, t0, time.time() + 1).set_index("prediction_id")
    assert sorted(out.index) == sorted(f"g{i}" for i in range(15))
    want = pd.DataFrame(data)[FEATURES]
    for i, r in enumerate(data):
        row = out.loc[f"g{i}"]
        for f in FEATURES:
            assert _same(row[f].item(), float(r[f])), (i, f)
        assert row["prediction"] == str(answers[i]["prediction"])
        assert row["prediction"] == str(model.predict(want.iloc[[i]])[0])
        assert _same(row["score"].item(), float(answers[i]["scores"]["1"]))
        assert row["version"] == version and row["latency_ms"] > 0


# ----------------------------------------------------------- regressions, issue 11
def test_3_mixed_json_types_are_typed_by_the_schema_and_reads_answer(
        server: Any, model: str) -> None:
    t0 = time.time() - 7200
    first = {"prediction_id": "mix-1", "timestamp": t0, "features": {"x": 0.5, "c": "a"},
             "prediction": 1, "scores": 0.7, "tags": {"region": "eu"}}
    second = {**first, "prediction_id": "mix-2", "prediction": "1", "scores": "0.25",
              "features": {"x": "1.5", "c": 2}, "tags": {"region": True}}
    third = {**first, "prediction_id": "mix-3", "prediction": 1.0}
    for row in (first, second, third):
        ans = _post(server, model, [row])
        assert (ans["accepted"], ans["quarantined"]) == (1, 0), ans
    bad = {**first, "prediction_id": "mix-4", "prediction": {"class": 1}, "scores": "high"}
    ans = _post(server, model, [bad])
    assert ans["quarantined"] == 1
    assert ans["errors"][0]["field"] in ("prediction", "scores.score")
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        labels = [{"prediction_id": "mix-1", "label": 1}, {"prediction_id": "mix-2",
                                                          "label": "1"},
                  {"prediction_id": "mix-3", "label": 1.0}]
        r = http.post(f"/models/{model}/labels", json=labels)
        assert r.status_code == 200 and r.json()["joined"] == 3, r.text
        assert http.get(f"/models/{model}/rca",
                        params={"start": t0 - 60, "end": t0 + 60}).status_code == 200
        q = http.get(f"/models/{model}/quarantine").json()
        assert {e["prediction_id"]: e["field"] for e in q}["mix-4"] in ("prediction",
                                                                        "scores.score")
    out = _export(server, model, t0 - 1, t0 + 1).set_index("prediction_id")
    assert out.loc["mix-1", "pred"] == out.loc["mix-2", "pred"] == out.loc["mix-3", "pred"] \
        == "1"
    assert out.loc["mix-2", "x"] == 1.5 and out.loc["mix-2", "c"] == "2"
    assert out.loc["mix-2", "region"] == "true" and out.loc["mix-2", "score"] == 0.25
    assert list(out.label) == ["1", "1", "1"]


def test_3_batches_stored_with_mixed_types_still_read() -> None:
    """Databases written before typing at ingest hold int64 in one batch and text in
    another: reading them promotes instead of failing."""
    ints = pa.table({"prediction_id": ["a"], "pred": pa.array([1], pa.int64()),
                     "score": pa.array([1], pa.int64())})
    text = pa.table({"prediction_id": ["b"], "pred": ["1"], "score": pa.array([0.5])})
    both = concat_stored([ints, text])
    assert both.column("pred").to_pylist() == ["1", "1"]
    assert both.schema.field("score").type == pa.float64()
    assert both.column("score").to_pylist() == [1.0, 0.5]


def test_3_a_database_written_with_mixed_types_reads_exports_and_joins(monitor: Any) -> None:
    """A batch stored before typing at ingest (prediction as int64) next to a typed one:
    the export, the label join spanning both and the RCA read answer."""
    from aiwarden.monitoring.ingest import _insert_batch, _Prepared
    from aiwarden.store import ids as id_store
    from aiwarden.store import models_repo as repo
    from aiwarden.tabular_io import write_parquet

    name = f"legacy-{uuid.uuid4().hex[:8]}"
    monitor.create_model(name)
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(_reference(),
                                                              preserve_index=False), HINTS)
    t0 = time.time() - 600
    ans = monitor.log_predictions(name, [{"prediction_id": "new-1", "timestamp": t0,
                                          "features": {"x": 0.1, "c": "a"}, "prediction": "1",
                                          "scores": 0.6, "tags": {"region": "eu"}}])
    assert ans.accepted == 1
    legacy = pa.table({"prediction_id": ["old-1"], "timestamp": [t0 + 1.0],
                       "version": ["v1"], "latency_ms": pa.nulls(1, pa.float64()),
                       "error": pa.nulls(1, pa.string()), "x": [0.2], "c": [7],
                       "region": ["us"], "score": [0.4], "pred": pa.array([0], pa.int64())})
    with monitor.db.write() as conn:
        m = repo.get_model(conn, name)
        v = repo.get_version(conn, m, "v1")
        batch_id = _insert_batch(conn, m.id, _Prepared(np.arange(1), legacy,
                                                       write_parquet(legacy)), t0)
        id_store.insert(conn, monitor.db, m.id, v.id, np.array(["old-1"], dtype=object),
                        np.array([t0 + 1.0]), batch_id)
    out = monitor.export_events(name, start=t0 - 1, end=t0 + 5).to_pandas()
    assert list(out.pred) == ["1", "0"] and list(out.c) == ["a", "7"]
    res = monitor.log_labels(name, [{"prediction_id": "new-1", "label": 1},
                                    {"prediction_id": "old-1", "label": 0}])
    assert res.joined == 2 and res.rejected == 0


def test_4_a_deeply_nested_value_quarantines_its_row_and_keeps_the_others(
        server: Any, model: str) -> None:
    deep: Any = 1
    for _ in range(400):
        deep = [deep]
    t0 = time.time() - 7000
    good = [{"prediction_id": f"deep-ok-{i}", "timestamp": t0 + i,
             "features": {"x": 0.1 * i, "c": "b"}, "prediction": 0, "scores": 0.2,
             "tags": {"region": "us"}} for i in range(3)]
    bad = {**good[0], "prediction_id": "deep-bad", "features": {"x": deep, "c": "b"}}
    huge = {**good[0], "prediction_id": "huge-bad", "features": {"x": "z" * 200_000, "c": "a"}}
    ans = _post(server, model, [good[0], bad, good[1], huge, good[2]])
    assert (ans["accepted"], ans["quarantined"]) == (3, 2), ans
    assert {(e["prediction_id"], e["field"]) for e in ans["errors"]} == {
        ("deep-bad", "features.x"), ("huge-bad", "features.x")}
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        q = {e["prediction_id"]: e for e in http.get(f"/models/{model}/quarantine").json()}
    assert "nested deeper than 32 levels" in q["deep-bad"]["payload"]
    assert len(q["huge-bad"]["payload"]) < 70_000
    assert json.loads(q["huge-bad"]["payload"])["truncated"].startswith("200")
    out = _export(server, model, t0 - 1, t0 + 5)
    assert sorted(out.prediction_id) == [f"deep-ok-{i}" for i in range(3)]


def test_12_a_file_matching_no_schema_column_is_refused_not_stored_as_nulls(
        server: Any, model: str, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    pd.DataFrame({"prediction_id": ["w1", "w2"], "feat_a": [1, 2], "out": [0, 1]}).to_csv(
        path, index=False)
    line = one_line_error(cli("log", "predictions", model, str(path), "--url", server.url),
                          "log")
    assert "None of the columns sent (feat_a, out)" in line and "x, c" in line
    rows = tmp_path / "wrong.json"
    rows.write_text(json.dumps([{"prediction_id": "w3", "inputs": {"x": 1}}]))
    line = one_line_error(cli("log", "predictions", model, str(rows), "--url", server.url),
                          "log")
    assert "None of the columns sent (inputs)" in line
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        r = http.post(f"/models/{model}/predictions", json=[{"prediction_id": "w4",
                                                             "inputs": {"x": 1}}])
        assert r.status_code == 422 and r.json()["detail"]["field"] == "features", r.text
        # a row that only reports a failed prediction needs no feature
        ok_err = http.post(f"/models/{model}/predictions",
                           json=[{"prediction_id": "w5", "error": "timeout"}]).json()
        assert ok_err["accepted"] == 1
    out = _export(server, model, time.time() - 7 * 86400, time.time() + 60)
    assert not set(out.prediction_id) & {"w1", "w2", "w3", "w4"}


def test_13_a_version_registered_without_a_reference_inherits_the_serving_one(
        server: Any, client: Client) -> None:
    from tests.gateway.models import FEATURES, fitted, frame, rows

    name = f"inh-{uuid.uuid4().hex[:8]}"
    model = fitted(seed=0)
    v1 = client.register_version(name, model)["version"]
    x, _ = frame(600, seed=3)
    client.upload_reference(name, v1, x.assign(prediction=model.predict(x),
                                               score=model.predict_proba(x)[:, 1]),
                            prediction="prediction", scores="score")
    v2 = client.register_version(name, fitted(seed=1, C=0.01))["version"]  # no reference
    t0 = time.time() - 600
    sent = [{"prediction_id": f"i{i}", "timestamp": t0 + i, "features": r, "prediction": 1,
             "scores": {"1": 0.8}, "latency_ms": 2.0} for i, r in enumerate(rows(40, seed=9))]
    ans = client.log_predictions(name, sent)  # no version: the latest, v2
    assert (ans["accepted"], ans["quarantined"]) == (40, 0), ans
    assert ans["schema_from"] == {v2: v1}
    out = client.export_events(name, t0 - 1, t0 + 60).to_pandas().set_index("prediction_id")
    assert set(out.version) == {v2}
    assert out.loc["i3", FEATURES].tolist() == pytest.approx([rows(40, seed=9)[3][f]
                                                              for f in FEATURES])
    bad = client.log_predictions(name, [{**sent[0], "prediction_id": "i-bad",
                                         "features": {**sent[0]["features"], "x1": "abc"}}])
    assert bad["quarantined"] == 1 and bad["errors"][0]["field"] == "features.x1"
    drift = client.metrics(name, "drift", start=t0 - 60, end=t0 + 120, version=v2)
    assert drift["points"][0]["value"]["n_current"] == 40
    assert drift["reference"]["inherited"] is True
    # the inherited profiles keep their reference: another one is refused, not mixed in
    with pytest.raises(Exception, match="immutable"):
        client.upload_reference(name, v2, x.assign(prediction=1, score=0.5),
                                prediction="prediction", scores="score")


def test_13_every_metric_that_cannot_be_computed_says_why(server: Any,
                                                          client: Client) -> None:
    name = f"noref-{uuid.uuid4().hex[:8]}"
    client.create_model(name)
    client.create_version(name, "1")
    t0 = time.time() - 300
    ans = client.log_predictions(name, [{"prediction_id": "n1", "timestamp": t0,
                                         "features": {"a": 1}, "latency_ms": 3.0}])
    assert ans["accepted"] == 1 and ans["ignored_columns"] == ["features.a"]
    for metric in ("drift", "performance", "estimated_performance", "prediction"):
        point = client.metrics(name, metric, start=t0 - 60, end=t0 + 60)["points"][0]
        assert "has no reference" in point["reason"], (metric, point)
    empty = client.metrics(name, "latency", start=t0 - 7200, end=t0 - 3600)["points"][0]
    assert empty["reason"] == "no events in this window"
    served = client.metrics(name, "latency", start=t0 - 60, end=t0 + 60)["points"][0]
    assert "reason" not in served and served["value"]["count"] == 1


def test_14_bulk_files_without_prediction_id_are_refused_once_and_unknown_columns_named(
        server: Any, model: str) -> None:
    df = _sent("b14", time.time() - 6000, seed=14)
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        for body, media in ((to_parquet(_flat_table(df.drop(columns="prediction_id"))),
                             PARQUET),
                            (to_ipc(_flat_table(df.drop(columns="prediction_id"))), ARROW)):
            r = http.post(f"/models/{model}/predictions", content=body,
                          headers={"content-type": media})
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert detail["field"] == "prediction_id" and "Nothing was stored" in \
                detail["message"]
    extra = df.assign(notes="x", y=1)
    ans = _post(server, model, to_parquet(_flat_table(extra)), PARQUET)
    assert ans["accepted"] == N and ans["ignored_columns"] == ["notes", "y"]
    rows = _nested_rows(_sent("j14", time.time() - 5900, seed=15))
    rows[0]["features"]["colour"] = "red"
    rows[1]["scores"] = {"score": 0.3, "other": 0.7}
    rows[2]["extra"] = 1
    ans = _post(server, model, rows)
    assert ans["accepted"] == N
    assert ans["ignored_columns"] == ["extra", "features.colour", "scores.other"]


def test_14_the_sdk_reports_columns_ignored_in_any_chunk(server: Any, model: str,
                                                         client: Client) -> None:
    from aiwarden.sdk.client import JSON_CHUNK_ROWS

    df = _sent("chunk", time.time() - 5800, seed=16)
    rows = [{**r, "prediction_id": f"chunk-{i}"}
            for i, r in enumerate(_nested_rows(df) * (JSON_CHUNK_ROWS // N + 1))]
    rows[-1]["features"] = {**rows[-1]["features"], "colour": "red"}
    ans = client.log_predictions(model, rows)
    assert ans["accepted"] == len(rows) > JSON_CHUNK_ROWS
    assert ans["ignored_columns"] == ["features.colour"]
