"""Image properties speed, and how well the audit finds planted problems (issue 16).

Speed: 224x224 JPEGs (drawn fruit, quality 90). Decoding (Pillow, into RGB) and properties
(``compute_properties`` on the decoded images) are timed apart, in this process's CPU
seconds (the host is shared: CPU time, not wall time, is what one core spends), median of
``--repeats``. Images/s per core = images / CPU seconds. A naive per-image numpy/scipy
computation of the same properties (the tests' reference) is timed in the same run on a
subset, for a ratio. A 1600x1200 JPEG is decoded with and without Pillow's draft mode.

Audit: planted problems in two training sets written to a temporary folder, then
``audit_images`` on the folder; precision and recall per planted category:

- fruit (``aiwarden.images.synthetic.write_planted_set``): 2 classes, corrupt (truncated,
  random bytes, empty, header zeroed, truncated PNG), constant frames, duplicate pairs
  (exact, re-encoded at quality 55, resized), mislabelled, test images leaking from train,
  outliers (static, a photograph), dark images that must not be flagged, and 10 JPEGs with
  3 bytes overwritten (most decode silently into garbage: counted apart);
- digits (scikit-learn's bundled 8x8 digits, upscaled to 64x64 grey PNGs): 10 classes,
  the same kinds of plants, mislabelled digits given another class's folder.

A duplicate is counted found when the finding names both members of the planted pair.
"Other flags" are findings on images where nothing was planted.

    .venv/bin/python bench/images.py [--images 512] [--repeats 5] [--per-class 100]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.images import FAILURES, audit_images, compute_properties, decode
from aiwarden.images.synthetic import KINDS, fruit_image, to_jpeg, write_planted_set
from bench._machine import machine_line


def _cpu(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), out


def _naive(decoded) -> None:
    """The per-image reference: float arrays, scipy convolve and dct, np.histogram."""
    import scipy.fftpack
    import scipy.ndimage
    from PIL import Image

    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    for d in decoded:
        px = np.asarray(d.image, np.float64)
        g = np.asarray(d.image.convert("L"), np.float64)
        g.mean(), g.std()
        scipy.ndimage.convolve(g, kernel)[1:-1, 1:-1].var()
        mx, mn = px.max(axis=2), px.min(axis=2)
        np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1), 0).mean()
        px.mean(axis=(0, 1)), px.std(axis=(0, 1))
        for c in range(3):
            np.histogram(px[:, :, c], bins=8, range=(0, 256))
        h = np.bincount(g.astype(np.uint8).ravel(), minlength=256) / g.size
        -(h[h > 0] * np.log2(h[h > 0])).sum()
        small = np.asarray(d.image.convert("L").resize((32, 32), Image.Resampling.BOX), float)
        scipy.fftpack.dct(scipy.fftpack.dct(small, axis=0), axis=1)


def speed(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    jpegs = [to_jpeg(fruit_image(KINDS[i % 2], rng)) for i in range(n)]
    t_dec, decoded = _cpu(lambda: [decode(j) for j in jpegs], repeats)
    t_prop, _ = _cpu(lambda: compute_properties(decoded), repeats)  # type: ignore[arg-type]
    sub = decoded[: max(1, n // 4)]  # type: ignore[index]
    t_naive, _ = _cpu(lambda: _naive(sub), max(1, repeats // 2))
    naive_rate = len(sub) / t_naive
    print(f"224x224 JPEG, {n} images, CPU seconds (median of {repeats}):")
    print(f"  decode      {t_dec:.3f} s  {n / t_dec:8.0f} images/s per core")
    print(f"  properties  {t_prop:.3f} s  {n / t_prop:8.0f} images/s per core  (target 500)")
    print(f"  naive per-image numpy/scipy reference: {naive_rate:.0f} images/s per core "
          f"-> properties are {n / t_prop / naive_rate:.1f}x faster")
    print(f"  decode + properties: {n / (t_dec + t_prop):.0f} images/s per core")
    big = to_jpeg(fruit_image("banana", rng).resize((1600, 1200)))
    t_draft, _ = _cpu(lambda: [decode(big) for _ in range(10)], repeats)
    t_full, _ = _cpu(lambda: [decode(big, max_side=1600) for _ in range(10)], repeats)
    print(f"1600x1200 JPEG decode: draft to <=512 px {t_draft / 10 * 1000:.1f} ms, "
          f"full size {t_full / 10 * 1000:.1f} ms ({t_full / t_draft:.1f}x)")


def _digits_set(root: Path, per_class: int, seed: int) -> dict[str, set]:
    """sklearn's digits as 64x64 grey PNGs in root/train/<digit>/, with planted problems."""
    from PIL import Image
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    x, y = load_digits(return_X_y=True)
    truth: dict[str, set] = {k: set() for k in ("corrupt", "constant", "duplicate",
                                                "mislabelled", "leakage", "outlier", "dark")}

    def png(v: np.ndarray) -> bytes:
        im = Image.fromarray((v.reshape(8, 8) * 255 / 16).astype(np.uint8), "L")
        buf = io.BytesIO()
        im.resize((64, 64), Image.Resampling.BILINEAR).save(buf, "PNG")
        return buf.getvalue()

    def put(rel: str, data: bytes) -> str:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        return rel

    kept = []
    perms = [rng.permutation(np.flatnonzero(y == d)) for d in range(10)]
    for digit in range(10):
        for n, r in enumerate(perms[digit][:per_class]):
            kept.append((put(f"train/{digit}/{n:04d}.png", png(x[r])), x[r]))
        for n in range(2):  # a digit of another class (not in the set already) filed here
            other = int(rng.choice([d for d in range(10) if d != digit]))
            r = perms[other][per_class + 2 * digit + n]
            truth["mislabelled"].add(put(f"train/{digit}/x{n}.png", png(x[r])))
    some = png(x[0])
    for n, data in enumerate((some[: len(some) // 2], rng.bytes(800), b"",
                              b"\0" * 16 + some[16:], some[:40])):
        truth["corrupt"].add(put(f"train/{n}/bad{n}.png", data))
    for n, level in enumerate((0, 255, 90)):
        buf = io.BytesIO()
        Image.new("L", (64, 64), level).save(buf, "PNG")
        truth["constant"].add(put(f"train/{n}/blank{n}.png", buf.getvalue()))
    for n in range(2):  # not digits: static, and a letter
        im = Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L")
        if n:
            im = Image.new("L", (64, 64), 0)
            from PIL import ImageDraw
            ImageDraw.Draw(im).rectangle((8, 8, 56, 20), fill=255)
            ImageDraw.Draw(im).rectangle((8, 8, 20, 56), fill=255)
        buf = io.BytesIO()
        im.save(buf, "PNG")
        truth["outlier"].add(put(f"train/{n + 3}/odd{n}.png", buf.getvalue()))
    picks = rng.choice(len(kept), 8, replace=False)
    for n, p in enumerate(picks[:5]):
        rel, v = kept[p]
        data = (root / rel).read_bytes() if n < 3 else png(np.clip(v + 0.5, 0, 16))
        truth["duplicate"].add(frozenset((rel, put(f"{rel[:-4]}_copy{n}.png", data))))
    for n, p in enumerate(picks[5:]):
        rel, v = kept[p]
        truth["leakage"].add(put(f"test/{rel.split('/')[1]}/leak{n}.png", png(v)))
    return truth


def _flip_bytes(root: Path, truth: dict[str, set], n: int, seed: int) -> None:
    """JPEGs with 3 bytes overwritten past the first quarter: most decode without error
    into garbage (the silent kind of corruption); found only as outliers or label issues."""
    rng = np.random.default_rng(seed)
    truth["bit_flipped"] = set()
    for t in range(n):
        data = bytearray(to_jpeg(fruit_image(KINDS[t % 2], rng)))
        for pos in rng.integers(len(data) // 4, len(data) - 10, 3):
            data[pos] = int(rng.integers(0, 256))
        rel = f"train/{KINDS[t % 2]}/{KINDS[t % 2]}_flipped{t}.jpg"
        (root / rel).write_bytes(bytes(data))
        truth["bit_flipped"].add(rel)


def score(report, truth: dict[str, set]) -> None:
    named = {}
    for cat, reasons in (("corrupt", FAILURES | {"garbled"}), ("constant", {"constant"}),
                         ("mislabelled", {"label_issue"}), ("leakage", {"leakage"}),
                         ("outlier", {"outlier"})):
        named[cat] = {f.name for f in report.findings if f.reason in reasons}
    pairs = {frozenset((f.name, f.related_name)) for f in report.findings
             if f.reason in ("exact_duplicate", "near_duplicate")}
    print(f"  label check: {report.label_check}")
    print(f"  {'category':12} {'planted':>7} {'flagged':>7} {'right':>5} {'precision':>9} "
          f"{'recall':>6}")
    flipped = truth.get("bit_flipped", set())  # right in any category: scored apart
    for cat in ("corrupt", "constant", "duplicate", "mislabelled", "leakage", "outlier"):
        got = pairs if cat == "duplicate" else named[cat] - flipped
        right = len(got & truth[cat])
        prec = right / len(got) if got else float("nan")
        print(f"  {cat:12} {len(truth[cat]):7d} {len(got):7d} {right:5d} {prec:9.3f} "
              f"{right / len(truth[cat]):6.3f}")
    if "bit_flipped" in truth:
        hit = {f.name for f in report.findings} & truth["bit_flipped"]
        how = sorted({f.reason for f in report.findings if f.name in hit})
        print(f"  bit-flipped JPEGs (decode silently) flagged by any finding: {len(hit)} of "
              f"{len(truth['bit_flipped'])} ({', '.join(how)})")
    planted = set().union(*(t for k, t in truth.items() if k not in ("duplicate", "dark")))
    planted |= {n for pair in truth["duplicate"] for n in pair}
    other = sorted({f"{f.name} ({f.reason})" for f in report.findings
                    if f.name not in planted})
    print(f"  other flags (nothing planted there): {len(other)} of {report.images} images"
          + (": " + ", ".join(other[:8]) if other else ""))
    if truth["dark"]:
        dark = {f.name for f in report.findings} & truth["dark"]
        print(f"  dark images flagged: {len(dark)} of {len(truth['dark'])}")


def audit(per_class: int) -> None:
    def fruit(root: Path) -> dict[str, set]:
        truth = write_planted_set(root, per_class, seed=2)
        _flip_bytes(root, truth, 10, seed=7)
        return truth

    for name, build in (("fruit", fruit),
                        ("digits", lambda r: _digits_set(r, per_class // 2, seed=2))):
        with tempfile.TemporaryDirectory() as tmp:
            truth = build(Path(tmp))
            t = time.process_time()
            report = audit_images(tmp)
            cpu = time.process_time() - t
            print(f"{name}: {report.images} images, audit {cpu:.1f} CPU s")
            score(report, truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=100)
    args = ap.parse_args()
    print(machine_line())
    speed(args.images, args.repeats)
    audit(args.per_class)
    print(f"load average at the end: {__import__('os').getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
