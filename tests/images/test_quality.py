"""Quality findings: every reason code from a planted input, and no exception ever leaks."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from aiwarden.errors import ParameterError
from aiwarden.images import REASONS, decode, decode_base64, properties, quality
from aiwarden.images.synthetic import fruit_image, to_jpeg


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds none (a decompression bomb's head)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


def _enc(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fruit() -> list[Image.Image]:
    rng = np.random.default_rng(11)
    return [fruit_image(k, rng) for k in ("banana", "cucumber", "banana", "cucumber")]


@pytest.mark.parametrize(("item", "reason"), [
    (b"", "empty"),
    (b"hello, I am text", "not_an_image"),
    (None, "not_an_image"),
    ("a string", "not_an_image"),
    (_png_header(20_000, 20_000), "too_many_pixels"),  # 400 MP: refused on the header
    (_png_header(12_000, 10_000), "too_many_pixels"),  # above Pillow's own bomb warning
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not_an_image"),  # no Ghostscript
    (np.zeros((4, 4, 2)), "wrong_shape"),
    (np.array([["a"]]), "wrong_shape"),
])
def test_undecodable_inputs_become_reasons_not_exceptions(item: object, reason: str) -> None:
    d = decode(item)
    assert d.reason == reason, d  # type: ignore[union-attr]
    rep = quality([item])
    assert [(f.index, f.reason) for f in rep.findings] == [(0, reason)]
    assert reason in REASONS


def test_truncated_files_and_byte_limits(fruit: list[Image.Image]) -> None:
    jpeg, png = to_jpeg(fruit[0]), _enc(fruit[1])
    assert decode(jpeg[: len(jpeg) // 2]).reason == "truncated"  # type: ignore[union-attr]
    assert decode(png[: len(png) // 3]).reason == "truncated"  # type: ignore[union-attr]
    assert decode(jpeg, max_bytes=100).reason == "too_large_file"  # type: ignore[union-attr]
    big = _enc(Image.new("L", (3000, 2000)))
    assert decode(big, max_pixels=5_000_000).reason == "too_many_pixels"  # type: ignore
    assert decode(big, max_pixels=6_000_000).width == 3000  # type: ignore[union-attr]


def test_base64_strict_with_data_urls(fruit: list[Image.Image]) -> None:
    data = to_jpeg(fruit[0])
    text = base64.b64encode(data).decode()
    assert decode_base64(text) == data
    assert decode_base64("data:image/jpeg;base64," + text.rstrip("=")) == data
    for bad in ("not base64!", "abc\u00e9", "A"):
        assert decode_base64(bad).reason == "bad_base64"  # type: ignore[union-attr]
    rep = quality([decode_base64(text), decode_base64("not base64!")])
    assert [(f.index, f.reason) for f in rep.findings] == [(1, "bad_base64")]


def test_each_pixel_check_names_only_its_image(fruit: list[Image.Image]) -> None:
    grey = fruit_image("cucumber", np.random.default_rng(5)).convert("L")  # fruit[0] in grey
    # would be (rightly) a near duplicate of item 0
    nan = np.asarray(fruit[1], np.float32) / 255
    nan[0, 0, 0] = np.nan
    items = [to_jpeg(fruit[0]),                              # 0 fine
             _enc(Image.new("RGB", (64, 64), (0, 0, 0))),    # 1 constant (black)
             to_jpeg(Image.new("RGB", (64, 64), (255, 255, 255))),  # 2 constant (white)
             _enc(grey),                                     # 3 wrong mode (L)
             _enc(fruit[2].resize((12, 40))),                # 4 too small
             _enc(fruit[3].resize((600, 60))),               # 5 extreme aspect
             nan,                                            # 6 non-finite
             _enc(fruit_image("banana", np.random.default_rng(0), light=0.25))]  # 7 dark: ok
    rep = quality(items, expected_mode="RGB", names=[f"f{i}" for i in range(8)])
    got = {(f.index, f.reason) for f in rep.findings}
    assert got == {(1, "constant"), (2, "constant"), (3, "wrong_mode"), (4, "too_small"),
                   (5, "extreme_aspect"), (6, "non_finite")}
    assert {f.name for f in rep.findings if f.index == 3} == {"f3"}
    assert rep.to_dict()["counts"]["constant"] == 2


def test_exact_and_near_duplicates_and_leakage(fruit: list[Image.Image]) -> None:
    a, b, c, d = fruit
    base = [to_jpeg(a), to_jpeg(b), to_jpeg(c)]
    items = [*base, base[0],                                    # 3 exact copy of 0
             to_jpeg(b, quality=50),                            # 4 re-encoded 1
             to_jpeg(c.resize((150, 150)).resize((224, 224))),  # 5 resized 2
             to_jpeg(d)]                                        # 6 distinct
    rep = quality(items)
    dup = {(f.index, f.reason, f.related) for f in rep.findings}
    assert dup == {(3, "exact_duplicate", 0), (4, "near_duplicate", 1),
                   (5, "near_duplicate", 2)}
    train = properties(base)
    prod = quality([to_jpeg(b, quality=70), to_jpeg(d)], reference=train)
    assert [(f.index, f.reason, f.related) for f in prod.findings] == [(0, "leakage", 1)]


def test_a_jpeg_garbled_by_a_few_bytes_decodes_and_is_flagged(fruit: list[Image.Image]) -> None:
    """Three overwritten bytes in the entropy-coded data: no decode error, but every later
    block's DC shifts, a step exactly on an 8-pixel block row."""
    clean = [to_jpeg(im, q) for im in fruit for q in (50, 75, 95)]
    data = bytearray(to_jpeg(fruit_image("banana", np.random.default_rng(103))))
    rng = np.random.default_rng(3)
    for pos in rng.integers(len(data) // 4, len(data) - 10, 3):
        data[pos] = int(rng.integers(0, 256))
    assert decode(bytes(data)).width == 224  # type: ignore[union-attr]
    rep = quality([*clean, bytes(data)])  # (the clean copies are near duplicates)
    garbled = [f for f in rep.findings if f.reason == "garbled"]
    assert [f.index for f in garbled] == [len(clean)] and garbled[0].score > 4


def test_constant_frames_are_not_duplicates_of_each_other() -> None:
    black = _enc(Image.new("RGB", (32, 32)))
    rep = quality([black, black, to_jpeg(Image.new("RGB", (32, 32)))])
    assert {f.reason for f in rep.findings} == {"constant"}


def test_quality_parameters_use_the_template() -> None:
    with pytest.raises(ParameterError, match="The 'near_distance' parameter of quality must "
                                             "be a number in"):
        quality([b""], near_distance=-1)


def test_mutated_files_of_every_format_never_raise(fruit: list[Image.Image]) -> None:
    """Truncations and overwritten bytes (headers included) of each format: every input
    ends as measured properties or a known reason code, never an exception."""
    small = fruit[0].resize((48, 40))
    files = [_enc(small, "PNG"), to_jpeg(small), _enc(small.convert("P"), "GIF"),
             _enc(small, "BMP"), _enc(small, "TIFF"), _enc(small, "WEBP"), _enc(small, "PPM")]
    rng = np.random.default_rng(0)
    items = []
    for data in files:
        for _ in range(25):
            b = bytearray(data)
            if rng.random() < 0.3:
                b = b[: int(rng.integers(1, len(b)))]
            for pos in rng.integers(0, len(b), int(rng.integers(1, 6))):
                b[pos] = int(rng.integers(0, 256))
            items.append(bytes(b))
    table = properties(items)
    errors = {e for e in table.columns["error"] if e is not None}
    assert errors <= set(REASONS) and errors
    assert table.ok.sum() > 0
    quality(table)  # and the checks run over whatever decoded


def _drawn_48px_jpeg() -> bytes:
    """A normal small drawing whose rectangle's top edge sits on block row 16: the raw
    block-row ratio is ~22, far above max_block_step (the false `garbled` once reported)."""
    from PIL import ImageDraw

    im = Image.new("RGB", (48, 48), (240, 236, 220))
    d = ImageDraw.Draw(im)
    d.rectangle([6, 16, 41, 37], fill=(200, 60, 40))
    d.ellipse([12, 5, 30, 27], fill=(40, 90, 180))
    d.line([0, 44, 47, 41], fill=(30, 30, 30), width=2)
    return to_jpeg(im, 85)


def _flag(size: tuple[int, int], cut: int) -> Image.Image:
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:cut], a[cut:] = (0, 56, 168), (255, 205, 0)
    return Image.fromarray(a)


def test_pictures_with_edges_on_block_rows_are_not_garbled() -> None:
    """A 48 px drawing, flags split on a block row (16 px to 1024 px) and a grid of boxes:
    straight or grid-aligned edges of the picture, not corrupt data."""
    grid = Image.new("RGB", (96, 64), (250, 250, 250))
    from PIL import ImageDraw

    for x in range(0, 96, 24):
        ImageDraw.Draw(grid).rectangle([x, 16, x + 15, 39], fill=(20, 120, 200))
    items = [_drawn_48px_jpeg(), to_jpeg(_flag((16, 16), 8), 50),
             to_jpeg(_flag((64, 48), 24), 90), to_jpeg(_flag((1024, 600), 296), 70),
             to_jpeg(grid, 60)]
    table = properties(items)
    assert not (table.columns["block_step"] > 4).any()  # NaN: the 1024 px one is drafted
    assert not [f for f in quality(items).findings if f.reason == "garbled"]


def test_a_photo_jpeg_with_a_corrupt_middle_byte_is_still_garbled() -> None:
    """One byte flipped half-way through a 224 px photograph's scan: it decodes, and the
    DC shift after it is caught; the clean file is not flagged."""
    from sklearn.datasets import load_sample_images

    clean = to_jpeg(Image.fromarray(load_sample_images().images[0][100:324, 200:424]), 85)
    bad = bytearray(clean)
    rng = np.random.default_rng(3)
    bad[int(rng.integers(len(bad) * 4 // 10, len(bad) * 6 // 10))] ^= 0xFF
    assert decode(bytes(bad)).width == 224  # type: ignore[union-attr]
    rep = quality([clean, bytes(bad)])
    assert [(f.index, f.reason) for f in rep.findings] == [(1, "garbled")]
    assert rep.findings[0].score is not None and rep.findings[0].score > 4


def _shifted_photo(size: tuple[int, int], y: int, x: int, channel: int, delta: int
                   ) -> tuple[bytes, bytes]:
    """(clean JPEG, the same with YCbCr component ``channel`` offset by ``delta`` from the
    16-pixel MCU at (y, x) on, in scan order: what corrupt data does to the DC)."""
    from sklearn.datasets import load_sample_images

    photo = Image.fromarray(load_sample_images().images[0]).resize(size)
    ycc = np.asarray(photo.convert("YCbCr")).astype(np.int16)
    ycc[y:y + 16, x:, channel] += delta
    ycc[y + 16:, :, channel] += delta
    bad = Image.fromarray(np.clip(ycc, 0, 255).astype(np.uint8), "YCbCr").convert("RGB")
    return to_jpeg(photo, 90), to_jpeg(bad, 90)


def test_blocks_shifted_from_one_point_on_are_garbled_at_any_size() -> None:
    """A luma shift in a 224 px photo, a colour (Cr) shift in a 1280 px one (decoded in
    draft mode, the block grid 2 pixels there); their clean files are not flagged."""
    clean_small, bad_small = _shifted_photo((224, 224), 96, 80, 0, -40)
    clean_big, bad_big = _shifted_photo((1280, 960), 480, 640, 2, 40)
    rep = quality([clean_small, bad_small, clean_big, bad_big])
    garbled = {f.index: f for f in rep.findings if f.reason == "garbled"}
    assert sorted(garbled) == [1, 3]
    assert all("shifted" in f.message and f.score > 3 for f in garbled.values())
    big = decode(bad_big)
    assert big.scale < 1 and big.grid == 2  # type: ignore[union-attr]


def test_a_jpeg_that_ends_early_in_mid_grey_is_garbled() -> None:
    """Cut at 60 % and closed with an end marker (as a copy interrupted and repaired, or a
    stream that desynchronised): no decode error, the rest of the blocks are mid-grey."""
    from sklearn.datasets import load_sample_images

    photo = Image.fromarray(load_sample_images().images[1])  # 640x427: drafted
    items = []
    for im in (photo.crop((100, 100, 324, 324)), photo):
        data = to_jpeg(im, 85)
        items += [data, data[: len(data) * 6 // 10] + b"\xff\xd9"]
    assert all(decode(d).width > 0 for d in items)  # type: ignore[union-attr]: no failure
    rep = quality(items)
    garbled = {f.index: f for f in rep.findings if f.reason == "garbled"}
    assert sorted(garbled) == [1, 3]
    assert all("mid-grey" in f.message and 0.2 < f.score < 0.6 for f in garbled.values())


def test_a_mid_grey_frame_is_constant_not_garbled() -> None:
    grey = to_jpeg(Image.new("RGB", (64, 48), (128, 128, 128)))
    noisy = np.clip(128 + np.random.default_rng(0).integers(-1, 2, (48, 64, 3)), 0, 255)
    rep = quality([grey, to_jpeg(Image.fromarray(noisy.astype(np.uint8)), 96)])
    assert [(f.index, f.reason) for f in rep.findings] == [(0, "constant"), (1, "constant")]
