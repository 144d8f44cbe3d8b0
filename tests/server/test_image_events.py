"""Image events over real HTTP (SQLite and PostgreSQL): properties logged as ordinary numeric
features equal aiwarden.images' own computation; dark bananas drift ``brightness``; a
truncated JPEG, a non-image, bad base64 and a black frame are quarantined with the reason
while the batch's other rows are stored; thumbnails are served safely; malformed requests
are 4xx naming the field; a cross-site POST is refused.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aiwarden.images import properties
from aiwarden.images.synthetic import fruit_jpeg, to_jpeg
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

SIZE = 96
FEATURES = ["brightness", "contrast", "sharpness", "saturation", "mean_r", "mean_g", "mean_b",
            "entropy"]
HOUR = 3600


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   evaluate_every=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def _fruit(rng: np.random.Generator, n: int, light: float = 1.0) -> tuple[list[str], list[bytes]]:
    kinds = rng.choice(["banana", "cucumber"], n).tolist()
    return kinds, [fruit_jpeg(k, rng, SIZE, light) for k in kinds]


@pytest.fixture(scope="module")
def kiosk(http: httpx.Client) -> dict[str, Any]:
    """A fruit classifier whose reference is 60 well-lit images' properties; hour 0 sends 20
    well-lit images (multipart) plus a truncated JPEG and a text file, hour 1 sends 20 dark
    bananas (JSON, base64) plus bad base64 and a black frame."""
    rng = np.random.default_rng(16)
    name = f"fruit-{uuid.uuid4().hex[:8]}"
    kinds, ref_images = _fruit(rng, 60)
    ref = properties(ref_images).to_pandas()[FEATURES]
    ref["store"] = rng.choice(["s1", "s2"], len(ref))
    ref["pred"] = kinds
    register_model(http, name, ref, {"prediction": "pred"})
    t0 = float(int(time.time()) // 60 * 60 - 3 * HOUR)

    kinds, good = _fruit(rng, 20)
    truncated = fruit_jpeg("banana", rng, SIZE)
    truncated = truncated[: len(truncated) // 2]
    files = [*good, truncated, b"store,brightness\ns1,0.5\n"]
    pids = [f"a{i}" for i in range(len(files))]
    metas = [{"prediction_id": p, "timestamp": t0 + 60 + i, "prediction": "banana",
              "features": {"store": "s1"}} for i, p in enumerate(pids)]
    first = http.post(f"/models/{name}/images", files=[
        ("files", (f"{p}.jpg", data, "image/jpeg")) for p, data in zip(pids, files, strict=True)
    ], data={"metadata": json.dumps(metas)})
    assert first.status_code == 200, first.text

    _, dark = _fruit(rng, 20, light=0.35)
    black = to_jpeg(Image.new("RGB", (SIZE, SIZE)))
    texts = [b64encode(d).decode() for d in [*dark, black]] + ["not base64 at all!"]
    rows = [{"prediction_id": f"b{i}", "timestamp": t0 + HOUR + 60 + i,
             "prediction": "cucumber", "features": {"store": "s2"}, "image": t}
            for i, t in enumerate(texts)]
    second = http.post(f"/models/{name}/images", json={"rows": rows})
    assert second.status_code == 200, second.text
    return {"name": name, "t0": t0, "good": good, "dark": dark, "first": first.json(),
            "second": second.json()}


def test_bad_images_are_quarantined_with_the_reason_and_the_rest_stored(
        kiosk: dict[str, Any]) -> None:
    first, second = kiosk["first"], kiosk["second"]
    assert (first["images"], first["accepted"], first["quarantined"]) == (22, 20, 2)
    reasons = {e["prediction_id"]: (e["field"], e["reason"].split(":")[0])
               for e in first["errors"]}
    assert reasons == {"a20": ("image", "truncated"), "a21": ("image", "not_an_image")}
    assert (second["images"], second["accepted"], second["quarantined"]) == (22, 20, 2)
    reasons = {e["prediction_id"]: e["reason"].split(":")[0] for e in second["errors"]}
    assert reasons == {"b20": "constant", "b21": "bad_base64"}


def test_quarantine_lists_the_images_with_their_reasons(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    out = http.get(f"/models/{kiosk['name']}/images/quarantined").json()
    got = {i["prediction_id"]: (i["reason"].split(":")[0], i["thumbnail"])
           for i in out["images"]}
    assert got == {"a20": ("truncated", False), "a21": ("not_an_image", False),
                   "b20": ("constant", True), "b21": ("bad_base64", False)}
    generic = http.get(f"/models/{kiosk['name']}/quarantine").json()
    assert {q["prediction_id"] for q in generic} == {"a20", "a21", "b20", "b21"}, generic


def test_stored_properties_equal_the_image_package(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    r = http.get(f"/models/{kiosk['name']}/events", params={"start": kiosk["t0"]})
    assert r.status_code == 200, r.text
    stored = pq.read_table(io.BytesIO(r.content)).to_pandas().set_index("prediction_id")
    assert len(stored) == 40
    want = properties(kiosk["good"] + kiosk["dark"]).to_pandas()
    want.index = [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)]
    for col in FEATURES:
        np.testing.assert_allclose(stored.loc[want.index, col].to_numpy(float),
                                   want[col].to_numpy(float), rtol=1e-12, err_msg=col)
    assert set(stored.loc[[f"b{i}" for i in range(20)], "store"]) == {"s2"}


def _drift(http: httpx.Client, kiosk: dict[str, Any], hour: int) -> dict[str, Any]:
    start = kiosk["t0"] + hour * HOUR
    r = http.get(f"/models/{kiosk['name']}/metrics", params={
        "metric": "drift", "start": start, "end": start + HOUR})
    assert r.status_code == 200, r.text
    (point,) = r.json()["points"]
    return point["value"]


def test_dark_bananas_drift_brightness(http: httpx.Client, kiosk: dict[str, Any]) -> None:
    lit, dark = _drift(http, kiosk, 0), _drift(http, kiosk, 1)
    assert lit["n_current"] == dark["n_current"] == 20
    assert "brightness" not in lit["drifted_features"]
    assert "brightness" in dark["drifted_features"]
    assert dark["columns"]["brightness"]["value"] > lit["columns"]["brightness"]["value"]


def test_thumbnails_are_served_small_and_safe(http: httpx.Client,
                                              kiosk: dict[str, Any]) -> None:
    name = kiosk["name"]
    for pid in ("a0", "b20"):
        r = http.get(f"/models/{name}/images/{pid}/thumbnail")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["x-content-type-options"] == "nosniff"
        im = Image.open(io.BytesIO(r.content))
        assert im.format == "JPEG" and max(im.size) <= 128
    for pid in ("a20", "nope", "..%2F..%2Fsecrets", "../../x"):
        r = http.get(f"/models/{name}/images/{pid}/thumbnail")
        assert r.status_code == 404, (pid, r.text)
    assert http.get("/models/no-such-model/images/a0/thumbnail").status_code == 404


@pytest.mark.parametrize(("kwargs", "status", "field"), [
    ({"files": [("files", ("x.jpg", b"x", "image/jpeg"))]}, 422, "metadata"),
    ({"files": [("files", ("x.jpg", b"x", "image/jpeg"))],
      "data": {"metadata": "[{}, {}]"}}, 422, "metadata"),
    ({"files": [("files", ("x.jpg", b"x", "image/jpeg"))],
      "data": {"metadata": "[1]"}}, 422, "metadata[0]"),
    ({"data": {"metadata": "[{}]"}, "files": [("other", ("x", b"x", "text/plain"))]},
     422, "files"),
    ({"json": {"rows": [{"prediction_id": "z"}]}}, 422, "rows[0].image"),
    ({"json": {"rows": []}}, 422, "rows"),
    ({"json": {"rows": ["x"]}}, 422, "rows[0]"),
    ({"content": b"{", "headers": {"content-type": "application/json"}}, 422, "body"),
])
def test_malformed_requests_are_4xx_naming_the_field(
        http: httpx.Client, kiosk: dict[str, Any], kwargs: dict[str, Any], status: int,
        field: str) -> None:
    r = http.post(f"/models/{kiosk['name']}/images", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"].startswith(field), r.text


def test_unknown_model_is_404(http: httpx.Client) -> None:
    r = http.post("/models/no-such-model/images", json={"rows": [{"image": "AAAA"}]})
    assert r.status_code == 404, r.text


def test_a_cross_site_post_is_refused_and_stores_nothing(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    name = kiosk["name"]
    meta = [{"prediction_id": "evil", "timestamp": kiosk["t0"] + 90}]
    r = http.post(f"/models/{name}/images", headers={"Origin": "http://evil.example"},
                  files=[("files", ("e.jpg", kiosk["good"][0], "image/jpeg"))],
                  data={"metadata": json.dumps(meta)})
    assert r.status_code == 403, r.text
    assert r.json()["detail"]["error"] == "cross_site"
    assert http.get(f"/models/{name}/images/evil/thumbnail").status_code == 404


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape) and
    whose pixel data is a few bytes: nothing may be allocated for the claimed size."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_a_pixel_bomb_is_quarantined_and_the_batch_kept(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    bomb = b64encode(_png_header_only(20_000, 20_000)).decode()
    good = b64encode(kiosk["good"][1]).decode()
    rows = [{"prediction_id": f"c{i}", "timestamp": kiosk["t0"] + 2 * HOUR + i,
             "prediction": "banana", "features": {"store": "s1"}, "image": img}
            for i, img in enumerate([bomb, good])]
    r = http.post(f"/models/{kiosk['name']}/images", json=rows)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["quarantined"]) == (1, 1), out
    (err,) = out["errors"]
    assert err["prediction_id"] == "c0" and err["reason"].startswith("too_many_pixels:")


def test_images_named_in_the_artifact_store_are_read_from_it(
        server: ThreadServer, http: httpx.Client, kiosk: dict[str, Any]) -> None:
    """``image_uri``: the server reads the key from its own artifact store (under images/);
    a key that is not there, a link out of the store and a file over the byte limit are
    quarantined with the reason, the batch's other rows stored with the same properties as
    the bytes would have had."""
    from pathlib import Path

    root = Path(server.settings.data_dir) / "artifacts"
    day = root / "images" / "kiosk" / "day1"
    day.mkdir(parents=True, exist_ok=True)
    good = kiosk["good"][2:5]
    for i, data in enumerate(good):
        (day / f"g{i}.jpg").write_bytes(data)
    outside = Path(server.settings.data_dir) / "secret.jpg"
    outside.write_bytes(good[0])
    (day / "link.jpg").symlink_to(outside)
    with (day / "huge.jpg").open("wb") as f:
        f.truncate(20_000_001)  # sparse: over the 20 MB limit
    keys = ["g0.jpg", "g1.jpg", "g2.jpg", "gone.jpg", "link.jpg", "huge.jpg"]
    rows = [{"prediction_id": f"u{i}", "timestamp": kiosk["t0"] + 2 * HOUR + 10 + i,
             "prediction": "banana", "features": {"store": "s1"},
             "image_uri": f"artifacts://images/kiosk/day1/{k}"} for i, k in enumerate(keys)]
    r = http.post(f"/models/{kiosk['name']}/images", json={"rows": rows})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["images"], out["accepted"], out["quarantined"]) == (6, 3, 3), out
    reasons = {e["prediction_id"]: e["reason"].split(":")[0] for e in out["errors"]}
    assert reasons == {"u3": "missing_file", "u4": "missing_file", "u5": "too_large_file"}
    said = {e["prediction_id"]: e["reason"] for e in out["errors"]}  # the decoder's sentence
    assert "'images/kiosk/day1/gone.jpg'" in said["u3"] and "20000000 bytes" in said["u5"]
    events = http.get(f"/models/{kiosk['name']}/events",
                      params={"start": kiosk["t0"] + 2 * HOUR + 10,
                              "end": kiosk["t0"] + 2 * HOUR + 20})
    stored = pq.read_table(io.BytesIO(events.content)).to_pandas().set_index("prediction_id")
    want = properties(good).to_pandas()
    for col in FEATURES:
        np.testing.assert_allclose(stored.loc[["u0", "u1", "u2"], col].to_numpy(float),
                                   want[col].to_numpy(float), rtol=1e-12, err_msg=col)
    assert http.get(f"/models/{kiosk['name']}/images/u1/thumbnail").status_code == 200
    assert http.get(f"/models/{kiosk['name']}/images/u4/thumbnail").status_code == 404


def test_a_model_artifact_under_images_is_never_read_as_an_image(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    """A registry model named ``images`` keeps its artifacts at ``images/<sha256>.skops``:
    an ingest key naming one gets a ``missing_file``, not a read of the model's bytes."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    r = http.post("/registry/models/images/versions", content=sio.dumps(model),
                  params={"format": "skops"},
                  headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    key = f"images/{r.json()['sha256']}.skops"
    rows = [{"prediction_id": "art-1", "timestamp": kiosk["t0"] + 2 * HOUR + 30,
             "prediction": "banana", "features": {"store": "s1"},
             "image_uri": f"artifacts://{key}"}]
    r = http.post(f"/models/{kiosk['name']}/images", json={"rows": rows})
    assert r.status_code == 200, r.text
    (err,) = r.json()["errors"]
    assert err["reason"].startswith("missing_file:") and "model artifact" in err["reason"]


def test_the_gallery_lists_an_image_far_outside_the_reference(
        server: ThreadServer, http: httpx.Client, kiosk: dict[str, Any]) -> None:
    """Static noise among fruit: its sharpness and entropy lie in the drift engine's far
    bins, so the gallery's outlier section shows it, naming the property; the well-lit
    fruit of the same hours are not listed."""
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(buf, "PNG")
    row = {"prediction_id": "static-1", "timestamp": time.time() - 60,
           "prediction": "banana", "features": {"store": "s1"},
           "image": b64encode(buf.getvalue()).decode()}
    fruit = [{**row, "prediction_id": f"lit-{i}", "image": b64encode(img).decode()}
             for i, img in enumerate(kiosk["good"][:3])]
    out = http.post(f"/models/{kiosk['name']}/images", json={"rows": [row, *fruit]}).json()
    assert out["accepted"] == 4, out
    page = httpx.get(f"{server.url}/models/{kiosk['name']}/images", timeout=60).text
    section = page.split('id="gallery-outliers"')[1].split("</ul>")[0]
    assert 'data-image="static-1"' in section and "far above the reference" in section
    assert "lit-" not in section


@pytest.mark.parametrize(("row", "field", "words"), [
    ({"image_uri": "file:///etc/passwd"}, "rows[0].image_uri", "other schemes"),
    ({"image_uri": "http://169.254.169.254/latest"}, "rows[0].image_uri", "other schemes"),
    ({"image_uri": "artifacts://images/../fraud/model.skops"}, "rows[0].image_uri", "'..'"),
    ({"image_uri": "artifacts://fraud/abc.skops"}, "rows[0].image_uri", "under 'images/'"),
    ({"image_uri": "artifacts://images//x.jpg"}, "rows[0].image_uri", "empty"),
    ({"image_uri": 7}, "rows[0].image_uri", "got int"),
    ({"image_uri": None}, "rows[0].image_uri", "got NoneType"),  # the long fuzz's ST201
    ({"image_uri": None, "image": ""}, "rows[0].image_uri", "not both"),
    ({"image_uri": "artifacts://images/a.jpg", "image": "AAAA"}, "rows[0].image_uri",
     "not both"),
])
def test_an_image_uri_outside_the_store_is_refused_naming_the_field(
        http: httpx.Client, kiosk: dict[str, Any], row: dict[str, Any], field: str,
        words: str) -> None:
    r = http.post(f"/models/{kiosk['name']}/images",
                  json={"rows": [{"prediction_id": "bad-uri", **row}]})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field and words in detail["message"], detail
    assert http.get(f"/models/{kiosk['name']}/images/bad-uri/thumbnail").status_code == 404


def test_a_multipart_upload_names_no_uri(http: httpx.Client, kiosk: dict[str, Any]) -> None:
    meta = [{"prediction_id": "mp", "image_uri": "artifacts://images/a.jpg"}]
    r = http.post(f"/models/{kiosk['name']}/images", data={"metadata": json.dumps(meta)},
                  files=[("files", ("a.jpg", kiosk["good"][0], "image/jpeg"))])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "metadata[0]", r.text


def test_a_store_that_fails_refuses_the_request_and_a_missing_key_does_not() -> None:
    """An object store that cannot be reached (S3 down, which cannot run here: a store whose
    reads raise stands in) is the server's problem: ArtifactStoreError (503), nothing stored;
    a key that is not there is the client's: that image alone is a ``missing_file``."""
    from aiwarden.monitoring.image_uris import StoredImage, read_stored
    from aiwarden.registry import ArtifactStoreError

    class Down:
        url = "s3://bucket"

        def head(self, key: str, limit: int) -> bytes | None:
            if key == "images/absent.jpg":
                return None
            raise ConnectionError("endpoint unreachable")

    out = read_stored(Down(), [b"x", StoredImage("images/absent.jpg")], 10)  # type: ignore[arg-type]
    assert out[0] == b"x" and out[1].reason == "missing_file"
    with pytest.raises(ArtifactStoreError, match="could not be read"):
        read_stored(Down(), [StoredImage("images/a.jpg"), StoredImage("images/b.jpg")], 10)  # type: ignore[arg-type]


def test_the_thumbnail_store_keeps_its_bounds(tmp_path: Any) -> None:
    import os

    from aiwarden.monitoring.image_events import ThumbnailStore

    store = ThumbnailStore(tmp_path, side=16, max_count=3, max_bytes=10_000_000,
                           max_age_s=3600)
    now = time.time()
    for i in range(5):
        store.save(1, f"p{i}", Image.new("RGB", (40, 20), (i * 40, 0, 0)))
        os.utime(store.path(1, f"p{i}"), (now - 100 + i, now - 100 + i))
    store.save(2, "other", Image.new("RGB", (8, 8)))
    assert store.prune(1, now) == 2
    assert [store.read(1, f"p{i}") is not None for i in range(5)] == [False, False, True,
                                                                        True, True]
    with Image.open(store.path(1, "p4")) as im:
        assert im.size == (16, 8)
    assert store.read(2, "other") is not None  # another model's bound is its own
    os.utime(store.path(1, "p2"), (now - 7200, now - 7200))  # past retention
    assert store.prune(1, now) == 1 and store.read(1, "p2") is None
    one = max(len(store.read(1, "p3")), len(store.read(1, "p4")))
    tight = ThumbnailStore(tmp_path, max_bytes=one)
    assert tight.prune(1, now) == 1  # bytes bound: only the newest fits
    assert store.read(1, "p4") is not None and store.read(1, "p3") is None
    assert store.path(1, "../../etc/passwd").parent == tmp_path / "1"


def test_thumbnails_are_pruned_every_twentieth_of_the_bound(tmp_path: Any) -> None:
    import os

    from aiwarden.monitoring.image_events import ThumbnailStore

    store = ThumbnailStore(tmp_path, side=8, max_count=40)  # a pass every 2 written
    folder = tmp_path / "1"
    store.save(1, "a", Image.new("RGB", (8, 8)))
    assert store.prune_due(1, 1) == 0  # 1 of 2: no pass yet
    for i in range(45):
        store.save(1, f"p{i}", Image.new("RGB", (8, 8)))
    assert len(list(folder.glob("*.jpg"))) == 46
    assert store.prune_due(1, 45) == 6 and len(list(folder.glob("*.jpg"))) == 40
    assert store.prune_due(2, 1) == 0  # each model counts its own
    stale, fresh = folder / "x.jpg.1.2.tmp", folder / "y.jpg.1.3.tmp"  # writes never finished
    stale.write_bytes(b"half"), fresh.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.prune(1) == 0 and not stale.exists() and fresh.exists()


def test_property_rows_equal_the_table_cell_by_cell() -> None:
    from aiwarden.images._properties import PropertyTable
    from aiwarden.monitoring.image_events import _property_rows

    cols = {"brightness": np.array([0.5, np.nan, 2.0]), "width": np.array([1.0, 2.0, 3.0]),
            "format": np.array(["JPEG", "PNG", "JPEG"], dtype=object)}
    rows = _property_rows(PropertyTable(cols), 3)
    assert rows == [{"brightness": 0.5, "width": 1.0}, {"brightness": None, "width": 2.0},
                    {"brightness": 2.0, "width": 3.0}]
    assert all(type(v) is float for r in rows for v in r.values() if v is not None)
    assert _property_rows(PropertyTable({}), 2) == [{}, {}]



def test_the_feature_panel_renders_every_column_of_an_image_model(
        server: ThreadServer, http: httpx.Client) -> None:
    # a reference of every image property and one image logged: a column the panel reads
    # had no 'value' and the number filter failed on the missing key (a 500, outside review)
    rng = np.random.default_rng(5)
    images = []  # PNGs: their JPEG block step is NaN, so that column has no drift value
    for jpeg in _fruit(rng, 40)[1]:
        out = io.BytesIO()
        Image.open(io.BytesIO(jpeg)).save(out, "PNG")
        images.append(out.getvalue())
    ref = pd.DataFrame(properties(images).numeric())
    ref["pred"] = rng.choice(["banana", "cucumber"], len(ref))
    name = register_model(http, f"props-{uuid.uuid4().hex[:8]}", ref, {"prediction": "pred"})
    http.post(f"/models/{name}/images", files=[("files", ("a.png", images[0], "image/png"))],
              data={"metadata": json.dumps([{"prediction_id": "p1", "prediction": "banana"}])}
              ).raise_for_status()
    for column in ["width", "brightness", "block_step"]:
        got = httpx.get(f"{server.url}/models/{name}/panels/feature",
                        params={"column": column}, timeout=60)
        assert got.status_code == 200, (column, got.text[:300])
        row = got.text.split(">block_step</a>", 1)[1].split("</tr>", 1)[0]
        assert "✓" not in row and "no value of this column in the range" in row, row
