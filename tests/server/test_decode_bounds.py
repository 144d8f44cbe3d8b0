"""Table bodies are bounded by what they decode to, not by their compressed size (review
2026-12-06, finding 3: a 455 KB Parquet of 50 M rows grew the server to 12 GB).

Each body here is small and highly compressible; the server refuses it with 413 naming the
limit, from the body's metadata, before decoding it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.server.live import ThreadServer, settings_for

PARQUET, ARROW = "application/vnd.apache.parquet", "application/vnd.apache.arrow.stream"
ROWS, MB = 5000, 1.0  # the test server's bounds: rows and decoded megabytes per body


@pytest.fixture(scope="module")
def api(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("bounds")
    with ThreadServer(settings_for(db_url, tmp, max_rows=ROWS, max_decoded_mb=MB)) as srv:
        base = f"{srv.url}/api/v1"
        r = httpx.post(f"{base}/models", json={"name": "pb", "task": "regression"})
        assert r.status_code == 201, r.text
        yield base


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def arrow(table: pa.Table, *, file: bool = False) -> bytes:
    sink = io.BytesIO()
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema,
                                                          options=opts) as w:
        w.write_table(table)
    return sink.getvalue()


def zeros(rows: int, columns: int = 1) -> pa.Table:
    return pa.table({"prediction_id": pa.array(np.arange(rows).astype(str)),
                     **{f"x{i}": np.zeros(rows) for i in range(columns)}})


def post(url: str, body: bytes, media: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": media}, timeout=60)


def assert_413(r: httpx.Response, setting: str) -> None:
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "too_much_data" and setting in detail["message"], detail


def test_the_reviewers_parquet_bomb_is_refused_on_default_limits(
        db_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """1.1 M constant rows (the default bound is 1 M) in a few KB of Parquet."""
    n = 1_100_000
    body = parquet(pa.table({"prediction_id": np.zeros(n, dtype=np.int64), "x": np.zeros(n)}))
    assert len(body) < 100_000
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("defaults"))) as srv:
        base = f"{srv.url}/api/v1"
        assert httpx.post(f"{base}/models", json={"name": "pbd"}).status_code == 201
        assert_413(post(f"{base}/models/pbd/predictions", body, PARQUET), "AIWARDEN_MAX_ROWS")


@pytest.mark.parametrize("kind", ["predictions", "labels"])
def test_too_many_rows_are_refused_in_every_format(api: str, kind: str) -> None:
    url = f"{api}/models/pb/{kind}"
    table = zeros(ROWS + 1)
    if kind == "labels":
        table = pa.table({"prediction_id": table.column(0), "label": np.zeros(ROWS + 1)})
    csv = b"prediction_id,label\n" + b"a,1\n" * (ROWS + 1)
    json_rows = [{"prediction_id": str(i), "label": 1.0} for i in range(ROWS + 1)]
    for body, media in ((parquet(table), PARQUET), (arrow(table), ARROW),
                        (arrow(table, file=True), "application/vnd.apache.arrow.file"),
                        (csv, "text/csv")):
        assert_413(post(url, body, media), "AIWARDEN_MAX_ROWS")
    assert_413(httpx.post(url, json=json_rows, timeout=60), "AIWARDEN_MAX_ROWS")


def test_too_many_decoded_bytes_are_refused(api: str) -> None:
    """Under the row bound, 40 float columns decode to 1.5 MB (the bound is 1 MB)."""
    table = zeros(ROWS, columns=40)
    for body, media in ((parquet(table), PARQUET), (arrow(table), ARROW)):
        assert len(body) < MB * 2**20 / 4  # compressed, far below the decoded bound
        assert_413(post(f"{api}/models/pb/predictions", body, media),
                   "AIWARDEN_MAX_DECODED_MB")


def test_references_are_bounded_too(api: str) -> None:
    url = f"{api}/models/pb/versions/v1/reference"
    assert httpx.post(f"{api}/models/pb/versions", json={"version": "v1"}).status_code == 201
    table = pa.table({"x": np.zeros(ROWS + 1), "prediction": np.zeros(ROWS + 1)})
    r = httpx.put(url, content=parquet(table), headers={"content-type": PARQUET}, timeout=60)
    assert_413(r, "AIWARDEN_MAX_ROWS")
    wide = pa.table({f"x{i}": np.zeros(ROWS) for i in range(40)})
    r = httpx.put(url, content=arrow(wide), headers={"content-type": ARROW}, timeout=60)
    assert_413(r, "AIWARDEN_MAX_DECODED_MB")
    r = httpx.put(url, json=[{"x": 0.0, "prediction": 0.0}] * (ROWS + 1), timeout=60)
    assert_413(r, "AIWARDEN_MAX_ROWS")


def test_bodies_within_the_bounds_are_ingested(api: str) -> None:
    table = zeros(ROWS, columns=2)
    for i, (body, media) in enumerate(((parquet(table), PARQUET), (arrow(table), ARROW))):
        ids = pa.array([f"ok{i}-{j}" for j in range(ROWS)])
        body = (parquet if media == PARQUET else arrow)(table.set_column(0, "prediction_id",
                                                                         ids))
        r = post(f"{api}/models/pb/predictions", body, media)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == ROWS, r.json()
