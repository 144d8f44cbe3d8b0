"""Late labels over real HTTP: joins in either order, duplicates, time attribution, and the
realised performance checked against scikit-learn on the raw labelled rows.

Every test runs on SQLite and PostgreSQL (the ``db_url`` fixture) against a live server.
"""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from aiwarden.sdk._payload import to_ipc as _arrow
from aiwarden.sdk._payload import to_parquet as _parquet
from tests.server.conftest import HINTS, json_rows, scored_frame

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
AUC_BOUND = 0.005  # aiwarden.engine.performance: the histogram ROC AUC's documented bound


def _model(http: httpx.Client) -> str:
    name = f"m-{uuid.uuid4().hex[:12]}"
    assert http.post("/models", json={"name": name}).status_code == 201
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(scored_frame(2000), preserve_index=False), sink)
    r = http.put(f"/models/{name}/versions/v1/reference", params=HINTS,
                 content=sink.getvalue(), headers={"content-type": PARQUET})
    assert r.status_code == 201, r.text
    return name


def _predict(http: httpx.Client, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    r = http.post(f"/models/{name}/predictions", json=rows)
    assert r.status_code == 200, r.text
    assert r.json()["quarantined"] == 0, r.json()["errors"]
    return r.json()


def _label(http: httpx.Client, name: str, body: Any, media: str | None = None
           ) -> dict[str, Any]:
    if media is None:
        r = http.post(f"/models/{name}/labels", json=body)
    else:
        r = http.post(f"/models/{name}/labels", content=body, headers={"content-type": media})
    assert r.status_code == 200, r.text
    return r.json()


def _labels(ids: list[str], ys: Any) -> list[dict[str, Any]]:
    return [{"prediction_id": p, "label": int(y)} for p, y in zip(ids, ys, strict=True)]


def _series(http: httpx.Client, name: str, metric: str, **params: Any) -> list[dict[str, Any]]:
    r = http.get(f"/models/{name}/metrics", params={"metric": metric, **params})
    assert r.status_code == 200, r.text
    return r.json()["points"]


def _performance(http: httpx.Client, name: str) -> dict[str, Any]:
    (point,) = _series(http, name, "performance")
    return point["value"]


def _pending(http: httpx.Client, name: str) -> int:
    return http.get(f"/models/{name}").json()["labels_pending"]


def _check_against_sklearn(value: dict[str, Any], df: pd.DataFrame) -> None:
    """``value`` (the performance metric) matches scikit-learn on the labelled rows ``df``."""
    assert value["labels"] == len(df)
    m = value["metrics"]
    assert m["accuracy"] == accuracy_score(df.y, df.pred)
    assert m["f1"] == pytest.approx(f1_score(df.y, df.pred), abs=1e-9)
    assert abs(m["roc_auc"] - roc_auc_score(df.y, df.score)) <= AUC_BOUND


# --------------------------------------------------------------- joining
def test_labels_after_predictions_match_sklearn(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(1500, seed=1)
    ids = [f"p{i}" for i in range(len(df))]
    _predict(http, name, json_rows(df, time.time() - 3000, spacing=1.5))
    labelled = df.iloc[: 1000]  # a third never gets a label
    res = _label(http, name, _labels(ids[:1000], labelled.y))
    assert (res["received"], res["joined"], res["pending"], res["duplicates"]) == (
        1000, 1000, 0, 0)
    assert _pending(http, name) == 0
    value = _performance(http, name)
    _check_against_sklearn(value, labelled)
    assert _series(http, name, "volume")[0]["value"] == {"rows": 1500, "quarantined": 0,
                                                        "labels": 1000}
    # The labels travel with the raw rows.
    r = http.get(f"/models/{name}/events", params={"start": time.time() - 4000})
    events = pq.read_table(io.BytesIO(r.content)).to_pandas().set_index("prediction_id")
    assert events.label.notna().sum() == 1000
    assert (events.loc[ids[:1000], "label"] == labelled.y.astype(str).to_numpy()).all()


def test_labels_before_predictions_wait_and_join_on_arrival(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(800, seed=2)
    ids = [f"p{i}" for i in range(len(df))]
    rows = json_rows(df, time.time() - 2000, spacing=2.0)
    early = _label(http, name, _labels(ids, df.y))
    assert (early["received"], early["joined"], early["pending"]) == (800, 0, 800)
    assert _pending(http, name) == 800
    assert _performance(http, name) == {"labels": 0, "metrics": None}

    first = _predict(http, name, rows[:300])
    assert (first["accepted"], first["labels_joined"]) == (300, 300)
    assert _pending(http, name) == 500
    _check_against_sklearn(_performance(http, name), df.iloc[:300])

    rest = _predict(http, name, rows[300:])
    assert (rest["accepted"], rest["labels_joined"]) == (500, 500)
    assert _pending(http, name) == 0
    _check_against_sklearn(_performance(http, name), df)
    # A retried prediction batch joins nothing twice.
    again = http.post(f"/models/{name}/predictions", json=rows[:300]).json()
    assert (again["accepted"], again["duplicates"], again["labels_joined"]) == (0, 300, 0)
    assert _performance(http, name)["labels"] == 800


def test_first_label_wins_and_later_ones_are_duplicates(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(400, seed=3)
    ids = [f"p{i}" for i in range(len(df))]
    _predict(http, name, json_rows(df, time.time() - 1000))
    assert _label(http, name, _labels(ids[:200], df.y[:200]))["joined"] == 200
    flipped = 1 - df.y
    res = _label(http, name, _labels(ids[:200], flipped[:200]))
    assert (res["received"], res["joined"], res["pending"], res["duplicates"]) == (
        200, 0, 0, 200)
    # Inside one request: the first of two labels for an id wins.
    both = [x for pair in zip(_labels(ids[200:], df.y[200:]),
                              _labels(ids[200:], flipped[200:]), strict=True) for x in pair]
    res = _label(http, name, both)
    assert (res["received"], res["joined"], res["duplicates"]) == (400, 200, 200)
    _check_against_sklearn(_performance(http, name), df)


def test_duplicate_label_while_waiting_keeps_the_first(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(300, seed=4)
    ids = [f"p{i}" for i in range(len(df))]
    assert _label(http, name, _labels(ids, df.y))["pending"] == 300
    res = _label(http, name, _labels(ids, 1 - df.y))
    assert (res["pending"], res["duplicates"]) == (0, 300)
    assert _pending(http, name) == 300
    assert _predict(http, name, json_rows(df, time.time() - 900))["labels_joined"] == 300
    _check_against_sklearn(_performance(http, name), df)


def test_labels_for_unknown_predictions_stay_pending(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(100, seed=5)
    _predict(http, name, json_rows(df, time.time() - 500))
    body = _labels([f"p{i}" for i in range(50)], df.y[:50]) + [
        {"prediction_id": f"ghost-{i}", "label": 1} for i in range(7)]
    res = _label(http, name, body)
    assert (res["joined"], res["pending"]) == (50, 7)
    assert _pending(http, name) == 7
    assert _performance(http, name)["labels"] == 50
    _compact_wait()
    assert _pending(http, name) == 7  # nothing expires them
    # A later label for a ghost is a duplicate, not a second pending row.
    assert _label(http, name, {"prediction_id": "ghost-0", "label": 0})["duplicates"] == 1
    assert _pending(http, name) == 7


def _compact_wait() -> None:
    time.sleep(0.6)  # one maintenance pass (compact_every=0.5 in the test settings)


# ------------------------------------------------------- time attribution
def test_performance_counts_in_the_predictions_time_bucket(http: httpx.Client) -> None:
    name = _model(http)
    hour = int(time.time() // 3600 * 3600)  # start of the current hour
    a, b, c = scored_frame(200, seed=6), scored_frame(300, seed=7), scored_frame(250, seed=8)
    _predict(http, name, json_rows(a, hour - 3 * 3600 + 60, prefix="a", spacing=5.0))
    _predict(http, name, json_rows(b, hour - 1 * 3600 + 60, prefix="b", spacing=5.0))
    # Labels that wait: their predictions (2 h ago) arrive after them.
    _label(http, name, _labels([f"c{i}" for i in range(len(c))], c.y))
    _predict(http, name, json_rows(c, hour - 2 * 3600 + 60, prefix="c", spacing=5.0))
    _label(http, name, _labels([f"a{i}" for i in range(len(a))], a.y)
           + _labels([f"b{i}" for i in range(len(b))], b.y))

    points = _series(http, name, "performance", start=hour - 4 * 3600, end=hour + 3600,
                     step="1h")
    assert [p["start"] for p in points] == [
        pd.Timestamp(hour + k * 3600, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        for k in range(-4, 1)]
    assert [p["value"]["labels"] for p in points] == [0, 200, 250, 300, 0]
    assert points[0]["value"]["metrics"] is None and points[4]["value"]["metrics"] is None
    _check_against_sklearn(points[1]["value"], a)
    _check_against_sklearn(points[2]["value"], c)
    _check_against_sklearn(points[3]["value"], b)
    volume = _series(http, name, "volume", start=hour - 4 * 3600, end=hour + 3600, step="1h")
    assert [p["value"]["labels"] for p in volume] == [0, 200, 250, 300, 0]
    assert [p["rows"] for p in volume] == [0, 200, 250, 300, 0]


# --------------------------------------------------------------- formats
def test_bulk_labels_as_arrow_and_parquet(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(1200, seed=9)
    ids = [f"p{i}" for i in range(len(df))]
    _predict(http, name, json_rows(df, time.time() - 3000, spacing=2.0))
    as_int = pa.table({"prediction_id": ids[:600], "label": pa.array(df.y[:600], pa.int64())})
    as_text = pa.table({"prediction_id": ids[600:],
                        "label": pa.array(df.y[600:].astype(str), pa.string())})
    ra = _label(http, name, _arrow(as_int), ARROW)
    rp = _label(http, name, _parquet(as_text), PARQUET)
    assert (ra["received"], ra["joined"], rp["received"], rp["joined"]) == (600, 600, 600, 600)
    _check_against_sklearn(_performance(http, name), df)
    retry = _label(http, name, _parquet(as_text), PARQUET)
    assert (retry["joined"], retry["duplicates"]) == (0, 600)
    assert _performance(http, name)["labels"] == 1200


def test_label_rows_without_id_or_label_are_rejected(http: httpx.Client) -> None:
    name = _model(http)
    df = scored_frame(20, seed=10)
    _predict(http, name, json_rows(df, time.time() - 100))
    body = [{"prediction_id": "p0", "label": int(df.y[0])},
            {"label": 1},
            {"prediction_id": "p2"},
            {"prediction_id": "", "label": 0},
            {"prediction_id": "p4", "label": int(df.y[4])}]
    res = _label(http, name, body)
    assert (res["received"], res["joined"], res["pending"], res["rejected"]) == (5, 2, 0, 3)
    errors = {e["row"]: e for e in res["errors"]}
    assert {i: e["field"] for i, e in errors.items()} == {1: "prediction_id", 2: "label",
                                                          3: "prediction_id"}
    assert all(e["reason"] for e in errors.values())
    assert errors[2]["prediction_id"] == "p2"  # the id sent, to find the row by
    assert "ignored_columns" not in res
    # One error per row and field; keys a label does not take are named, not dropped.
    res = _label(http, name, [{"prediction_id": "p5", "label": [1]},
                              {"prediction_id": "p7", "label": 1, "timestamp": "garbage"}])
    assert [(e["row"], e["prediction_id"], e["field"]) for e in res["errors"]] == [
        (0, "p5", "label")]
    assert "scalar" in res["errors"][0]["reason"]
    assert res["ignored_columns"] == ["timestamp"] and res["joined"] == 1
    # A NUL in an id: that row refused (PostgreSQL answered 500 for the whole request).
    res = _label(http, name, [{"prediction_id": "p11\x00x", "label": 1},
                              {"prediction_id": "p11", "label": int(df.y[11])}])
    assert (res["rejected"], res["joined"]) == (1, 1)
    assert res["errors"][0]["field"] == "prediction_id" and "NUL" in res["errors"][0]["reason"]
    # A binary model's label is one of its two classes: not counted as a third.
    res = _label(http, name, [{"prediction_id": "p12", "label": "banana"},
                              {"prediction_id": "p13", "label": 7},
                              {"prediction_id": "p14", "label": 0.5}])
    assert (res["rejected"], res["joined"]) == (3, 0)
    assert [e["prediction_id"] for e in res["errors"]] == ["p12", "p13", "p14"]
    assert all(e["field"] == "label" and "one of" in e["reason"] for e in res["errors"])
    assert _performance(http, name)["labels"] == 4
    # A rejected row does not shadow a valid label for the same id in the same request.
    res = _label(http, name, [{"prediction_id": "p6"},
                              {"prediction_id": "p6", "label": int(df.y[6])}])
    assert (res["rejected"], res["joined"], res["duplicates"]) == (1, 1, 0)
    assert _performance(http, name)["labels"] == 5
    # Bulk: a null label is rejected; a missing column is a 422 naming it.
    table = pa.table({"prediction_id": ["p8", "p9"], "label": pa.array([1, None], pa.int64())})
    res = _label(http, name, _arrow(table), ARROW)
    assert (res["joined"], res["rejected"]) == (1, 1)
    assert res["errors"][0]["field"] == "label" and res["errors"][0]["prediction_id"] == "p9"
    r = http.post(f"/models/{name}/labels", content=_parquet(pa.table({"prediction_id": ["p10"]})),
                  headers={"content-type": PARQUET})
    assert r.status_code == 422
    assert r.json()["detail"]["field"] == "label"
    assert _performance(http, name)["labels"] == 6
