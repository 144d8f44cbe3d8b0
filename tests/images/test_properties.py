"""Each property against a straightforward per-image computation with Pillow, numpy, scipy."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import scipy.fftpack
import scipy.ndimage
import scipy.stats
from PIL import Image, ImageStat

from aiwarden.errors import ParameterError
from aiwarden.images import compute_properties, decode, hamming, properties
from aiwarden.images.synthetic import fruit_image


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    rng = np.random.default_rng(7)
    out = [_encode(fruit_image(k, rng), "JPEG", quality=90) for k in ("banana", "cucumber")]
    out.append(_encode(fruit_image("banana", rng, light=0.3), "PNG"))
    noise = rng.integers(0, 256, (53, 37, 3), dtype=np.uint8)
    out.append(_encode(Image.fromarray(noise), "PNG"))  # odd size, its own batch
    out.append(_encode(Image.fromarray(noise[:, :, 0]), "PNG"))  # grey: mode L
    rgba = np.dstack([noise, np.full((53, 37), 200, np.uint8)])
    out.append(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    out.append(_encode(fruit_image("cucumber", rng).convert("P"), "GIF"))
    out.append(_encode(Image.new("RGB", (40, 30), (10, 200, 30)), "BMP"))
    out.append(_encode(Image.fromarray(rgba, "RGBA").convert("P"), "PNG"))  # P, transparency
    out.append(_encode(Image.fromarray(noise).convert("CMYK"), "JPEG"))
    out.append(_encode(Image.fromarray(noise[:, :, 0].astype(np.uint16) * 257), "PNG"))
    photo = _photo()
    out.append(_encode(_shifted(photo, 96, 80, 0, -40), "JPEG", quality=90))  # dc_shift
    cut = _encode(Image.fromarray(photo), "JPEG", quality=90)
    out.append(cut[: len(cut) * 6 // 10] + b"\xff\xd9")  # grey_fill: closed early
    out.append(_encode(Image.fromarray(photo).convert("L"), "JPEG", quality=60))  # grey grid
    return out


def _photo() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[0][100:324, 200:424]


def _shifted(a: np.ndarray, y: int, x: int, channel: int, delta: int, mcu: int = 16
             ) -> Image.Image:
    """What corrupt JPEG data does to the DC: YCbCr component ``channel`` offset by
    ``delta`` from block (y, x) on, in scan order (a row of ``mcu`` pixels at a time)."""
    ycc = np.asarray(Image.fromarray(a).convert("YCbCr")).astype(np.int16)
    ycc[y:y + mcu, x:, channel] += delta
    ycc[y + mcu:, :, channel] += delta
    return Image.fromarray(np.clip(ycc, 0, 255).astype(np.uint8), "YCbCr").convert("RGB")


def _reference(data: bytes) -> dict[str, float]:
    """What each property means, computed the slow obvious way on the decoded image."""
    im = Image.open(io.BytesIO(data))
    fmt, mode, (w, h) = im.format, im.mode, im.size
    if mode == "I;16":  # 16-bit grey: the top byte (rounded) is the 8-bit grey
        im = Image.fromarray((np.asarray(im) / 257 + 0.5).astype(np.uint8))
    rgb = (im.convert("RGBA") if mode == "P" and "transparency" in im.info else im
           ).convert("RGB")
    grey = rgb.convert("L")
    g = np.asarray(grey, np.float64)
    px = np.asarray(rgb, np.float64)
    lap = scipy.ndimage.convolve(g, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))[1:-1, 1:-1]
    mx, mn = px.max(axis=2), px.min(axis=2)
    sat = np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1), 0)
    ref = {"width": w, "height": h, "aspect_ratio": w / h, "channels": len(im.getbands()),
           "file_size": len(data), "format": fmt, "mode": mode,
           "brightness": ImageStat.Stat(grey).mean[0] / 255, "contrast": g.std() / 255,
           "sharpness": lap.var(), "saturation": sat.mean(),
           "entropy": scipy.stats.entropy(np.array(grey.histogram()), base=2),
           "channel_std_max": px.std(axis=(0, 1)).max() / 255}
    for c, name in enumerate("rgb"):
        ref[f"mean_{name}"] = px[:, :, c].mean() / 255
        counts, _ = np.histogram(px[:, :, c], bins=8, range=(0, 256))
        for i in range(8):
            ref[f"hist_{name}_{i}"] = counts[i] / (w * h)
    small = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), np.float64)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=0), axis=1)
    ref["phash"] = _bits(dct[:8, :8].ravel() > np.median(dct[:8, :8]))
    fine = dct[:16, :16].ravel()
    ref["phash_fine"] = [_bits(b) for b in np.split(fine > np.median(fine), 4)]
    d = np.asarray(grey.resize((9, 8), Image.Resampling.BOX), np.int64)
    ref["dhash"] = _bits((d[:, 1:] > d[:, :-1]).ravel())
    ref["block_step"] = _block_step(g) if fmt == "JPEG" else np.nan
    jpeg = fmt == "JPEG" and mode in ("RGB", "L")
    tall = 8 * max(v for *_, v, _ in im.layer) if jpeg else 0
    ref["grey_fill"] = _grey_fill(px) if jpeg else np.nan
    ycc = np.asarray(rgb.convert("YCbCr"), np.float64)
    ref["dc_shift"] = _dc_shift(ycc, tall) if jpeg else np.nan
    return ref


def _grey_fill(px: np.ndarray) -> float:
    """Share of the 8x8 blocks (raster order) in the trailing run of blocks whose every
    pixel is within 1 of mid-grey, unless the run is the whole image."""
    h, w, _ = px.shape
    grey = [np.all(np.abs(px[y:y + 8, x:x + 8] - 128) <= 1)
            for y in range(0, h, 8) for x in range(0, w, 8)]
    run = 0
    while run < len(grey) and grey[-1 - run]:
        run += 1
    return run / len(grey) if 0 < run < len(grey) else 0.0


def _dc_shift(ycc: np.ndarray, mcu: int) -> float:
    """The staircase the loop way: for boundary row y (a multiple of the MCU height) and
    block column j, row y's blocks from j and row y + mcu's before j step alike, the other
    halves do not; in units of the per-component roughness half an MCU off the grid."""
    h, w, _ = ycc.shape
    nbx = w // 8
    ys = [y for y in range(mcu, h - 1, mcu) if y >= 2]
    if nbx < 4 or len(ys) < 2:
        return 0.0

    def step(y: int, b: int) -> np.ndarray:  # (3,) this block's step at row y
        a = ycc[:, b * 8:b * 8 + 8]
        return (1.5 * (a[y] - a[y - 1]) - 0.5 * (a[y + 1] - a[y - 2])).mean(axis=0)

    noise = [step(y - mcu // 2, b) for y in ys if y - mcu // 2 >= 2 for b in range(nbx)]
    sigma = np.abs(np.array(noise)).mean(axis=0) + 1.0
    e = {(y, b): step(y, b) / sigma for y in ys for b in range(nbx)}
    best = 0.0
    for y, y2 in itertools.pairwise(ys):
        for j in range(2, nbx - 1):
            top = np.mean([e[y, b] for b in range(j, nbx)], axis=0)
            bottom = np.mean([e[y2, b] for b in range(j)], axis=0)
            cos = top @ bottom / (np.linalg.norm(top) * np.linalg.norm(bottom) + 1e-9)
            u = (top + bottom) / (np.linalg.norm(top + bottom) + 1e-9)
            size = min(u @ top, u @ bottom)
            quiet = (abs(u @ np.mean([e[y, b] for b in range(j)], axis=0)) < 0.35 * size
                     and abs(u @ np.mean([e[y2, b] for b in range(j, nbx)], axis=0))
                     < 0.35 * size)
            agree_top = np.mean([u @ e[y, b] > 0.4 * size for b in range(j, nbx)])
            agree_bottom = np.mean([u @ e[y2, b] > 0.4 * size for b in range(j)])
            if cos > 0.8 and quiet and agree_top >= 0.7 and agree_bottom >= 0.7:
                best = max(best, min(np.linalg.norm(top), np.linalg.norm(bottom)))
    return best


def _block_step(g: np.ndarray) -> float:
    """The largest block-row ratio, or 1.0 when that step is an edge of the picture
    (uniform, no larger than other rows' steps, matched by block columns, or undone)."""
    def row_step(y: int) -> float:  # mean |row y - row y-1|
        return float(np.mean(np.abs(g[y] - g[y - 1])))

    def col_step(x: int) -> float:
        return float(np.mean(np.abs(g[:, x] - g[:, x - 1])))

    def ratio(f, y: int) -> float:
        return f(y) / ((f(y - 2) + f(y - 1) + f(y + 1) + f(y + 2)) / 4 + 1)

    h, w = g.shape
    rows = range(8, h - 2, 8)
    y = max(rows, key=lambda r: ratio(row_step, r))
    top = ratio(row_step, y)
    other = max((row_step(r) for r in range(1, h) if r not in rows), default=0.0)
    d = (g[y] - g[y - 1]).astype(float)
    blocks = [d[x:x + 8].mean() for x in range(0, w // 8 * 8, 8)] or list(d)
    uniform = np.std(blocks) / (np.abs(d).mean() + 1) < 0.15
    cols = max((ratio(col_step, x) for x in range(8, w - 2, 8)), default=0.0)

    def signed(r: int) -> np.ndarray:  # per 8-pixel block mean of row r - row r-1
        return np.array([(g[r, x:x + 8] - g[r - 1, x:x + 8]).mean()
                         for x in range(0, w // 8 * 8, 8)])

    box = w >= 8 and any(-signed(r) @ signed(y) / (signed(y) @ signed(y) + 1e-9) > 0.5
                         for r in rows if r != y)
    explained = uniform or row_step(y) <= 1.1 * other or cols >= top / 2 or box
    return 1.0 if explained else top


def _bits(bits: np.ndarray) -> int:
    return sum(1 << (63 - i) for i, b in enumerate(bits) if b)


def test_every_property_matches_the_reference_computation(images: list[bytes]) -> None:
    table = properties(images)
    cols = table.columns
    assert table.ok.all()
    # the corrupt-data checks are compared on images where they find something
    assert cols["dc_shift"][-3] > 3 and cols["grey_fill"][-2] > 0.2
    for row, data in enumerate(images):
        ref = _reference(data)
        for key, want in ref.items():
            got = cols[key][row]
            if key == "phash_fine":
                assert [int(x) for x in got] == want, (row, key)
            elif isinstance(want, str) or key in ("phash", "dhash"):
                assert got == want, (row, key, got, want)
            else:
                assert got == pytest.approx(want, rel=1e-6, abs=1e-9, nan_ok=True), (row, key)


def test_a_batch_equals_one_image_at_a_time(images: list[bytes]) -> None:
    whole = properties(images).columns
    for row, data in enumerate(images):
        one = properties([data]).columns
        for key, col in whole.items():
            if col.dtype.kind == "f":
                assert one[key][0] == pytest.approx(col[row], rel=1e-12, nan_ok=True), key
            elif key != "phash_fine":
                assert one[key][0] == col[row], key


def test_large_jpeg_is_drafted_and_reduced_but_reports_its_original_size() -> None:
    rng = np.random.default_rng(1)
    big = fruit_image("banana", rng, size=224).resize((1600, 1200))
    data = _encode(big, "JPEG")
    d = decode(data, max_side=256)
    assert (d.width, d.height) == (1600, 1200)
    assert max(d.image.size) <= 256 and d.scale == pytest.approx(d.image.size[0] / 1600)
    table = compute_properties([d])
    assert table.columns["width"][0] == 1600 and table.columns["aspect_ratio"][0] == 4 / 3
    # the reduced image keeps the scene's brightness
    full = ImageStat.Stat(big.convert("L")).mean[0] / 255
    assert table.columns["brightness"][0] == pytest.approx(full, abs=0.01)


def test_arrays_floats_and_nan_are_read_and_counted() -> None:
    grey = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    grey[3, 4] = np.nan
    t = properties([grey, (np.nan_to_num(grey) * 255 + 0.5).astype(np.uint8),
                    np.zeros((5, 5, 2))])
    c = t.columns
    assert c["non_finite"][0] == 1 and c["non_finite"][1] == 0
    assert (c["width"][0], c["height"][0], c["channels"][0]) == (64, 48, 1)
    assert c["brightness"][0] == pytest.approx(c["brightness"][1], abs=2 / 255)
    assert c["error"][2] == "wrong_shape" and np.isnan(c["brightness"][2])


def test_hashes_of_a_reencoded_copy_stay_close_and_distinct_images_far() -> None:
    rng = np.random.default_rng(3)
    a, b = fruit_image("banana", rng), fruit_image("cucumber", rng)
    t = properties([_encode(a, "JPEG", quality=95), _encode(a, "JPEG", quality=50),
                    _encode(b, "JPEG")]).columns
    d = hamming(t["phash_fine"], t["phash_fine"])
    assert d[0, 1] <= 10 and d[0, 2] > 40
    naive = [[bin(int(x) ^ int(y)).count("1") for y in t["phash"]] for x in t["phash"]]
    assert hamming(t["phash"], t["phash"]).tolist() == naive


def test_table_exports_and_bad_parameters() -> None:
    t = properties([np.full((4, 6, 3), 255, np.uint8), b"not an image"])
    d = t.to_dict()
    assert d["width"] == [6.0, None] and d["error"] == [None, "not_an_image"]
    assert len(d["phash"][0]) == 16 and len(d["phash_fine"][0]) == 64
    assert "brightness" in t.numeric() and "format" not in t.numeric()
    assert list(t.to_pandas().columns) == list(t.columns)
    with pytest.raises(ParameterError, match="The 'hist_bins' parameter of properties must be"):
        properties([b""], hist_bins=3)
