"""Drawn fruit for tests, benchmarks and the demo: no downloads, seeded, varied.

A banana is a thick yellow crescent, a cucumber a long dark-green rounded bar; both on a
light, noisy counter at a random place, angle and size, so a classifier has to look at colour
and shape and the images compress like photographs (not like flat drawings).

>>> import numpy as np
>>> im = fruit_image("banana", np.random.default_rng(0))
>>> im.size, im.mode
((224, 224), 'RGB')
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from aiwarden.errors import ParameterError
from aiwarden.images._deps import pil, pil_part

__all__ = ["KINDS", "fruit_image", "fruit_jpeg", "to_jpeg", "write_planted_set"]

KINDS = ("banana", "cucumber")


def fruit_image(kind: str, rng: np.random.Generator, size: int = 224,
                light: float = 1.0) -> object:
    """A ``size``×``size`` RGB image of one fruit; ``light`` < 1 darkens the whole scene."""
    if kind not in KINDS:
        raise ParameterError(f"The 'kind' parameter of fruit_image must be one of "
                             f"{', '.join(KINDS)}. Got {kind!r} instead.", "kind")
    Image = pil()
    ImageDraw, ImageFilter = pil_part("ImageDraw"), pil_part("ImageFilter")

    big = size
    base = (np.array([205, 195, 180]) + rng.integers(-25, 26, 3)).astype(np.float32)
    ramp = np.linspace(-1, 1, big, dtype=np.float32)
    shade = 0.85 + 0.15 * (ramp[None, :] * rng.uniform(-1, 1) + ramp[:, None] * rng.uniform(-1, 1))
    bg = base * shade[:, :, None] + rng.integers(-10, 11, (big, big, 3)).astype(np.float32)
    im = Image.fromarray(bg.clip(0, 255).astype(np.uint8), "RGB")
    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    s = rng.uniform(0.75, 1.0) * big
    cx, cy = big / 2 + rng.uniform(-0.1, 0.1) * big, big / 2 + rng.uniform(-0.1, 0.1) * big
    if kind == "banana":
        colour = tuple(int(v) for v in (rng.integers(215, 250), rng.integers(180, 215),
                                        rng.integers(20, 70)))
        r = s * 0.42
        box = (cx - r, cy - r - s * 0.15, cx + r, cy + r - s * 0.15)
        start = rng.uniform(20, 40)
        draw.arc(box, start, 180 - start, fill=(*colour, 255), width=int(s * 0.14))
        tip = (int(colour[0] * 0.45), int(colour[1] * 0.4), 20, 255)
        for ang in (start, 180 - start):
            tx = cx + (r - s * 0.07) * math.cos(math.radians(ang))
            ty = cy - s * 0.15 + (r - s * 0.07) * math.sin(math.radians(ang))
            draw.ellipse((tx - s * 0.03, ty - s * 0.03, tx + s * 0.03, ty + s * 0.03), fill=tip)
    else:
        colour = tuple(int(v) for v in (rng.integers(30, 70), rng.integers(95, 140),
                                        rng.integers(30, 60)))
        half_l, half_w = s * 0.45, s * 0.09
        draw.rounded_rectangle((cx - half_l, cy - half_w, cx + half_l, cy + half_w),
                               radius=int(half_w), fill=(*colour, 255))
        for _ in range(12):  # the warty specks
            x, y = cx + rng.uniform(-0.9, 0.9) * half_l, cy + rng.uniform(-0.6, 0.6) * half_w
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(colour[0] + 40, colour[1] + 50,
                                                             colour[2] + 30, 255))
    layer = layer.rotate(float(rng.uniform(-60, 60)), resample=Image.Resampling.BICUBIC,
                         center=(cx, cy))
    im.paste(layer, (0, 0), layer)
    im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    if light != 1.0:
        arr = np.asarray(im, np.float32) * light
        im = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    return im


def to_jpeg(im: object, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)  # type: ignore[attr-defined]
    return buf.getvalue()


def fruit_jpeg(kind: str, rng: np.random.Generator, size: int = 224, light: float = 1.0,
               quality: int = 90) -> bytes:
    """:func:`fruit_image` encoded as a JPEG."""
    return to_jpeg(fruit_image(kind, rng, size, light), quality)


def write_planted_set(root: str | Path, per_class: int = 60, seed: int = 0
                      ) -> dict[str, set[Any]]:
    """A fruit training set under ``root/train/<label>/`` (and a small ``root/test/``) with
    planted problems; returns the truth by category, as relative paths:

    ``corrupt`` (truncated, garbage, empty, header-less files), ``constant`` (one-colour
    frames), ``duplicate`` (pairs: exact copies, re-encoded, resized), ``mislabelled``,
    ``leakage`` (test images repeating a training image), ``outlier`` (pixel noise and a
    photograph filed as fruit), ``dark`` (legitimate low-light images that must not be
    flagged)."""
    Image = pil()
    rng = np.random.default_rng(seed)
    root = Path(root)
    truth: dict[str, set[Any]] = {k: set() for k in (
        "corrupt", "constant", "duplicate", "mislabelled", "leakage", "outlier", "dark")}
    kept: list[tuple[str, object]] = []

    def put(rel: str, data: bytes) -> str:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return rel

    for kind in KINDS:
        for n in range(per_class):
            im = fruit_image(kind, rng)
            kept.append((put(f"train/{kind}/{kind}_{n:04d}.jpg", to_jpeg(im)), im))
        for n in range(3):
            im = fruit_image(kind, rng, light=0.35)
            truth["dark"].add(put(f"train/{kind}/{kind}_dark_{n}.jpg", to_jpeg(im)))
        for n in range(4):  # the other fruit, filed under this label
            other = KINDS[1 - KINDS.index(kind)]
            truth["mislabelled"].add(put(f"train/{kind}/{kind}_x{n}.jpg",
                                         fruit_jpeg(other, rng)))
    good = to_jpeg(fruit_image("banana", rng))
    png = io.BytesIO()
    fruit_image("cucumber", rng).save(png, "PNG")  # type: ignore[attr-defined]
    for name, data in (("banana/banana_trunc.jpg", good[: len(good) // 2]),
                       ("banana/banana_noise.jpg", rng.bytes(5000)),
                       ("cucumber/cucumber_empty.jpg", b""),
                       ("cucumber/cucumber_nohead.jpg", b"\0" * 20 + good[20:]),
                       ("cucumber/cucumber_trunc.png", png.getvalue()[: len(png.getvalue()) // 3])):
        truth["corrupt"].add(put(f"train/{name}", data))
    for name, colour in (("banana/banana_black.jpg", (0, 0, 0)),
                         ("banana/banana_white.jpg", (255, 255, 255)),
                         ("cucumber/cucumber_grey.jpg", (128, 128, 128)),
                         ("cucumber/cucumber_green.png", (40, 120, 40))):
        buf = io.BytesIO()
        Image.new("RGB", (224, 224), colour).save(buf, name.rsplit(".", 1)[1].replace(
            "jpg", "JPEG").upper())
        truth["constant"].add(put(f"train/{name}", buf.getvalue()))
    from sklearn.datasets import load_sample_image  # bundled with scikit-learn

    photo = Image.fromarray(load_sample_image("china.jpg")).resize((224, 224))
    noise = Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), "RGB")
    truth["outlier"].add(put("train/banana/banana_photo.jpg", to_jpeg(photo)))
    truth["outlier"].add(put("train/cucumber/cucumber_static.jpg", to_jpeg(noise)))
    picks = rng.choice(len(kept), 9, replace=False)
    for n, p in enumerate(picks[:6]):
        rel, im = kept[p]
        kind = rel.split("/")[1]
        if n < 2:
            data = (root / rel).read_bytes()
        elif n < 4:
            data = to_jpeg(im, quality=55)
        else:
            data = to_jpeg(im.resize((180, 180)).resize((224, 224)))  # type: ignore[attr-defined]
        truth["duplicate"].add(frozenset((rel, put(f"train/{kind}/{kind}_copy{n}.jpg", data))))
    for n, p in enumerate(picks[6:]):
        rel, im = kept[p]
        kind = rel.split("/")[1]
        truth["leakage"].add(put(f"test/{kind}/{kind}_test_leak{n}.jpg", to_jpeg(im, 80)))
    for kind in KINDS:
        for n in range(6):
            put(f"test/{kind}/{kind}_test_{n}.jpg", fruit_jpeg(kind, rng))
    return truth
