"""False positives and recall of every image quality code on a generated set (no downloads).

Clean images of many kinds, sizes (16-4000 px), formats (JPEG q30-100, PNG, GIF, WebP, BMP,
grey, RGBA, palette) and content (flat drawings with edges on the 8-pixel grid, text and UI
screenshots, scikit-learn's sample photographs cropped, digits, gradients, noise, dark,
bright and low-contrast photos), each distinct; then planted defects: truncated files,
JPEGs with bytes overwritten in the middle of the entropy-coded data, constant frames,
extreme aspect ratios, exact and near duplicates. ``quality()`` runs once on everything.

Per code: precision (share of its flags on images planted for it) and recall (share of the
planted images it flags). Any flag on a clean image is a false positive and is listed.
A corrupted JPEG whose decoded pixels differ from the clean decode by < 1 grey level on
average is "invisible" and left out of both counts (nothing to find).

    .venv/bin/python bench/image_quality_fp.py [--clean 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw

from aiwarden.images import FAILURES, quality
from bench._machine import machine_line

SIZES = (16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128, 160, 224, 256, 320, 480, 640, 800,
         1024, 1600, 2400, 4000)


def _photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(a) for a in load_sample_images().images]


def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images


def _size(rng: np.random.Generator, big: bool) -> tuple[int, int]:
    side = int(rng.choice(SIZES if big else SIZES[:-3]))
    aspect = float(np.exp(rng.uniform(np.log(1 / 3), np.log(3))))
    w, h = ((side, max(16, int(side / aspect))) if aspect >= 1
            else (max(16, int(side * aspect)), side))
    return w, h


def photo(rng: np.random.Generator, photos: list[np.ndarray], size: tuple[int, int]) -> Image.Image:
    """A distinct random crop (position, size, flip) of a sample photograph, resized."""
    src = photos[int(rng.integers(len(photos)))]
    H, W = src.shape[:2]
    ch, cw = int(rng.integers(H // 4, H)), int(rng.integers(W // 4, W))
    y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    im = Image.fromarray(src[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        im = im.transpose(Image.Transpose.ROTATE_90)
    return im.resize(size, Image.Resampling.LANCZOS)


def drawing(rng: np.random.Generator, size: tuple[int, int], grid: bool) -> Image.Image:
    """Flat shapes; with ``grid`` every coordinate is a multiple of 8 (UI, flags, charts)."""
    w, h = size
    im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 8))):
        xs = np.sort(rng.integers(0, w + 1, 2))
        ys = np.sort(rng.integers(0, h + 1, 2))
        if grid:
            xs, ys = xs // 8 * 8, ys // 8 * 8
        box = [int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0 or grid:
            d.rectangle(box, fill=fill)
        elif kind == 1:
            d.ellipse(box, fill=fill)
        else:
            d.line(box, fill=fill, width=int(rng.integers(1, 6)))
    return im


def stripes(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A flag: 2-5 horizontal bands of random heights, boundaries on the 8-pixel grid."""
    w, h = size
    n = int(rng.integers(2, 6))
    a = np.zeros((h, w, 3), np.uint8)
    cuts = [0, *sorted({max(8, int(c) // 8 * 8) for c in rng.integers(1, h, n - 1)}), h]
    for k in range(len(cuts) - 1):
        a[cuts[k]:cuts[k + 1]] = rng.integers(0, 256, 3)
    return Image.fromarray(a)


def screenshot(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Text lines and boxes on a light or dark background."""
    w, h = size
    dark = rng.random() < 0.3
    im = Image.new("RGB", size, (30, 30, 30) if dark else (250, 250, 250))
    d = ImageDraw.Draw(im)
    y = int(rng.integers(0, 8))
    words = ["monitor", "drift", "alert", "latency", "p95", "model", "OK", "error", "12.5%"]
    while y < h - 8:
        if rng.random() < 0.2:
            d.rectangle([0, y, w, y + 16], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        text = " ".join(rng.choice(words, int(rng.integers(2, 12))))
        d.text((int(rng.integers(0, 12)), y), text, fill=(220, 220, 220) if dark else (20, 20, 20))
        y += int(rng.integers(12, 24))
    return im


def texture(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size
    kind = rng.integers(4)
    if kind == 0:  # gradient
        gx = np.linspace(0, 1, w)[None, :, None]
        gy = np.linspace(0, 1, h)[:, None, None]
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        a = c0 + (c1 - c0) * (gx * rng.random() + gy * rng.random())
    elif kind == 1:  # noise
        a = rng.normal(128, rng.uniform(5, 80), (h, w, 3))
    elif kind == 2:  # blurred blobs
        a = rng.uniform(0, 255, (max(2, h // 16), max(2, w // 16), 3))
        a = np.asarray(Image.fromarray(a.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC))
    else:  # checkerboard of random period
        p = int(rng.integers(2, 20))
        yy, xx = np.mgrid[:h, :w]
        a = (((yy // p + xx // p) % 2)[:, :, None] * rng.uniform(0, 255, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def digit(rng: np.random.Generator, digits: np.ndarray, size: tuple[int, int]) -> Image.Image:
    a = (digits[int(rng.integers(len(digits)))] * 255 / 16).astype(np.uint8)
    s = min(size)
    return Image.fromarray(a).resize((s, s), Image.Resampling.BILINEAR).convert("RGB")


def lighting(rng: np.random.Generator, im: Image.Image) -> Image.Image:
    """Legitimately dark, bright or low-contrast versions of a photo."""
    a = np.asarray(im, np.float64)
    kind = rng.integers(3)
    if kind == 0:
        a = a * rng.uniform(0.04, 0.15)
    elif kind == 1:
        a = 255 - (255 - a) * rng.uniform(0.04, 0.15)
    else:
        a = a.mean() + (a - a.mean()) * rng.uniform(0.05, 0.15)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def encode(im: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    fmt = str(rng.choice(["JPEG"] * 6 + ["PNG", "GIF", "WEBP", "BMP", "L-JPEG", "L-PNG",
                                         "RGBA", "P"]))
    buf = io.BytesIO()
    if fmt == "JPEG":
        q = int(rng.integers(30, 101))
        im.save(buf, "JPEG", quality=q, subsampling=int(rng.integers(0, 3)))
        fmt = f"JPEG q{q}"
    elif fmt == "L-JPEG":
        im.convert("L").save(buf, "JPEG", quality=int(rng.integers(30, 101)))
    elif fmt == "L-PNG":
        im.convert("L").save(buf, "PNG")
    elif fmt == "RGBA":
        im.convert("RGBA").save(buf, "PNG")
    elif fmt == "P":
        im.convert("P", palette=Image.Palette.ADAPTIVE).save(buf, "PNG")
    elif fmt == "WEBP":
        im.save(buf, "WEBP", quality=int(rng.integers(30, 101)))
    else:
        im.save(buf, fmt)
    return buf.getvalue(), fmt


def clean_set(n: int, rng: np.random.Generator) -> list[tuple[bytes, str, Image.Image]]:
    photos, digits = _photos(), _digits()
    out = []
    for k in range(n):
        kind = ["photo", "dark photo", "drawing", "grid drawing", "flag", "screenshot",
                "texture", "digit"][k % 8]
        size = _size(rng, big=k % 25 == 0)
        if kind == "photo":
            im = photo(rng, photos, size)
        elif kind == "dark photo":
            im = lighting(rng, photo(rng, photos, size))
        elif kind in ("drawing", "grid drawing"):
            im = drawing(rng, size, kind == "grid drawing")
        elif kind == "flag":
            im = stripes(rng, size)
        elif kind == "screenshot":
            im = screenshot(rng, size)
        elif kind == "texture":
            im = texture(rng, size)
        else:
            im = digit(rng, digits, size)
        data, fmt = encode(im, rng)
        out.append((data, f"{kind} {im.size[0]}x{im.size[1]} {fmt}", im))
    return out


def _grey(data: bytes) -> np.ndarray | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"), np.float64)
    except Exception:
        return None


def corrupt_jpeg(data: bytes, rng: np.random.Generator) -> bytes:
    """1-3 bytes overwritten between 30% and 80% of the file (entropy-coded data)."""
    b = bytearray(data)
    for pos in rng.integers(len(b) * 3 // 10, len(b) * 8 // 10, int(rng.integers(1, 4))):
        b[pos] = int(rng.integers(0, 256))
    return bytes(b)


#: Other ways entropy-coded data goes bad (a second group of planted JPEGs, by kind).
KINDS = ("bitflip", "run", "delete", "insert", "swap", "cut")


def damage(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """``kind`` of damage between 10 % and 90 % of the scan: bit flips (1-5), a run of
    8-200 random bytes, 1-200 bytes deleted or inserted, two chunks of 16-400 bytes
    swapped, or the file cut there and closed with an end-of-image marker."""
    b = bytearray(data)
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    lo, hi = start + (len(b) - 2 - start) // 10, start + (len(b) - 2 - start) * 9 // 10
    pos = int(rng.integers(lo, hi))
    if kind == "bitflip":
        for p in rng.integers(lo, hi, int(rng.integers(1, 6))):
            b[p] ^= 1 << int(rng.integers(8))
    elif kind == "run":
        n = len(b[pos:pos + int(rng.integers(8, 200))])
        b[pos:pos + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    elif kind == "delete":
        del b[pos:pos + int(rng.integers(1, 200))]
    elif kind == "insert":
        b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
    elif kind == "swap":
        other = int(rng.integers(lo, hi))
        p1, p2 = min(pos, other), max(pos, other)
        n = min(int(rng.integers(16, 400)), p2 - p1)
        b[p1:p1 + n], b[p2:p2 + n] = b[p2:p2 + n], b[p1:p1 + n]
    else:  # cut
        b = b[:pos] + b"\xff\xd9"
    return bytes(b)


def planted(clean: list[tuple[bytes, str, Image.Image]], rng: np.random.Generator
            ) -> list[tuple[bytes, str, str, int | None]]:
    """(bytes, description, expected code, original index for duplicates)."""
    photos = _photos()
    out: list[tuple[bytes, str, str, int | None]] = []
    jpegs = [i for i, c in enumerate(clean) if c[1].split()[2].startswith("JPEG")
             and min(c[2].size) >= 32]
    for i in rng.choice(len(clean), 25, replace=False):
        data = clean[i][0]
        out.append((data[: int(len(data) * rng.uniform(0.3, 0.9))], "truncated " + clean[i][1],
                    "failure", None))
    for k in range(60):
        # garbled: photos/drawings JPEG at various sizes and qualities
        size = _size(rng, big=False)
        im = photo(rng, photos, size) if k % 2 else drawing(rng, size, False)
        buf = io.BytesIO()
        q = int(rng.integers(30, 101))
        im.save(buf, "JPEG", quality=q)
        data = buf.getvalue()
        bad = corrupt_jpeg(data, rng)
        g0, g1 = _grey(data), _grey(bad)
        if g1 is not None and g0 is not None and g1.shape == g0.shape \
                and np.abs(g1 - g0).mean() < 1.0:
            code = "invisible"
        else:  # larger JPEGs are drafted (decoded reduced): no block grid to check
            code = "garbled" if max(im.size) <= 512 else "garbled>512"
        out.append((bad, f"corrupt {im.size[0]}x{im.size[1]} JPEG q{q}", code, None))
    for k in range(25):
        w, h = _size(rng, big=k % 8 == 0)
        v = tuple(int(x) for x in rng.choice([0, 255, 128, int(rng.integers(256))], 1).repeat(3))
        im = Image.new("RGB", (w, h), v)
        if k % 3 == 0:  # a frame with sensor-level noise (1 grey level)
            a = np.asarray(im, np.int16) + rng.integers(-1, 2, (h, w, 3))
            im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        data, fmt = encode(im, rng)
        out.append((data, f"constant {w}x{h} {fmt}", "constant", None))
    for k in range(15):
        side = int(rng.integers(40, 400))
        w, h = side * int(rng.integers(6, 20)), side
        im = photo(rng, photos, (w, h) if k % 2 else (h, w))
        data, fmt = encode(im, rng)
        out.append((data, f"aspect {im.size[0]}x{im.size[1]} {fmt}", "extreme_aspect", None))
    for i in rng.choice(len(clean), 15, replace=False):
        out.append((clean[i][0], "copy of " + clean[i][1], "exact_duplicate", int(i)))
    for i in [j for j in rng.permutation(len(clean)) if min(clean[j][2].size) >= 48][:20]:
        im = clean[i][2]
        how = rng.integers(2)
        if how == 0:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=int(rng.integers(50, 90)))
            desc = "re-encoded"
        else:
            w, h = im.size
            im.resize((max(32, w * 3 // 4), max(32, h * 3 // 4))).save(buf := io.BytesIO(), "PNG")
            desc = "resized"
        out.append((buf.getvalue(), f"{desc} {clean[i][1]}", "near_duplicate", int(i)))
    for k in range(120):  # other kinds of damage, up to 1600 px, 4:4:4 to 4:2:0
        size = _size(rng, big=k % 3 == 0)
        im = photo(rng, photos, size) if k % 3 else drawing(rng, size, False)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(rng.integers(30, 101)),
                subsampling=int(rng.integers(0, 3)))
        kind = KINDS[k % len(KINDS)]
        bad = damage(buf.getvalue(), kind, rng)
        g0, g1 = _grey(buf.getvalue()), _grey(bad)
        invisible = (g1 is not None and g0 is not None and g1.shape == g0.shape
                     and np.abs(g1 - g0).mean() < 1.0)
        out.append((bad, f"{kind} {im.size[0]}x{im.size[1]} JPEG", "invisible" if invisible
                    else f"garbled:{kind}", None))
    del jpegs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clean", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=20, help="false positives to list")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.process_time()
    clean = clean_set(args.clean, rng)
    plants = planted(clean, rng)
    items = [c[0] for c in clean] + [p[0] for p in plants]
    names = [c[1] for c in clean] + [p[1] for p in plants]
    expect = ["clean"] * len(clean) + [p[2] for p in plants]
    origin = [None] * len(clean) + [p[3] for p in plants]
    t1 = time.process_time()
    rep = quality(items, names=names)
    t2 = time.process_time()
    print(machine_line())
    print(f"{len(clean)} clean + {len(plants)} planted images; generation {t1 - t0:.1f} s, "
          f"quality() {t2 - t1:.1f} s CPU")
    codes: dict[int, set[str]] = defaultdict(set)
    for f in rep.findings:
        codes[f.index].add("failure" if f.reason in FAILURES else f.reason)
    flags = Counter()
    true_flags = Counter()
    fps = []
    for f in rep.findings:
        code = "failure" if f.reason in FAILURES else f.reason
        flags[code] += 1
        exp = expect[f.index]
        hit = exp == code or (exp.startswith("garbled") and code in ("failure", "garbled"))
        if code in ("exact_duplicate", "near_duplicate"):
            hit = exp in ("exact_duplicate", "near_duplicate") and f.related == origin[f.index]
        if hit:
            true_flags[code] += 1
        elif exp != "invisible":
            fps.append((f.index, f.reason, exp, f.message))
    planted_n = Counter(e for e in expect if e != "clean")
    print(f"\n{'code':16} {'planted':>7} {'found':>6} {'recall':>7} {'flags':>6} {'precision':>9}")
    for code in ["failure", "garbled", "garbled>512", *[f"garbled:{k}" for k in KINDS],
                 "constant", "extreme_aspect", "exact_duplicate", "near_duplicate",
                 "too_small", "invisible"]:
        n = planted_n.get(code, 0)
        found = sum(1 for i, e in enumerate(expect) if e == code and (
            code in codes[i]
            or (code.startswith("garbled") and bool(codes[i] & {"failure", "garbled"}))
            or (code == "near_duplicate" and "exact_duplicate" in codes[i])))
        fl = flags.get(code, 0)
        rec = f"{found / n:.2f}" if n and code != "invisible" else "-"
        prec = f"{true_flags.get(code, 0) / fl:.2f}" if fl else "-"
        print(f"{code:16} {n:7d} {found:6d} {rec:>7} {fl:6d} {prec:>9}")
    clean_fp = sorted({i for i, *_ in fps if expect[i] == "clean"})
    dmg = [i for i, e in enumerate(expect) if e.startswith("garbled:")]
    print(f"{'garbled:all':16} {len(dmg):7d} "
          f"{sum(bool(codes[i] & {'failure', 'garbled'}) for i in dmg):6d}")
    print(f"\nclean images flagged: {len(clean_fp)} of {len(clean)}")
    for i, reason, exp, msg in fps[: args.show]:
        print(f"  FP [{exp}] {names[i]}: {reason}: {msg}")


if __name__ == "__main__":
    main()
