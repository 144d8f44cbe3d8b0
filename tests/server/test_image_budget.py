"""Image ingest admits requests by decoded pixels (read from headers) over real HTTP: beyond
one request's budget 413 naming the first image beyond it, nothing stored; beyond what the
requests in flight may hold 429 with Retry-After naming it, then admitted once room frees;
a single image larger than the whole budget quarantined; a large JPEG counted at its draft
scale. A server without Pillow answers 501 naming the extra (a subprocess server whose
Pillow import fails, its workers' too)."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from aiwarden.images._budget import PixelBudget, PixelsBusy, TooManyPixels
from aiwarden.images._decode import decoded_pixels
from aiwarden.images.synthetic import fruit_image
from aiwarden.server.settings import ServerSettings
from tests.server.conftest import register_model
from tests.server.live import ProcessServer, ThreadServer, database_url, settings_for

SIDE = 600  # 0.36 M pixels a PNG
PER_REQUEST, IN_FLIGHT = 1.0, 1.5  # megapixels


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("budget")
    with database_url("sqlite", tmp) as url, ThreadServer(settings_for(
            url, tmp, evaluate_every=0, image_request_megapixels=PER_REQUEST,
            image_inflight_megapixels=IN_FLIGHT)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as c:
        yield c


def _encode(im: Any, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    rng = np.random.default_rng(5)
    return [_encode(fruit_image(k, rng, SIDE), "PNG") for k in ("banana", "cucumber") * 2]


@pytest.fixture(scope="module")
def model(http: httpx.Client) -> str:
    import pandas as pd

    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"brightness": rng.uniform(0.5, 0.9, 50), "pred": "banana"})
    return register_model(http, f"budget-{uuid.uuid4().hex[:8]}", ref, {"prediction": "pred"})


def _rows(images: list[bytes], tag: str, t0: float) -> dict[str, Any]:
    return {"rows": [{"prediction_id": f"{tag}{i}", "timestamp": t0 + i,
                      "prediction": "banana", "image": b64encode(im).decode()}
                     for i, im in enumerate(images)]}


def _stored(http: httpx.Client, model: str, t0: float) -> list[str]:
    r = http.get(f"/models/{model}/events", params={"start": t0 - 1})
    assert r.status_code == 200, r.text
    return sorted(pq.read_table(io.BytesIO(r.content)).column("prediction_id").to_pylist())


def test_the_header_count_is_what_decode_decodes(pngs: list[bytes]) -> None:
    assert decoded_pixels(pngs[0]) == SIDE * SIDE
    big = _encode(fruit_image("banana", np.random.default_rng(1), 224).resize((2000, 1600)),
                  "JPEG")
    assert decoded_pixels(big) == 1000 * 800  # draft mode decodes it at 1/2 scale
    assert decoded_pixels(b"not an image") == 0
    assert decoded_pixels(pngs[0], max_pixels=SIDE * SIDE - 1) == 0  # refused, not decoded


def test_a_request_beyond_its_budget_is_413_naming_the_image_and_stores_nothing(
        http: httpx.Client, model: str, pngs: list[bytes]) -> None:
    t0 = float(int(time.time()) - 3600)
    r = http.post(f"/models/{model}/images", json=_rows(pngs[:3], "over", t0))
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert (detail["error"], detail["field"]) == ("too_many_pixels", "rows[2].image")
    assert "1.1 M" in detail["message"] and "image_request_megapixels" in detail["message"]
    assert [p for p in _stored(http, model, t0) if p.startswith("over")] == []
    # split as the answer says: both parts are stored
    for part, tag in ((pngs[:2], "p"), (pngs[2:3], "q")):
        r = http.post(f"/models/{model}/images", json=_rows(part, tag, t0 + 100))
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(part)
    assert [p for p in _stored(http, model, t0) if p[0] in "opq"] == ["p0", "p1", "q0"]


def test_multipart_names_the_file(http: httpx.Client, model: str, pngs: list[bytes]) -> None:
    import json

    metas = [{"prediction_id": f"m{i}", "prediction": "banana"} for i in range(3)]
    r = http.post(f"/models/{model}/images", data={"metadata": json.dumps(metas)},
                  files=[("files", (f"{i}.png", im, "image/png"))
                         for i, im in enumerate(pngs[:3])])
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["field"] == "files[2]"
    assert "files[2:]" in r.json()["detail"]["message"]


def test_one_image_beyond_the_whole_budget_is_quarantined_a_large_jpeg_counts_drafted(
        http: httpx.Client, model: str, pngs: list[bytes]) -> None:
    rng = np.random.default_rng(2)
    huge = _encode(fruit_image("banana", rng, 224).resize((1100, 1000)), "PNG")  # 1.1 M
    jpeg = _encode(fruit_image("banana", rng, 224).resize((2400, 2000)), "JPEG")  # 4.8 M
    t0 = float(int(time.time()) - 7200)
    r = http.post(f"/models/{model}/images", json=_rows([huge, jpeg, pngs[0]], "h", t0))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["quarantined"]) == (2, 1), out["errors"]
    (err,) = out["errors"]
    assert err["prediction_id"] == "h0" and err["reason"].startswith("too_many_pixels:")


def test_beyond_the_pixels_in_flight_429_with_retry_after_then_admitted(
        server: ThreadServer, http: httpx.Client, model: str, pngs: list[bytes]) -> None:
    t0 = float(int(time.time()) - 10800)
    http.post(f"/models/{model}/images", json=_rows(pngs[:1], "warm", t0)).raise_for_status()
    budget: PixelBudget = server.server.config.app.state.image_pixels
    assert (budget.per_request, budget.in_flight) == (1_000_000, 1_500_000)
    holding, release = threading.Event(), threading.Event()

    def other_request() -> None:  # another request being measured: 1.0 M of the 1.5 M
        with budget.hold([1_000_000]):
            holding.set()
            release.wait(60)

    t = threading.Thread(target=other_request)
    t.start()
    try:
        assert holding.wait(10)
        r = http.post(f"/models/{model}/images", json=_rows(pngs[:2], "busy", t0 + 10))
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        detail = r.json()["detail"]
        assert (detail["error"], detail["field"]) == ("overloaded", "rows[1].image")
        assert "image_inflight_megapixels" in detail["message"]
        one = http.post(f"/models/{model}/images", json=_rows(pngs[:1], "fits", t0 + 20))
        assert one.status_code == 200, one.text  # 0.36 M fits beside the 1.0 M
    finally:
        release.set()
        t.join(30)
    r = http.post(f"/models/{model}/images", json=_rows(pngs[:2], "busy", t0 + 10))
    assert r.status_code == 200, r.text
    assert budget.used == 0
    got = [p for p in _stored(http, model, t0) if p.startswith(("busy", "fits", "warm"))]
    assert got == ["busy0", "busy1", "fits0", "warm0"]


def test_the_budget_waits_for_room_and_refuses_what_never_fits() -> None:
    b = PixelBudget(per_request=100, in_flight=150, max_wait=5)
    with pytest.raises(TooManyPixels) as exc:
        b.check([60, 30, 20])
    assert exc.value.index == 2
    done = threading.Event()
    with b.hold([100]):
        def later() -> None:
            with b.hold([40, 40]):  # waits until the first is done
                done.set()
        t = threading.Thread(target=later)
        t.start()
        assert not done.wait(0.3)
        assert b.used == 100
    t.join(10)
    assert done.is_set() and b.used == 0
    quick = PixelBudget(per_request=100, in_flight=150, max_wait=0)
    with quick.hold([100]):
        with pytest.raises(PixelsBusy) as busy:
            quick.hold([30, 30]).__enter__()
        assert busy.value.index == 1 and quick.used == 100
    assert PixelBudget(0, 0).check([10**12]) == 10**12  # 0: no bound


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIWARDEN_IMAGE_REQUEST_MEGAPIXELS", "12.5")
    monkeypatch.setenv("AIWARDEN_IMAGE_INFLIGHT_MEGAPIXELS", "0")
    s = ServerSettings.from_env()
    assert (s.image_request_megapixels, s.image_inflight_megapixels) == (12.5, 0.0)


def test_a_server_without_pillow_answers_501_naming_the_extra(
        tmp_path: Path, pngs: list[bytes]) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    # every interpreter of this server (its spawned workers too) fails to import Pillow
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['PIL'] = None\n")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(hide), os.environ.get("PYTHONPATH"))
                                         if p), "AIWARDEN_EVALUATE_EVERY": "0"}
    srv = ProcessServer(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, extra_env=env)
    srv.start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as c:
            c.post("/models", json={"name": "nopil"}).raise_for_status()
            r = c.post("/models/nopil/images", json=_rows(pngs[:1], "x", time.time()))
            assert r.status_code == 501, r.text
            detail = r.json()["detail"]
            assert detail["error"] == "missing_extra"
            assert "pip install 'aiwarden[images]'" in detail["message"]
            assert "\n" not in detail["message"]
            # the rest of the server works
            assert c.get("/models/nopil").status_code == 200
    finally:
        srv.stop()
