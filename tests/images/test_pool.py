"""Images measured in worker processes (aiwarden/images/_pool.py): the same table and
thumbnails as in the calling process, whatever the input; a full pool refuses with a retry
delay (429 through a real server, nothing stored); a killed worker costs no image.
"""

from __future__ import annotations

import io
import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aiwarden.images import DecodeFailure
from aiwarden.images._pool import CHUNK, MeasurePool, PoolBusy, measure, shared
from aiwarden.images.synthetic import fruit_jpeg
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for


def _items() -> list[object]:
    """More than a chunk: JPEGs, a large JPEG (drafted), PNG, grey, arrays with NaN, and
    every kind of failure."""
    rng = np.random.default_rng(3)
    out: list[object] = [fruit_jpeg(k, rng, 96) for k in ["banana", "cucumber"] * 36]
    big = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (700, 1100, 3), dtype=np.uint8)).save(big, "JPEG")
    png = io.BytesIO()
    Image.new("L", (40, 30), 90).save(png, "PNG")
    nan = rng.random((20, 24, 3))
    nan[0, 0, 0] = np.nan
    out += [big.getvalue(), png.getvalue(), nan, out[0][: len(out[0]) // 2], b"", b"text",
            DecodeFailure("bad_base64", "not base64")]
    return out


def _same(a: MeasurePool | object, b: object) -> None:
    ta, tb = a.table.columns, b.table.columns  # type: ignore[attr-defined]
    assert list(ta) == list(tb)
    for k in ta:
        if ta[k].dtype.kind == "f":
            np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)  # NaN equal to NaN
        else:
            assert ta[k].tolist() == tb[k].tolist(), k
    assert a.thumbnails == b.thumbnails  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def pool() -> Iterator[MeasurePool]:
    p = MeasurePool(1)
    assert p.ready(120), "the worker did not start"
    yield p
    p.close()


def test_workers_compute_what_the_calling_process_computes(pool: MeasurePool) -> None:
    items = _items()
    assert len(items) > CHUNK
    before = pool.counts["in_process"]
    got = pool.measure(items, 32)
    assert pool.counts["in_process"] == before  # measured in the worker
    want = measure(items, 32)
    _same(got, want)
    errors = got.table.columns["error"].tolist()
    assert errors[-4:] == ["truncated", "empty", "not_an_image", "bad_base64"]
    assert errors[:-4] == [None] * (len(items) - 4)
    assert got.thumbnails[-4:] == [None] * 4 and all(got.thumbnails[:-4])
    assert got.table.columns["non_finite"][-5] == 1


def test_workers_write_each_thumbnail_where_told(pool: MeasurePool, tmp_path: Path) -> None:
    """The worker that made a thumbnail writes it (the server process then creates no
    file): the same bytes as made in the calling process, none where no path or image."""
    items = _items()
    keep_at = [None if i % 7 == 0 else str(tmp_path / "m" / f"{i}.jpg")
               for i in range(len(items))]
    want = measure(items, 32)
    before = pool.counts["in_process"]
    got = pool.measure(items, 32, keep_at=keep_at)
    assert pool.counts["in_process"] == before  # the worker wrote them
    written = {int(p.stem) for p in (tmp_path / "m").glob("*.jpg")}
    expected = {i for i, t in enumerate(want.thumbnails) if t and keep_at[i]}
    assert written == expected and got.kept == len(expected) and max(expected) >= CHUNK
    for i, thumb in enumerate(got.thumbnails):
        if i in expected:
            assert thumb is None and (tmp_path / "m" / f"{i}.jpg").read_bytes() == \
                want.thumbnails[i]
        else:
            assert thumb == want.thumbnails[i]  # returned, as without keep_at
    assert not list((tmp_path / "m").glob("*.tmp"))  # no half-written file left


def test_a_full_pool_refuses_with_a_retry_delay() -> None:
    p = MeasurePool(0, max_inflight=2, max_wait=0.01)
    with p.slot(), p.slot():
        with pytest.raises(PoolBusy) as err:
            p.measure([b"x"])
        assert 1 <= err.value.retry_after <= 60 and "retry in" in str(err.value)
    assert p.counts["refused"] == 1
    assert p.measure([b"x"]).table.columns["error"].tolist() == ["not_an_image"]


def test_a_killed_worker_costs_no_image(pool: MeasurePool) -> None:
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):  # the executor notices the death and reaps the process
        if pid not in pool.worker_pids():
            break
        time.sleep(0.05)
    items = _items()[:10]
    _same(pool.measure(items, 16), measure(items, 16))  # here, or in a new worker
    assert pool.ready(120)
    (again,) = pool.worker_pids()
    assert again != pid
    before = pool.counts["in_process"]
    _same(pool.measure(items, 16), measure(items, 16))
    assert pool.counts["in_process"] == before


def test_a_server_answers_429_when_image_measuring_is_saturated() -> None:
    shared_pool = shared()
    rng = np.random.default_rng(5)
    data = [fruit_jpeg("banana", rng, 64) for _ in range(3)]
    metas = [{"prediction_id": f"p{i}", "prediction": 1} for i in range(3)]  # a class of the model
    name = f"busy-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, ThreadServer(settings_for(
            f"sqlite:///{tmp}/b.db", Path(tmp), evaluate_every=0)) as srv, httpx.Client(
            base_url=srv.url + "/api/v1", timeout=60) as http:
        register_model(http, name)

        def post() -> httpx.Response:
            return http.post(f"/models/{name}/images", data={"metadata": json.dumps(metas)},
                             files=[("files", (f"{i}.jpg", d, "image/jpeg"))
                                    for i, d in enumerate(data)])

        held = [shared_pool.slot() for _ in range(shared_pool.max_inflight)]
        for h in held:
            h.__enter__()
        try:
            r = post()
        finally:
            for h in held:
                h.__exit__(None, None, None)
        assert r.status_code == 429, r.text
        assert r.json()["detail"]["error"] == "overloaded"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert _stored(http, name) == []  # nothing of the refused request
        ok = post()
        assert ok.status_code == 200, ok.text
        assert ok.json()["accepted"] == 3 and ok.json()["thumbnails"] == 3
        assert _stored(http, name) == ["p0", "p1", "p2"]


def _stored(http: httpx.Client, name: str) -> list[str]:
    r = http.get(f"/models/{name}/events", params={"start": 0})
    if r.status_code == 404 or not r.content:
        return []
    assert r.status_code == 200, r.text
    return sorted(pq.read_table(io.BytesIO(r.content)).column("prediction_id").to_pylist())
