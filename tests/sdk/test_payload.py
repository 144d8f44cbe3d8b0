"""What goes on the wire: input conversion, JSON rows, and the client's requests and errors."""

from __future__ import annotations

import datetime as dt
import decimal
import doctest
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aiwarden.sdk as sdk
from aiwarden.errors import DataError, ParameterError
from aiwarden.sdk import ApiError, Client
from aiwarden.sdk import _payload as P
from aiwarden.sdk.client import _merge, iso_time
from tests.sdk import Receiver

T0 = dt.datetime(2026, 11, 25, 10, 0, 0)
ROWS = [
    {"prediction_id": "a", "amount": 1.5, "n": 1, "country": "FR", "ok": True,
     "timestamp": T0},
    {"prediction_id": "b", "amount": None, "n": 2, "country": None, "ok": False,
     "timestamp": T0 + dt.timedelta(seconds=1, microseconds=5)},
    {"prediction_id": "c", "amount": 3.0, "n": 3, "country": "DE", "ok": True,
     "timestamp": T0 + dt.timedelta(hours=1)},
]
COLUMNS = {k: [r[k] for r in ROWS] for k in ROWS[0]}
EXPECTED = pa.table({
    "prediction_id": pa.array(["a", "b", "c"], pa.string()),
    "amount": pa.array([1.5, None, 3.0], pa.float64()),
    "n": pa.array([1, 2, 3], pa.int64()),
    "country": pa.array(["FR", None, "DE"], pa.string()),
    "ok": pa.array([True, False, True], pa.bool_()),
    "timestamp": pa.array(COLUMNS["timestamp"], pa.timestamp("us")),
})


def test_public_surface_is_pinned() -> None:
    assert set(sdk.__all__) == {"ApiError", "BackgroundLogger", "Client", "LoggerClosedError"}


def test_module_docstring_runs() -> None:
    assert doctest.testmod(sdk).failed == 0


def test_importing_the_sdk_loads_no_dataframe_library() -> None:
    code = ("import sys, aiwarden.sdk; "
            "print([m for m in ('pandas', 'polars', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_api_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(ApiError(409, "conflict", "Model 'm' exists.", "name")))
    assert (err.status, err.kind, err.message, err.field) == (409, "conflict",
                                                                "Model 'm' exists.", "name")


# -- tabular inputs --------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    pytest.param(lambda: pd.DataFrame(ROWS), id="pandas"),
    pytest.param(lambda: pd.DataFrame(ROWS).astype({"country": "category"}), id="pandas-cat"),
    pytest.param(lambda: pd.DataFrame(ROWS).astype({"timestamp": "datetime64[ns]"}),
                 id="pandas-ns"),
    pytest.param(lambda: pl.DataFrame(ROWS), id="polars"),
    pytest.param(lambda: pl.DataFrame(ROWS).with_columns(pl.col("country")
                                                         .cast(pl.Categorical)), id="polars-cat"),
    pytest.param(lambda: pl.DataFrame(ROWS).lazy(), id="polars-lazy"),
    pytest.param(lambda: pa.Table.from_pylist(ROWS), id="arrow"),
    pytest.param(lambda: pa.Table.from_pylist(ROWS).cast(pa.schema(
        [pa.field(f.name, pa.large_string() if f.type == pa.string() else f.type)
         for f in EXPECTED.schema])), id="arrow-large-string"),
    pytest.param(lambda: pa.RecordBatch.from_pylist(ROWS), id="record-batch"),
    pytest.param(lambda: ROWS, id="rows"),
    pytest.param(lambda: COLUMNS, id="columns"),
    pytest.param(lambda: {k: pd.Series(v) if k != "n" else np.array(v)
                          for k, v in COLUMNS.items()}, id="columns-series-numpy"),
])
def test_every_input_gives_the_same_arrow_table(make) -> None:
    table = P.to_arrow(make())
    assert table.schema == EXPECTED.schema and table.schema.metadata is None
    assert table.equals(EXPECTED), table.to_pylist()


def test_pandas_index_kept_only_when_named() -> None:
    df = pd.DataFrame(ROWS)
    assert P.to_arrow(df[df.n > 1]).column_names == EXPECTED.column_names
    named = P.to_arrow(df.set_index("prediction_id"))
    assert named.column("prediction_id").to_pylist() == ["a", "b", "c"]


def test_unsupported_input_says_what_is_accepted() -> None:
    with pytest.raises(DataError, match=r"Expected a pandas or polars DataFrame.*Got int"):
        P.to_arrow(3)
    with pytest.raises(DataError, match="empty"):
        P.to_arrow([])


def test_chunks_cover_the_table_once_and_respect_both_limits() -> None:
    table = pa.table({"x": np.arange(1000, dtype=np.int64)})  # 8 bytes a row
    chunks = list(P.table_chunks(table, max_rows=300, max_bytes=10**9))
    assert [(o, c.num_rows) for o, c in chunks] == [(0, 300), (300, 300), (600, 300), (900, 100)]
    assert pa.concat_tables(c for _, c in chunks).equals(table)
    by_bytes = list(P.table_chunks(table, max_rows=10**6, max_bytes=800))
    assert {c.num_rows for _, c in by_bytes[:-1]} == {100}


def test_ipc_and_parquet_round_trip() -> None:
    assert pa.ipc.open_stream(P.to_ipc(EXPECTED)).read_all().equals(EXPECTED)
    assert P.read_parquet(P.to_parquet(EXPECTED)).equals(EXPECTED)


def test_files_are_sent_with_their_content_type(tmp_path: Path) -> None:
    pq.write_table(EXPECTED, tmp_path / "ref.parquet")
    body, kind = P.file_body(tmp_path / "ref.parquet")
    assert kind == "application/vnd.apache.parquet"
    assert body == (tmp_path / "ref.parquet").read_bytes()
    with pa.ipc.new_file(tmp_path / "ref.arrow", EXPECTED.schema) as w:  # IPC *file* format
        w.write_table(EXPECTED)
    body, kind = P.file_body(tmp_path / "ref.arrow")
    assert kind == "application/vnd.apache.arrow.stream"
    assert pa.ipc.open_stream(body).read_all().equals(EXPECTED)
    (tmp_path / "ref.csv").write_text("a,b\n1,x\n")
    assert P.file_body(tmp_path / "ref.csv") == (b"a,b\n1,x\n", "text/csv")
    with pytest.raises(DataError, match="suffix"):
        P.file_body(tmp_path / "ref.xlsx")
    with pytest.raises(DataError, match="No file"):
        P.file_body(tmp_path / "missing.csv")


# -- JSON rows -------------------------------------------------------------------------------

def test_json_rows_serialise_datetimes_and_numpy() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    row = {
        "naive": T0, "aware": T0.replace(tzinfo=paris), "date": dt.date(2026, 1, 2),
        "pd": pd.Timestamp("2026-11-25 10:00:00.000000001"), "pd_tz": pd.Timestamp(T0, tz=paris),
        "np_dt": np.datetime64("2026-11-25T10:00:00.250"), "nat": pd.NaT,
        "na": pd.NA, "i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True),
        "nan": float("nan"), "np_nan": np.float64("nan"), "arr": np.array([1, 2]),
        "dec": decimal.Decimal("1.25"), "s": np.str_("x"), "td": dt.timedelta(minutes=1),
    }
    assert orjson.loads(P.dumps([row])) == [{
        "naive": "2026-11-25T10:00:00Z", "aware": "2026-11-25T10:00:00+01:00",
        "date": "2026-01-02", "pd": "2026-11-25T10:00:00Z", "pd_tz": "2026-11-25T10:00:00+01:00",
        "np_dt": "2026-11-25T10:00:00.250000Z", "nat": None, "na": None, "i": 7, "f": 0.5,
        "b": True, "nan": None, "np_nan": None, "arr": [1, 2], "dec": 1.25, "s": "x",
        "td": 60.0,
    }]
    # numpy NaT defeats orjson's native numpy path; the slow path makes it null.
    assert orjson.loads(P.dumps({"t": np.datetime64("NaT"), "i": np.int32(1)})) == \
        {"t": None, "i": 1}
    with pytest.raises(TypeError):
        P.dumps({"x": object()})


@pytest.mark.parametrize(("value", "text"), [
    (T0, "2026-11-25T10:00:00Z"),
    (T0.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2026-11-25T15:00:00Z"),
    (pd.Timestamp("2026-11-25T10:00:00.5Z"), "2026-11-25T10:00:00.500000Z"),
    (np.datetime64("2026-11-25T10:00"), "2026-11-25T10:00:00Z"),
    ("2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00Z"),
    ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z"),
    (dt.date(2026, 11, 25), "2026-11-25T00:00:00Z"),
    (0, "1970-01-01T00:00:00Z"),
    (1.5, "1970-01-01T00:00:01.500000Z"),
    ("86400", "1970-01-02T00:00:00Z"),
])
def test_times_are_sent_as_iso_utc(value, text) -> None:
    assert iso_time(value) == text


def test_unreadable_time_is_refused_before_sending() -> None:
    with pytest.raises(ParameterError, match=r"The 'start' parameter of Client must be a "
                                             r"datetime.*Got 'yesterday' instead"):
        iso_time("yesterday", "start")


def test_chunk_answers_are_summed_and_error_rows_renumbered() -> None:
    total: dict = {}
    _merge(total, {"received": 2, "accepted": 1, "errors": [{"row": 1, "reason": "x"}]}, 0)
    _merge(total, {"received": 2, "accepted": 2, "errors": []}, 2)
    _merge(total, {"received": 1, "accepted": 0, "errors": [{"row": 0, "reason": "y"}]}, 4)
    assert total == {"received": 5, "accepted": 3,
                     "errors": [{"row": 1, "reason": "x"}, {"row": 4, "reason": "y"}]}


# -- the client over HTTP --------------------------------------------------------------------

@pytest.fixture
def client(receiver: Receiver) -> Iterator[Client]:
    with Client(receiver.url + "/", api_key="k", timeout=5) as c:
        yield c


def test_documented_error_body_becomes_api_error(receiver: Receiver, client: Client) -> None:
    receiver.status = 404
    receiver.answer = (b'{"detail": {"error": "not_found", "message": "No model named '
                       b'\'fraud\'.", "field": "name"}}')
    with pytest.raises(ApiError) as info:
        client.get_model("fraud")
    err = info.value
    assert (err.status, err.kind, err.message, err.field) == (
        404, "not_found", "No model named 'fraud'.", "name")
    assert str(err) == "HTTP 404 not_found: No model named 'fraud'. (field: name)"


def test_framework_and_plain_text_errors_are_readable(receiver: Receiver,
                                                      client: Client) -> None:
    receiver.status = 422
    receiver.answer = (b'{"detail": [{"loc": ["body", "name"], "msg": "Field required", '
                       b'"type": "missing"}]}')
    with pytest.raises(ApiError, match=r"HTTP 422 validation_error: Field required "
                                       r"\(field: body.name\)"):
        client.create_model("x")
    receiver.status, receiver.answer, receiver.content_type = 502, b"Bad gateway\n", "text/plain"
    with pytest.raises(ApiError) as info:
        client.list_models()
    assert (info.value.status, info.value.kind, info.value.message) == (502, "Bad Gateway",
                                                                        "Bad gateway")


def test_unreachable_server_is_status_zero() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", timeout=1) as c, pytest.raises(ApiError) as info:
        c.list_models()
    assert info.value.status == 0 and info.value.kind == "connection_error"
    assert info.value.__cause__ is not None


def test_model_calls_hit_the_documented_paths(receiver: Receiver, client: Client) -> None:
    receiver.answer = b'{"ok": true}'
    client.create_model("fraud", task="binary")
    client.create_version("fra ud/x", "v1", schema={"columns": []})
    assert [(r.method, r.path) for r in receiver.requests] == [
        ("POST", "/api/v1/models"), ("POST", "/api/v1/models/fra%20ud%2Fx/versions")]
    assert receiver.requests[0].json() == {"name": "fraud", "task": "binary"}
    assert receiver.requests[1].json() == {"version": "v1", "schema": {"columns": []}}
    assert receiver.requests[0].headers["authorization"] == "Bearer k"


def test_reference_upload_is_parquet_with_query(receiver: Receiver, client: Client,
                                                tmp_path: Path) -> None:
    receiver.status, receiver.answer = 201, b'{"rows": 3}'
    assert client.upload_reference("fraud", "v1", pd.DataFrame(ROWS), target="ok",
                                   scores=["amount", "n"], segments="country") == {"rows": 3}
    req = receiver.requests[0]
    assert req.method == "PUT" and req.headers["content-type"] == "application/vnd.apache.parquet"
    url = urlsplit(req.path)
    assert url.path == "/api/v1/models/fraud/versions/v1/reference"
    assert parse_qs(url.query) == {"target": ["ok"], "scores": ["amount,n"],
                                   "segments": ["country"]}
    assert P.read_parquet(req.body).equals(EXPECTED)
    (tmp_path / "ref.csv").write_text("a\n1\n")
    client.upload_reference("fraud", "v1", tmp_path / "ref.csv")
    assert receiver.requests[1].headers["content-type"] == "text/csv"
    assert receiver.requests[1].body == b"a\n1\n"


def test_rows_go_as_json_chunks_and_answers_are_summed(receiver: Receiver,
                                                        client: Client) -> None:
    rows = [{"prediction_id": f"p{i}", "features": {"x": np.float64(i)}, "timestamp": T0}
            for i in range(12_001)]
    rows[5]["version"] = "v0"
    answer = client.log_predictions("fraud", rows, version="v2")
    assert answer == {"received": 12_001, "accepted": 12_001, "duplicates": 0,
                      "quarantined": 0, "labels_joined": 0}
    sizes = [len(r.json()) for r in receiver.requests]
    assert sizes == [5000, 5000, 2001]
    sent = [row for r in receiver.requests for row in r.json()]
    assert [r["prediction_id"] for r in sent] == [f"p{i}" for i in range(12_001)]
    assert sent[5]["version"] == "v0" and sent[6]["version"] == "v2"
    assert sent[0]["timestamp"] == "2026-11-25T10:00:00Z" and sent[0]["features"] == {"x": 0.0}
    assert "version" not in rows[6]  # the caller's rows are untouched


def test_frames_go_as_arrow_stream_with_version_filled(receiver: Receiver,
                                                       client: Client) -> None:
    df = pl.DataFrame({"prediction_id": ["a", "b"], "version": ["v0", None], "x": [1.0, 2.0]})
    client.log_predictions("fraud", df, version="v2")
    client.log_labels("fraud", {"prediction_id": ["a", "b"], "label": [1, 0]})
    preds, labels = receiver.requests
    assert preds.headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert pa.ipc.open_stream(preds.body).read_all().to_pydict() == {
        "prediction_id": ["a", "b"], "version": ["v0", "v2"], "x": [1.0, 2.0]}
    assert labels.path == "/api/v1/models/fraud/labels"
    assert pa.ipc.open_stream(labels.body).read_all().to_pydict() == {
        "prediction_id": ["a", "b"], "label": [1, 0]}


def test_one_row_dict_is_a_row(receiver: Receiver, client: Client) -> None:
    client.log_labels("fraud", {"prediction_id": "a", "label": 1})
    assert receiver.requests[0].json() == [{"prediction_id": "a", "label": 1}]


def test_metrics_query_and_frame(receiver: Receiver, client: Client) -> None:
    receiver.answer = orjson.dumps({"model": "fraud", "metric": "drift", "points": [
        {"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T11:00:00Z", "rows": 10,
         "value": {"amount": {"psi": 0.1, "drifted": False}, "drifted": 0}},
        {"start": "2026-11-25T11:00:00Z", "end": "2026-11-25T12:00:00Z", "rows": 0,
         "value": {"amount": {"psi": None, "drifted": None}, "drifted": 0}},
    ]})
    frame = client.metrics_frame("fraud", "drift", start=T0, end="2026-11-26T10:00:00Z",
                                 step=dt.timedelta(hours=1), version="v1")
    assert list(frame.columns) == ["start", "end", "rows", "amount.psi", "amount.drifted",
                                   "drifted"]
    assert frame["start"].tolist() == [pd.Timestamp("2026-11-25T10:00:00Z"),
                                       pd.Timestamp("2026-11-25T11:00:00Z")]
    assert frame["rows"].tolist() == [10, 0]
    assert parse_qs(urlsplit(receiver.requests[0].path).query) == {
        "metric": ["drift"], "start": ["2026-11-25T10:00:00Z"], "end": ["2026-11-26T10:00:00Z"],
        "step": ["3600"], "version": ["v1"]}
    receiver.answer = orjson.dumps({"points": [
        {"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T11:00:00Z", "rows": 5,
         "value": 5}]})
    assert client.metrics_frame("fraud", "volume")["value"].tolist() == [5]
    receiver.answer = b'{"points": []}'
    assert list(client.metrics_frame("fraud", "volume").columns) == ["start", "end", "rows"]


def test_export_events_reads_parquet(receiver: Receiver, client: Client) -> None:
    receiver.answer, receiver.content_type = P.to_parquet(EXPECTED), P.PARQUET
    assert client.export_events("fraud", T0, T0 + dt.timedelta(days=1)).equals(EXPECTED)
    assert urlsplit(receiver.requests[0].path).path == "/api/v1/models/fraud/events"
