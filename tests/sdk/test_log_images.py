"""Client.log_images against a real server (SQLite and PostgreSQL) whose request budget is
1 megapixel: bytes and files logged and counted; a bad image's ``errors`` row and a
duplicate's ``findings`` index counted from the start of the caller's list across requests;
a batch beyond the pixel budget split where the 413 says, until every image is stored; a
body beyond the server's size limit halved; a missing file refused before any request;
artifact-store URIs sent as JSON rows (when the route reads ``image_uri``). Requests are
observed with httpx's response hook on the client's own connection pool."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from aiwarden.errors import DataError
from aiwarden.images.synthetic import fruit_image, fruit_jpeg
from aiwarden.sdk.client import Client
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

SIDE = 600  # 0.36 M pixels a PNG: two fit the 1.0 M request budget, three do not
PER_REQUEST = 1.0  # megapixels


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"), evaluate_every=0,
                                   image_request_megapixels=PER_REQUEST)) as srv:
        yield srv


@pytest.fixture(scope="module")
def model(server: ThreadServer) -> str:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"brightness": rng.uniform(0.5, 0.9, 50), "pred": "banana"})
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        return register_model(http, f"sdk-img-{uuid.uuid4().hex[:8]}", ref,
                              {"prediction": "pred"})


class Traffic(list[tuple[str, int]]):
    """(request content type, answer status) of every request the client sent."""

    def __call__(self, response: httpx.Response) -> None:
        kind = response.request.headers.get("content-type", "").split(";")[0]
        self.append((kind, response.status_code))


@pytest.fixture
def client(server: ThreadServer) -> Iterator[tuple[Client, Traffic]]:
    traffic = Traffic()
    with Client(server.url, timeout=120) as c:
        c._http.event_hooks["response"] = [traffic]
        yield c, traffic


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    rng = np.random.default_rng(16)
    return [fruit_jpeg(k, rng, 96) for k in ("banana", "cucumber") * 5]


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    rng = np.random.default_rng(5)
    out = []
    for kind in ("banana", "cucumber") * 3:
        buf = io.BytesIO()
        fruit_image(kind, rng, SIDE).save(buf, "PNG")  # type: ignore[attr-defined]
        out.append(buf.getvalue())
    return out


def _rows(tag: str, n: int, t0: float) -> list[dict[str, Any]]:
    return [{"prediction_id": f"{tag}{i}", "timestamp": t0 + i, "prediction": "banana"}
            for i in range(n)]


def _stored(c: Client, model: str, tag: str, t0: float) -> list[str]:
    ids = c.export_events(model, t0 - 1, t0 + 3600).column("prediction_id").to_pylist()
    return sorted((p for p in ids if p.startswith(tag)), key=lambda p: int(p[len(tag):]))


def test_bytes_and_files_are_logged_and_counted(
        client: tuple[Client, Traffic], model: str, jpegs: list[bytes], tmp_path: Path) -> None:
    c, traffic = client
    paths = []
    for i, data in enumerate(jpegs[:4]):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(data)
    images = [jpegs[4], paths[0], str(paths[1]), jpegs[5], paths[2], str(paths[3]), jpegs[6]]
    t0 = float(int(time.time()) - 7200)
    seen: list[tuple[int, int]] = []
    out = c.log_images(model, images, _rows("ok", 7, t0), version="v1", batch_size=3,
                       progress=lambda sent, total: seen.append((sent, total)))
    assert {k: out[k] for k in ("received", "accepted", "quarantined", "duplicates", "images",
                                "images_quarantined", "thumbnails")} == {
        "received": 7, "accepted": 7, "quarantined": 0, "duplicates": 0, "images": 7,
        "images_quarantined": 0, "thumbnails": 7}
    assert out["errors"] == []
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert traffic == [("multipart/form-data", 200)] * 3  # no URI: no base64
    assert _stored(c, model, "ok", t0) == [f"ok{i}" for i in range(7)]


def test_errors_and_findings_count_from_the_start_of_the_list(
        client: tuple[Client, Traffic], model: str, jpegs: list[bytes]) -> None:
    c, traffic = client
    # batches of 3: [0 1 2] [3 bad 5] [6 7=dup of 6 8]
    images = [jpegs[0], jpegs[1], jpegs[2], jpegs[3], b"not an image", jpegs[5], jpegs[6],
              jpegs[6], jpegs[7]]
    t0 = float(int(time.time()) - 10800)
    out = c.log_images(model, images, _rows("q", 9, t0), batch_size=3)
    assert len(traffic) == 3
    assert (out["received"], out["accepted"], out["quarantined"]) == (9, 8, 1), out
    (err,) = out["errors"]
    assert (err["row"], err["prediction_id"], err["field"]) == (4, "q4", "image"), err
    assert err["reason"].startswith("not_an_image:")
    dup = [f for f in out["findings"] if f["reason"] == "exact_duplicate"]
    assert [(f["index"], f["related"]) for f in dup] == [(7, 6)], out["findings"]
    assert _stored(c, model, "q", t0) == [f"q{i}" for i in range(9) if i != 4]


def test_rows_without_ids_get_the_image_hash_so_a_resend_is_a_duplicate(
        client: tuple[Client, Traffic], model: str, jpegs: list[bytes]) -> None:
    c, _ = client
    images = jpegs[8:10]
    first = c.log_images(model, images, batch_size=1)
    again = c.log_images(model, images)
    assert (first["accepted"], first["duplicates"]) == (2, 0), first
    assert (again["accepted"], again["duplicates"]) == (0, 2), again


def test_a_batch_beyond_the_pixel_budget_is_split_where_the_413_says(
        client: tuple[Client, Traffic], model: str, pngs: list[bytes]) -> None:
    c, traffic = client
    images = [*pngs[:5], b"not an image"]  # 1.8 M pixels in one batch of 64
    t0 = float(int(time.time()) - 14400)
    seen: list[int] = []
    out = c.log_images(model, images, _rows("px", 6, t0),
                       progress=lambda sent, _total: seen.append(sent))
    # [0..5] 413 at files[2] -> [0 1] stored; [2..5] 413 at files[2] -> [2 3]; [4 5]
    assert [s for _, s in traffic] == [413, 200, 413, 200, 200]
    assert (out["received"], out["accepted"], out["images"]) == (6, 5, 6), out
    assert [(e["row"], e["prediction_id"]) for e in out["errors"]] == [(5, "px5")]
    assert seen == [2, 4, 6]
    assert _stored(c, model, "px", t0) == [f"px{i}" for i in range(5)]


def test_a_body_beyond_the_servers_limit_is_halved(
        db_url: str, tmp_path: Path, model: str, server: ThreadServer) -> None:
    rng = np.random.default_rng(9)
    images = [fruit_jpeg(k, rng, 400) for k in ("banana", "cucumber") * 2]  # ~22 kB each
    limit = 2.5 * max(map(len, images)) / 2**20  # two fit in one body, four do not
    traffic = Traffic()
    with ThreadServer(settings_for(db_url, tmp_path, evaluate_every=0,
                                   max_body_mb=limit)) as small, Client(small.url) as c:
        c._http.event_hooks["response"] = [traffic]
        t0 = float(int(time.time()) - 25200)
        out = c.log_images(model, images, _rows("body", 4, t0))
        assert [s for _, s in traffic] == [413, 200, 200]
        assert (out["received"], out["accepted"]) == (4, 4), out
        assert _stored(c, model, "body", t0) == [f"body{i}" for i in range(4)]


def test_a_missing_file_raises_before_anything_is_sent(
        client: tuple[Client, Traffic], model: str, jpegs: list[bytes], tmp_path: Path) -> None:
    c, traffic = client
    there = tmp_path / "there.jpg"
    there.write_bytes(jpegs[0])
    gone = tmp_path / "gone.jpg"
    t0 = float(int(time.time()) - 18000)
    with pytest.raises(DataError, match=r"images\[2\]") as exc:
        c.log_images(model, [jpegs[1], there, gone, jpegs[2]], _rows("gone", 4, t0),
                     batch_size=1)
    assert str(gone) in str(exc.value) and exc.value.field == "images[2]"
    assert traffic == []
    assert _stored(c, model, "gone", t0) == []


def test_rows_of_another_length_are_refused(client: tuple[Client, Traffic],
                                            model: str, jpegs: list[bytes]) -> None:
    c, traffic = client
    with pytest.raises(ValueError, match="3 images and 2 rows"):
        c.log_images(model, jpegs[:3], _rows("len", 2, 0.0))
    assert traffic == []


def test_artifact_uris_go_as_json_rows_and_split_like_bytes(
        server: ThreadServer, client: tuple[Client, Traffic], model: str,
        pngs: list[bytes], jpegs: list[bytes]) -> None:
    from aiwarden.server.registry_routes import registry_for

    c, traffic = client
    store = registry_for(server.server.config.app).store  # the store the server reads
    folder = f"images/sdk/{uuid.uuid4().hex[:8]}"
    for i, data in enumerate(pngs[:3]):
        store.put(f"{folder}/{i}.png", data)
    images = [f"artifacts://{folder}/{i}.png" for i in range(3)]
    images += [jpegs[0], f"artifacts://{folder}/absent.png"]
    t0 = float(int(time.time()) - 21600)
    out = c.log_images(model, images, _rows("uri", 5, t0))
    # [0..4] 413 at rows[2].image -> [0 1]; then [2 3 4] (1 PNG, a JPEG, nothing) fits
    assert traffic == [("application/json", 413), ("application/json", 200),
                       ("application/json", 200)]
    assert (out["received"], out["accepted"], out["quarantined"]) == (5, 4, 1), out
    (err,) = out["errors"]
    assert (err["row"], err["prediction_id"]) == (4, "uri4")
    assert err["reason"].startswith("missing_file:"), err
    assert _stored(c, model, "uri", t0) == [f"uri{i}" for i in range(4)]
