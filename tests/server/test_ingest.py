"""Registering models and references, and ingesting predictions over real HTTP.

Every test runs on SQLite and PostgreSQL (the ``db_url`` fixture) against a live server.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiwarden.sdk._payload import to_ipc, to_parquet
from tests.server.conftest import HINTS, json_rows, scored_frame
from tests.server.live import ThreadServer, settings_for

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"


# ----------------------------------------------------------------- helpers
def _name() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def _table(data: pd.DataFrame | pa.Table) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data,
                                                                        preserve_index=False)


def _parquet(data: pd.DataFrame | pa.Table) -> bytes:
    return to_parquet(_table(data))


def _arrow(data: pd.DataFrame | pa.Table) -> bytes:
    return to_ipc(_table(data))


def _model(http: httpx.Client, ref: pd.DataFrame | None = None, version: str = "v1",
           hints: dict[str, str] = HINTS) -> str:
    """A new model with a Parquet reference for ``version`` (scored_frame(500) by default)."""
    name = _name()
    assert http.post("/models", json={"name": name}).status_code == 201
    ref = scored_frame(500) if ref is None else ref
    r = http.put(f"/models/{name}/versions/{version}/reference", params=hints,
                 content=_parquet(ref), headers={"content-type": PARQUET})
    assert r.status_code == 201, r.text
    return name


def _post(http: httpx.Client, name: str, body: Any) -> dict[str, Any]:
    r = http.post(f"/models/{name}/predictions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _post_bulk(http: httpx.Client, name: str, body: bytes, media: str) -> dict[str, Any]:
    r = http.post(f"/models/{name}/predictions", content=body, headers={"content-type": media})
    assert r.status_code == 200, r.text
    return r.json()


def _events(http: httpx.Client, name: str, t0: float, t1: float) -> pd.DataFrame:
    r = http.get(f"/models/{name}/events", params={"start": t0, "end": t1})
    assert r.status_code == 200, r.text
    return pq.read_table(io.BytesIO(r.content)).to_pandas()


def _metric(http: httpx.Client, name: str, metric: str, **params: Any) -> dict[str, Any]:
    r = http.get(f"/models/{name}/metrics", params={"metric": metric, **params})
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert len(points) == 1
    return points[0]["value"]


def _error(r: httpx.Response) -> dict[str, Any]:
    detail = r.json()["detail"]
    assert set(detail) == {"error", "message", "field"}
    return detail


# ------------------------------------------------------ models and versions
def test_model_is_created_once(http: httpx.Client) -> None:
    name = _name()
    r = http.post("/models", json={"name": name, "task": "binary", "description": "fraud"})
    assert r.status_code == 201
    assert (r.json()["name"], r.json()["task"], r.json()["description"]) == (name, "binary",
                                                                              "fraud")
    again = http.post("/models", json={"name": name})
    assert again.status_code == 409
    assert _error(again)["error"] == "conflict"
    assert [m["name"] for m in http.get("/models").json()].count(name) == 1
    got = http.get(f"/models/{name}").json()
    assert (got["versions"], got["predictions"], got["labels_pending"]) == ([], 0, 0)


def test_version_is_created_once_and_keeps_its_schema(http: httpx.Client) -> None:
    schema = http.get(f"/models/{_model(http)}/versions/v1").json()["schema"]
    name = _name()
    http.post("/models", json={"name": name})
    r = http.post(f"/models/{name}/versions", json={"version": "v1", "schema": schema})
    assert r.status_code == 201, r.text
    again = http.post(f"/models/{name}/versions", json={"version": "v1"})
    assert again.status_code == 409
    assert _error(again)["error"] == "conflict"
    assert http.get(f"/models/{name}/versions/v1").json()["schema"] == schema
    # A version with a schema but no reference still takes rows of that schema.
    res = _post(http, name, json_rows(scored_frame(5, seed=1), time.time() - 60))
    assert (res["accepted"], res["quarantined"]) == (5, 0)


def _reference_body(df: pd.DataFrame, kind: str) -> tuple[bytes, str]:
    if kind == "parquet":
        return _parquet(df), PARQUET
    if kind == "csv":
        return df.to_csv(index=False).encode(), "text/csv"
    if kind == "json-rows":
        return orjson.dumps(df.to_dict(orient="records")), "application/json"
    if kind == "json-columns":
        return orjson.dumps(df.to_dict(orient="list")), "application/json"
    return _arrow(df), ARROW


@pytest.mark.parametrize("kind", ["parquet", "csv", "json-rows", "json-columns", "arrow"])
def test_reference_upload_in_every_format_infers_the_schema(http: httpx.Client,
                                                            kind: str) -> None:
    df = scored_frame(400, seed=7)
    name = _name()
    http.post("/models", json={"name": name})
    body, media = _reference_body(df, kind)
    r = http.put(f"/models/{name}/versions/v1/reference", params=HINTS, content=body,
                 headers={"content-type": media})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["rows"], out["columns"]) == (400, 5)
    schema = out["schema"]
    assert (schema["task"], schema["classes"]) == ("binary", ["0", "1"])
    roles = {c["name"]: (c["dtype"], c["role"], c.get("label")) for c in schema["columns"]}
    assert roles == {"x": ("numerical", "feature", None), "c": ("categorical", "feature", None),
                     "score": ("numerical", "score", "1"),
                     "pred": ("categorical", "prediction", None),
                     "y": ("categorical", "target", None)}
    # The same data fits the same reference whatever the format it travelled in.
    parquet = _model(http, df)
    expected = http.get(f"/models/{parquet}/versions/v1").json()["fingerprint"]
    assert out["fingerprint"] == expected
    version = http.get(f"/models/{name}/versions/v1").json()
    assert (version["has_reference"], version["reference_rows"]) == (True, 400)


def test_reference_hints_override_inference(http: httpx.Client) -> None:
    df = scored_frame(300).rename(columns={"y": "outcome", "pred": "decision",
                                           "score": "risk"})
    df["shop"] = np.where(np.arange(300) % 2, "north", "south")
    name = _model(http, df, hints={"target": "outcome", "prediction": "decision",
                                   "scores": "risk", "segments": "shop"})
    schema = http.get(f"/models/{name}/versions/v1").json()["schema"]
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles == {"x": "feature", "c": "feature", "risk": "score", "decision": "prediction",
                     "outcome": "target", "shop": "segment"}


def test_reference_cannot_be_uploaded_twice(http: httpx.Client) -> None:
    name = _model(http)
    before = http.get(f"/models/{name}/versions/v1").json()
    r = http.put(f"/models/{name}/versions/v1/reference", params=HINTS,
                 content=_parquet(scored_frame(500, seed=9)), headers={"content-type": PARQUET})
    assert r.status_code == 409
    assert _error(r)["error"] == "conflict"
    after = http.get(f"/models/{name}/versions/v1").json()
    assert (after["fingerprint"], after["reference_rows"]) == (before["fingerprint"], 500)


def test_reference_upload_creates_the_version_and_it_becomes_current(http: httpx.Client
                                                                     ) -> None:
    name = _model(http)
    r = http.put(f"/models/{name}/versions/v2/reference", params=HINTS,
                 content=_parquet(scored_frame(300, seed=2)), headers={"content-type": PARQUET})
    assert r.status_code == 201, r.text
    assert [v["version"] for v in http.get(f"/models/{name}").json()["versions"]] == ["v1",
                                                                                      "v2"]
    now = time.time()
    rows = json_rows(scored_frame(4, seed=1), now - 100)
    rows[0]["version"] = "v1"
    assert _post(http, name, rows)["accepted"] == 4
    stored = _events(http, name, now - 200, now)
    assert dict(zip(stored.prediction_id, stored.version, strict=True)) == {
        "p0": "v1", "p1": "v2", "p2": "v2", "p3": "v2"}


def test_unknown_model_is_404(http: httpx.Client) -> None:
    for r in (http.post(f"/models/{_name()}/predictions", json=[{"prediction_id": "a"}]),
              http.post(f"/models/{_name()}/labels", json=[{"prediction_id": "a", "label": 1}]),
              http.put(f"/models/{_name()}/versions/v1/reference", params=HINTS,
                       content=_parquet(scored_frame(50)), headers={"content-type": PARQUET}),
              http.get(f"/models/{_name()}")):
        assert r.status_code == 404, r.text
        assert _error(r)["error"] == "not_found"
    name = _model(http)
    r = http.get(f"/models/{name}/versions/v9")
    assert r.status_code == 404
    assert _error(r)["error"] == "not_found"


# ------------------------------------------------------------ JSON ingest
def test_json_envelopes_single_list_and_rows(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    rows = json_rows(scored_frame(9, seed=1), now - 300)
    single = _post(http, name, rows[0])
    listed = _post(http, name, rows[1:4])
    wrapped = _post(http, name, {"rows": rows[4:]})
    assert [(r["received"], r["accepted"]) for r in (single, listed, wrapped)] == [
        (1, 1), (3, 3), (5, 5)]
    for r in (single, listed, wrapped):
        assert (r["duplicates"], r["quarantined"], r["errors"]) == (0, 0, [])
    stored = _events(http, name, now - 400, now)
    assert sorted(stored.prediction_id) == sorted(r["prediction_id"] for r in rows)
    assert _metric(http, name, "volume")["rows"] == 9
    assert http.get(f"/models/{name}").json()["predictions"] == 9


def test_an_event_time_far_ahead_of_the_clock_is_quarantined_naming_it(
        http: httpx.Client) -> None:
    """Year 2554 was accepted: the row sat past every window and every retention pass."""
    name = _model(http)
    now = time.time()
    rows = json_rows(scored_frame(3, seed=2), now - 60)
    rows[1]["timestamp"] = "2554-01-01T00:00:00Z"
    rows[2]["timestamp"] = now + 3600  # a clock a little fast: kept
    res = _post(http, name, rows)
    assert (res["accepted"], res["quarantined"]) == (2, 1), res
    (err,) = res["errors"]
    assert (err["row"], err["field"]) == (1, "timestamp")
    assert err["reason"].startswith("2554-01-01T00:00:00Z is ") and "days ahead of the " \
        "server's clock; at most 24 hours ahead is accepted" in err["reason"], err
    assert sorted(_events(http, name, now - 120, now + 7200).prediction_id) == ["p0", "p2"]


def test_json_row_format_fills_the_schema_columns(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    base = {"features": {"x": 0.5, "c": "a"}, "prediction": 1, "latency_ms": 2.0}
    rows = [
        {"prediction_id": "number", "timestamp": now - 50, "scores": 0.91, **base},
        {"prediction_id": "by-class", "timestamp": now - 40, "scores": {"1": 0.92}, **base},
        {"prediction_id": "by-column", "timestamp": now - 30, "scores": {"score": 0.93},
         **base},
        # Top-level keys naming schema columns, an ISO timestamp, numeric strings.
        {"prediction_id": "top-level",
         "timestamp": pd.Timestamp(now - 20, unit="s", tz="UTC").isoformat(), "x": "12.5",
         "c": "b", "pred": 0, "score": "0.25", "latency_ms": "4.5"},
    ]
    res = _post(http, name, rows)
    assert (res["accepted"], res["quarantined"]) == (4, 0), res["errors"]
    got = _events(http, name, now - 100, now).set_index("prediction_id")
    assert got.loc["number", "score"] == 0.91
    assert got.loc["by-class", "score"] == 0.92
    assert got.loc["by-column", "score"] == 0.93
    top = got.loc["top-level"]
    assert (top.x, top.c, top.score, top.latency_ms) == (12.5, "b", 0.25, 4.5)
    assert str(top.pred) == "0" and str(got.loc["number", "pred"]) == "1"
    assert top.timestamp == pytest.approx(now - 20, abs=1e-3)
    assert got.loc["number", "timestamp"] == pytest.approx(now - 50, abs=1e-6)


def test_json_scores_by_class_and_tags_on_a_multiclass_model(http: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], 300)
    ref = pd.DataFrame({"x": rng.normal(size=300), "region": rng.choice(["eu", "us"], 300),
                        "proba_a": p[:, 0], "proba_b": p[:, 1], "proba_c": p[:, 2],
                        "pred": np.array(["a", "b", "c"])[p.argmax(1)],
                        "y": rng.choice(["a", "b", "c"], 300)})
    name = _model(http, ref, hints={"target": "y", "prediction": "pred", "segments": "region"})
    now = time.time()
    rows = [{"prediction_id": "k1", "timestamp": now - 10, "features": {"x": 1.0},
             "tags": {"region": "eu"}, "prediction": "a",
             "scores": {"a": 0.7, "b": 0.2, "c": 0.1}},
            {"prediction_id": "k2", "timestamp": now - 9, "features": {"x": -1.0},
             "tags": {"region": "us"}, "prediction": "b",
             "scores": {"proba_a": 0.1, "proba_b": 0.8, "proba_c": 0.1}}]
    assert _post(http, name, rows)["accepted"] == 2
    got = _events(http, name, now - 60, now).set_index("prediction_id")
    assert got.loc["k1", ["proba_a", "proba_b", "proba_c"]].tolist() == [0.7, 0.2, 0.1]
    assert got.loc["k2", ["proba_a", "proba_b", "proba_c"]].tolist() == [0.1, 0.8, 0.1]
    assert got.region.to_dict() == {"k1": "eu", "k2": "us"}
    assert got.pred.to_dict() == {"k1": "a", "k2": "b"}


# ------------------------------------------------------------ bulk ingest
def _flat(df: pd.DataFrame, start: float, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": [f"{prefix}{i}" for i in range(len(df))],
                         "timestamp": start + np.arange(len(df), dtype=float),
                         "latency_ms": np.arange(len(df)) % 7 + 1.0,
                         "x": df.x, "c": df.c, "score": df.score, "pred": df.pred})


def test_bulk_arrow_stream_and_parquet(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    a = _flat(scored_frame(700, seed=4), now - 2000, "a")
    b = _flat(scored_frame(500, seed=5), now - 1000, "b")
    b["timestamp"] = pd.to_datetime(b.timestamp, unit="s", utc=True)  # a real timestamp type
    b["version"] = "v1"
    ra = _post_bulk(http, name, _arrow(a), ARROW)
    rb = _post_bulk(http, name, _parquet(b), PARQUET)
    assert (ra["received"], ra["accepted"], ra["quarantined"]) == (700, 700, 0)
    assert (rb["received"], rb["accepted"], rb["quarantined"]) == (500, 500, 0)
    got = _events(http, name, now - 3000, now).set_index("prediction_id")
    assert len(got) == 1200
    want = pd.concat([a, b.assign(timestamp=b.timestamp.astype("int64") / 1e9)]).set_index(
        "prediction_id")
    got = got.loc[want.index]
    np.testing.assert_allclose(got.timestamp, want.timestamp, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.x, want.x)
    np.testing.assert_array_equal(got.score, want.score)
    np.testing.assert_array_equal(got.latency_ms, want.latency_ms)
    assert (got.c == want.c).all()
    assert (got.pred.astype(str) == want.pred.astype(str)).all()
    assert _metric(http, name, "volume")["rows"] == 1200
    assert _metric(http, name, "latency")["count"] == 1200


# ------------------------------------------------------------ idempotency
def test_retried_batch_is_counted_once(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    rows = json_rows(scored_frame(60, seed=1), now - 500)
    first = _post(http, name, rows)
    again = _post(http, name, rows)
    assert (first["accepted"], first["duplicates"]) == (60, 0)
    assert (again["received"], again["accepted"], again["duplicates"]) == (60, 0, 60)
    assert _metric(http, name, "volume")["rows"] == 60
    # Half old, half new: only the new half counts.
    more = json_rows(scored_frame(20, seed=2), now - 400, prefix="q")
    mixed = _post(http, name, rows[:20] + more)
    assert (mixed["accepted"], mixed["duplicates"]) == (20, 20)
    # The same bulk batch twice.
    bulk = _arrow(_flat(scored_frame(30, seed=3), now - 300, "r"))
    assert _post_bulk(http, name, bulk, ARROW)["accepted"] == 30
    retry = _post_bulk(http, name, bulk, ARROW)
    assert (retry["accepted"], retry["duplicates"]) == (0, 30)
    assert _metric(http, name, "volume")["rows"] == 110
    assert len(_events(http, name, now - 600, now)) == 110


def test_repeated_id_inside_one_batch_counts_once_and_the_first_wins(http: httpx.Client
                                                                    ) -> None:
    name = _model(http)
    now = time.time()
    rows = json_rows(scored_frame(10, seed=1), now - 100)
    copy = {**rows[3], "features": {"x": 99.0, "c": "c"}}
    res = _post(http, name, [*rows, copy])
    assert (res["received"], res["accepted"], res["duplicates"]) == (11, 10, 1)
    got = _events(http, name, now - 200, now).set_index("prediction_id")
    assert len(got) == 10
    assert got.loc["p3", "x"] == rows[3]["features"]["x"]
    assert _metric(http, name, "volume")["rows"] == 10


# ------------------------------------------------------------- quarantine
def test_bad_rows_are_quarantined_with_a_reason_and_good_rows_kept(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    rows = json_rows(scored_frame(30, seed=1), now - 600)
    rows[3]["features"]["x"] = "abc"
    rows[7]["timestamp"] = "yesterday"
    del rows[11]["prediction_id"]
    rows[15]["features"]["x"] = [1.0, 2.0]
    rows[19]["version"] = "v-missing"
    res = _post(http, name, rows)
    assert (res["received"], res["accepted"], res["quarantined"], res["duplicates"]) == (
        30, 25, 5, 0)
    errors = {e["row"]: e for e in res["errors"]}
    assert sorted(errors) == [3, 7, 11, 15, 19]
    assert errors[3]["field"] == "features.x" and "'abc'" in errors[3]["reason"]
    assert errors[7]["field"] == "timestamp" and "'yesterday'" in errors[7]["reason"]
    assert errors[11]["field"] == "prediction_id" and errors[11]["prediction_id"] is None
    assert errors[15]["field"] == "features.x" and "list" in errors[15]["reason"]
    assert errors[19]["field"] == "version" and "'v-missing'" in errors[19]["reason"]
    assert [errors[i]["prediction_id"] for i in (3, 7, 15, 19)] == ["p3", "p7", "p15", "p19"]

    listed = http.get(f"/models/{name}/quarantine").json()
    assert len(listed) == 5
    assert sorted((q["prediction_id"] or "", q["field"]) for q in listed) == [
        ("", "prediction_id"), ("p15", "features.x"), ("p19", "version"),
        ("p3", "features.x"), ("p7", "timestamp")]
    assert all(q["reason"] for q in listed)
    assert http.get(f"/models/{name}").json()["quarantined"] == 5

    quality = _metric(http, name, "quality")
    assert quality["quarantined"] == 5
    assert quality["quarantine_reasons"] == {"features.x": 2, "timestamp": 1,
                                             "prediction_id": 1, "version": 1}
    assert quality["ok"] is False

    good = {r["prediction_id"] for i, r in enumerate(rows) if i not in errors}
    assert set(_events(http, name, now - 700, now).prediction_id) == good
    assert _metric(http, name, "volume") == {"rows": 25, "quarantined": 5, "labels": 0}

    # A quarantined row, corrected and re-sent, is accepted (it was never indexed).
    fixed = {**rows[3], "features": {"x": 1.5, "c": "a"}}
    assert _post(http, name, fixed)["accepted"] == 1
    assert _metric(http, name, "volume")["rows"] == 26


def test_bulk_rows_are_checked_like_json_rows(http: httpx.Client) -> None:
    name = _model(http)
    now = time.time()
    flat = _flat(scored_frame(20, seed=1), now - 100, "b")
    flat["x"] = [repr(float(v)) for v in flat.x]  # numbers sent as text
    flat.loc[2, "x"] = "oops"
    flat.loc[4, "x"] = "12.5"
    flat.loc[6, "prediction_id"] = None
    res = _post_bulk(http, name, _parquet(flat), PARQUET)
    assert (res["accepted"], res["quarantined"]) == (18, 2), res["errors"]
    assert {(e["row"], e["field"]) for e in res["errors"]} == {(2, "features.x"),
                                                               (6, "prediction_id")}
    got = _events(http, name, now - 200, now).set_index("prediction_id")
    assert got.loc["b4", "x"] == 12.5
    assert _metric(http, name, "quality")["quarantined"] == 2


def test_row_for_a_model_without_versions_is_quarantined(http: httpx.Client) -> None:
    name = _name()
    http.post("/models", json={"name": name})
    res = _post(http, name, {"prediction_id": "lonely", "features": {"x": 1}})
    assert (res["accepted"], res["quarantined"]) == (0, 1)
    assert res["errors"][0]["field"] == "version"
    assert [q["prediction_id"] for q in http.get(f"/models/{name}/quarantine").json()] == [
        "lonely"]


# ------------------------------------------------------- malformed bodies
def test_malformed_json_names_line_and_column(http: httpx.Client) -> None:
    name = _model(http)
    body = b'[\n {"prediction_id": "a",\n  "features": {"x": }}\n]'
    r = http.post(f"/models/{name}/predictions", content=body,
                  headers={"content-type": "application/json"})
    assert r.status_code == 422
    detail = _error(r)
    column = body.split(b"\n")[2].index(b"}") + 1
    assert detail["field"] == f"body:3:{column}"
    assert "line 3" in detail["message"]
    for bad in (b"", b'{"rows": 5}', b"42"):
        r = http.post(f"/models/{name}/predictions", content=bad,
                      headers={"content-type": "application/json"})
        assert r.status_code == 422, bad
        assert _error(r)["field"] in ("body", "rows")
    r = http.post(f"/models/{name}/predictions", content=b"not parquet",
                  headers={"content-type": PARQUET})
    assert r.status_code == 422
    assert http.get(f"/models/{name}").json()["predictions"] == 0


def test_nan_and_infinity_literals_name_the_row_and_field(http: httpx.Client) -> None:
    """Python's json.dumps writes NaN/Infinity, which JSON lacks: say where, not 'char 97'."""
    import json

    name = _model(http)
    rows = [{"prediction_id": "a", "features": {"x": 1.0}},
            {"prediction_id": "b", "features": {"x": float("nan")}}]
    cases = [(json.dumps(rows), "body[1].features.x", "NaN"),
             (json.dumps({"rows": rows[:1] * 3 + [{"prediction_id": "c", "features": {
                 "x": 2.0, "y": float("-inf")}}]}), "rows[3].features.y", "-Infinity")]
    for body, field, literal in cases:
        r = http.post(f"/models/{name}/predictions", content=body,
                      headers={"content-type": "application/json"})
        assert r.status_code == 422
        detail = _error(r)
        assert detail["field"] == field
        assert detail["message"].startswith(f"{field}: {literal} is not a JSON number (row ")
    # A pydantic-validated body (one object, no rows) names the field alone.
    r = http.post("/silences", content=b'{"matchers": {"model": "m"}, "duration": NaN}',
                  headers={"content-type": "application/json"})
    assert r.status_code == 422 and _error(r)["field"] == "duration"
    assert http.get(f"/models/{name}").json()["predictions"] == 0
    import doctest

    import aiwarden._json

    assert doctest.testmod(aiwarden._json).failed == 0


def test_oversized_body_is_413_and_stores_nothing(db_url: str, tmp_path: Path) -> None:
    with ThreadServer(settings_for(db_url, tmp_path, max_body_mb=0.01)) as small, \
            httpx.Client(base_url=small.url + "/api/v1", timeout=60) as http:
        limit = int(0.01 * 1024 * 1024)
        name = _model(http, scored_frame(40))
        now = time.time()
        rows = json_rows(scored_frame(400, seed=1), now - 1000)
        body = orjson.dumps(rows)
        assert len(body) > limit
        r = http.post(f"/models/{name}/predictions", content=body,
                      headers={"content-type": "application/json"})
        assert r.status_code == 413
        detail = _error(r)
        assert (detail["error"], detail["field"]) == ("body_too_large", "body")
        # Without a Content-Length (chunked), the limit still holds.
        chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        r = http.post(f"/models/{name}/predictions", content=iter(chunks),
                      headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert http.get(f"/models/{name}").json()["predictions"] == 0
        # Under the limit: accepted.
        small_body = orjson.dumps(rows[:20])
        assert len(small_body) < limit
        r = http.post(f"/models/{name}/predictions", content=small_body,
                      headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["accepted"] == 20


def test_iso_timestamps_are_stored_as_the_time_they_name(http: httpx.Client) -> None:
    """Every row's time an ISO string (pandas 3 parses them to microseconds: read as
    nanoseconds they landed in January 1970); a boolean is no time at all."""
    name = _model(http)
    now = float(int(time.time()))
    base = {"features": {"x": 0.5, "c": "a"}, "prediction": 1}
    iso = {f"z{k}": pd.Timestamp(now - 60 * k, unit="s", tz="UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ") for k in range(1, 4)}
    iso["offset"] = pd.Timestamp(now - 30.25, unit="s", tz="UTC").tz_convert(
        "Europe/Paris").isoformat()
    rows = [{"prediction_id": i, "timestamp": t, **base} for i, t in iso.items()]
    res = _post(http, name, [*rows, {"prediction_id": "bool", "timestamp": True, **base}])
    assert res["accepted"] == 4 and res["quarantined"] == 1, res
    assert res["errors"][0]["field"] == "timestamp" and "'true'" in res["errors"][0]["reason"]
    alone = _post(http, name, [{"prediction_id": "bool", "timestamp": True, **base}])
    assert alone["accepted"] == 0 and alone["quarantined"] == 1, alone
    assert alone["errors"][0]["field"] == "timestamp"
    assert "boolean" in alone["errors"][0]["reason"]
    got = _events(http, name, now - 3600, now + 1).set_index("prediction_id")
    for k in range(1, 4):
        assert got.loc[f"z{k}", "timestamp"] == pytest.approx(now - 60 * k, abs=1e-6)
    assert got.loc["offset", "timestamp"] == pytest.approx(now - 30.25, abs=1e-6)
    assert "bool" not in got.index


def test_an_id_holding_a_nul_is_refused_alone(http: httpx.Client) -> None:
    """PostgreSQL keeps no NUL in text: the row is quarantined naming its id field, and the
    request's other rows are stored (it was a 422 for the whole request there)."""
    name = _model(http)
    base = {"features": {"x": 0.5, "c": "a"}, "prediction": 1, "timestamp": time.time()}
    res = _post(http, name, [{"prediction_id": "n1\x00x", **base},
                             {"prediction_id": "n2", **base}])
    assert (res["accepted"], res["quarantined"]) == (1, 1), res
    assert res["errors"][0]["field"] == "prediction_id"
    assert "NUL" in res["errors"][0]["reason"]
    assert res["errors"][0]["prediction_id"] == "n1\\x00x"  # as the quarantine keeps it


def test_a_binary_models_outputs_are_its_classes_and_probabilities(http: httpx.Client) -> None:
    """'maybe' is no class of a binary model, 1.7 and -3 no probability: each row refused
    naming its field (they were counted as a third class and as scores)."""
    name = _model(http)
    base = {"features": {"x": 0.5, "c": "a"}, "timestamp": time.time()}
    res = _post(http, name, [
        {"prediction_id": "ok", "prediction": 1, "scores": 0.8, **base},
        {"prediction_id": "maybe", "prediction": "maybe", "scores": 0.5, **base},
        {"prediction_id": "high", "prediction": 1, "scores": 1.7, **base},
        {"prediction_id": "low", "prediction": 0, "scores": -3, **base}])
    assert (res["accepted"], res["quarantined"]) == (1, 3), res
    why = {e["prediction_id"]: (e["field"], e["reason"]) for e in res["errors"]}
    assert why["maybe"][0] == "prediction" and "one of" in why["maybe"][1]
    assert why["high"][0].startswith("scores") and "[0, 1]" in why["high"][1]
    assert why["low"][0].startswith("scores")
