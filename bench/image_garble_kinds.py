"""Recall of ``garbled`` on general corruption kinds, false positives on clean images and
property speed, in one run (issue 16).

The corruption kinds here are not bench/image_quality_fp.py's byte-level JPEG damage:
they are what broken pipelines leave in decoded pixels, saved as PNG or as JPEG q90:

- ``fill``: data cut short at a random raster position (30-90 %) and padded with one value
  (0, 128, 255 or random);
- ``roll``: every row from a random row on shifted sideways (circularly) by 4 .. w/2;
- ``swap``: colour channels permuted from a random row on;
- ``band``: a band of 8-40 rows replaced by rows from elsewhere in the image;
- ``blocks``: 3-12 random 8x8 blocks replaced by noise (at any position, not on the grid);
- ``jpeg_pad``: a JPEG cut at 40-90 %, padded with zero bytes to its length and closed.

Bases: crops of scikit-learn's two sample photographs and drawn fruit, 64-512 px.
Clean images: bench/image_quality_fp.py's generator (photos, dark photos, drawings, flags,
screenshots, textures, digits; every format), with another seed. Speed: properties of 512
224x224 fruit JPEGs, CPU seconds, median of 3.

    .venv/bin/python bench/image_garble_kinds.py [--per-kind 40] [--clean 320] [--seed 11]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from aiwarden.images import FAILURES, compute_properties, decode, quality
from aiwarden.images.synthetic import KINDS as FRUIT
from aiwarden.images.synthetic import fruit_image, to_jpeg
from bench._machine import machine_line
from bench.image_quality_fp import _photos, clean_set, photo

KINDS = ("fill", "roll", "swap", "band", "blocks", "jpeg_pad")


def _base(rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    side = int(rng.integers(64, 513))
    size = (side, max(48, int(side * rng.uniform(0.5, 1.5))))
    if rng.random() < 0.6:
        return np.asarray(photo(rng, photos, size).convert("RGB"))
    im = fruit_image(FRUIT[int(rng.integers(2))], rng, 224).resize(size)
    return np.asarray(im)


def corrupt(a: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray | bytes:
    a = a.copy()
    h, w, _ = a.shape
    if kind == "fill":
        flat = a.reshape(-1, 3)
        pos = int(len(flat) * rng.uniform(0.3, 0.9))
        flat[pos:] = rng.choice([0, 128, 255, int(rng.integers(256))])
    elif kind == "roll":
        r = int(rng.integers(h // 5, h * 4 // 5))
        a[r:] = np.roll(a[r:], int(rng.integers(4, w // 2 + 1)), axis=1)
    elif kind == "swap":
        r = int(rng.integers(h // 5, h * 4 // 5))
        perm = [(0, 2, 1), (1, 0, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)][int(rng.integers(5))]
        a[r:] = a[r:][:, :, perm]
    elif kind == "band":
        n = int(rng.integers(8, max(9, min(41, h // 3))))  # room for a distinct source
        r, src = int(rng.integers(0, h - n)), int(rng.integers(0, h - n))
        while abs(src - r) < n:
            src = int(rng.integers(0, h - n))
        a[r:r + n] = a[src:src + n]
    elif kind == "blocks":
        for _ in range(int(rng.integers(3, 13))):
            y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            a[y:y + 8, x:x + 8] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    else:  # jpeg_pad
        data = _encode(a, "JPEG")
        cut = int(len(data) * rng.uniform(0.4, 0.9))
        return data[:cut] + b"\0" * (len(data) - cut - 2) + b"\xff\xd9"
    return a


def _encode(a: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def speed(n: int = 512, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    decoded = [decode(to_jpeg(fruit_image(FRUIT[i % 2], rng))) for i in range(n)]
    times = []
    for _ in range(repeats):
        t = time.process_time()
        compute_properties(decoded)  # type: ignore[arg-type]
        times.append(time.process_time() - t)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=40)
    ap.add_argument("--clean", type=int, default=320)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    photos = _photos()
    items, kinds = [], []
    for k in range(args.per_kind * len(KINDS)):
        kind = KINDS[k % len(KINDS)]
        bad = corrupt(_base(rng, photos), kind, rng)
        fmt = "PNG" if (k // len(KINDS)) % 2 else "JPEG"
        items.append(bad if isinstance(bad, bytes) else _encode(bad, fmt))
        kinds.append(kind if isinstance(bad, bytes) else f"{kind} {fmt}")
    clean = clean_set(args.clean, rng)
    rep = quality(items + [c[0] for c in clean])
    hit = {f.index for f in rep.findings if f.reason in FAILURES | {"garbled"}}
    # the JPEG block-grid signals alone (before row_break and tail_fill), same run
    c = rep.table.columns
    failed = c["error"] != None  # noqa: E711
    live = c["channel_std_max"] > 0.004
    grid = (c["grey_fill"] > 0) | (c["dc_shift"] > 3) | (c["block_step"] > 4)
    grid_only = {int(i) for i in np.flatnonzero(failed | grid & live)}
    # before noise_block and row_copy: every other signal, same run
    before = {int(i) for i in np.flatnonzero(failed | live & (
        grid | (c["tail_fill"] > 0) | (c["row_break"] > 3.5)))}
    print(machine_line())
    found, total, old, prev = Counter(), Counter(), Counter(), Counter()
    for i, kind in enumerate(kinds):
        total[kind] += 1
        found[kind] += i in hit
        old[kind] += i in grid_only
        prev[kind] += i in before
    print(f"{'kind':14} {'planted':>7} {'recall':>6} {'before noise/copy':>18} "
          f"{'grid signals only':>18}")
    for kind in sorted(total):
        print(f"{kind:14} {total[kind]:7d} {found[kind] / total[kind]:6.2f} "
              f"{prev[kind] / total[kind]:18.2f} {old[kind] / total[kind]:18.2f}")
    print(f"{'all':14} {len(kinds):7d} {sum(found.values()) / len(kinds):6.2f} "
          f"{sum(prev.values()) / len(kinds):18.2f} {sum(old.values()) / len(kinds):18.2f}")
    n = len(items)
    fps = sorted({f.index - n for f in rep.findings if f.index >= n
                  and f.reason in FAILURES | {"garbled"}})
    old_fp = sum(1 for i in grid_only if i >= n)
    prev_fp = sum(1 for i in before if i >= n)
    print(f"clean images flagged garbled (or failing): {len(fps)} of {len(clean)} "
          f"(before noise/copy: {prev_fp}; grid signals only: {old_fp})")
    for i in fps[:10]:
        msg = next(f.message for f in rep.findings if f.index == i + n)
        print(f"  FP {clean[i][1]}: {msg}")
    print(f"properties, 224x224 fruit JPEGs: {speed():.0f} images/s per core (CPU, median "
          f"of 3; target 500)")
    print(f"load average at the end: {__import__('os').getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
