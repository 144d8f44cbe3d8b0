"""Image properties as columns, computed with numpy over batches of same-sized images.

Each property is a plain definition a reader can recompute (tests/images do, with Pillow,
numpy and scipy):

- ``brightness``: mean of Pillow's ``L`` grey (ITU-R 601 luma, integer-rounded) / 255.
- ``contrast``: RMS contrast, the standard deviation of that grey / 255.
- ``sharpness``: variance of the 4-neighbour Laplacian of the grey (0..255 scale) over the
  interior pixels (OpenCV's blur measure; < ~100 is blurry at 224 px).
- ``saturation``: mean HSV saturation, (max - min) / max per pixel (0 where max is 0).
- ``mean_r/g/b``: channel means / 255; ``channel_std_max``: the largest channel standard
  deviation / 255 (near 0: a one-colour frame); ``hist_{r,g,b}_{i}``: share of the pixels in each of
  ``hist_bins`` equal bins per channel.
- ``entropy``: Shannon entropy (bits) of the 256-bin grey histogram (Pillow's ``entropy()``).
- ``block_step``: JPEGs decoded at their own scale only (NaN otherwise): over the 8-pixel
  block rows y, the largest mean |grey[y] - grey[y-1]| divided by (the mean of the same at
  y-2, y-1, y+1, y+2, rows inside blocks) + 1. Corrupt entropy-coded data that decodes
  without error shifts every later block's DC: a step exactly on a block row.
- ``phash``: 64-bit DCT perceptual hash (grey area-averaged to 32x32, the 8x8 lowest
  DCT-II frequencies above their median: imagehash's definition with a box filter in place
  of Lanczos, 4x cheaper); ``phash_fine``: the same over the 16x16 lowest frequencies,
  256 bits as 4 uint64 words (near duplicates: re-encoded or resized copies stay within ~10
  bits, distinct images were >= 34 apart in our tests); ``dhash``: difference hash (grey
  area-averaged to 9x8, each pixel brighter than its left neighbour).

Histograms come from Pillow's C code per image (one pass); means, RMS contrast and entropy
follow exactly from them. The per-pixel maps (Laplacian, saturation) are numpy over the
batch of same-sized images.

Pixel properties are computed on the decoded pixels, which are reduced to ``max_side`` on
the longer side (default 512): the same reduction for reference and production, so they
compare. ``width``, ``height``, ``aspect_ratio``, ``channels``, ``file_size``, ``format`` and
``mode`` describe the original.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from threadpoolctl import threadpool_limits

from aiwarden.errors import ParameterError
from aiwarden.images._decode import Decoded, DecodeFailure, decode
from aiwarden.images._deps import pil
from aiwarden.images._garble import (
    COPY_BIN,
    channel_swap,
    dc_rows,
    dc_shift,
    grey_fill,
    noise_block,
    row_break,
    row_copy,
    row_diffs,
    tail_fill,
)

__all__ = ["NUMERIC", "PropertyTable", "compute_properties", "concat", "hamming", "properties"]

NUMERIC = ("width", "height", "aspect_ratio", "channels", "file_size", "brightness",
           "contrast", "sharpness", "saturation", "mean_r", "mean_g", "mean_b", "channel_std_max",
           "entropy", "block_step", "grey_fill", "dc_shift", "row_break", "tail_fill",
           "noise_block", "row_copy", "channel_swap", "non_finite")
_CHUNK = 32


@dataclass(frozen=True)
class PropertyTable:
    """One row per input: ``columns`` maps a name to an array (NaN where decoding failed,
    ``error`` holds the reason code there and None elsewhere, ``error_detail`` the
    decoder's sentence: which limit, how many bytes)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["error"])

    @property
    def ok(self) -> np.ndarray:
        return np.array([e is None for e in self.columns["error"]], dtype=bool)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def numeric(self) -> dict[str, np.ndarray]:
        """The float columns only: what a profile folds as ordinary numeric features."""
        return {k: v for k, v in self.columns.items() if v.dtype.kind == "f"}

    def phash_hex(self) -> list[str]:
        return [format(int(h), "016x") for h in self.columns["phash"]]

    def to_dict(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for k, v in self.columns.items():
            if k in ("phash", "dhash"):
                out[k] = [format(int(h), "016x") for h in v]
            elif k == "phash_fine":
                out[k] = ["".join(format(int(w), "016x") for w in row) for row in v]
            elif v.dtype.kind == "f":
                out[k] = [None if np.isnan(x) else float(x) for x in v]
            else:
                out[k] = v.tolist()
        return out

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.to_dict())


def properties(items: Sequence[Any], *, hist_bins: int = 8, **decode_options: Any
               ) -> PropertyTable:
    """Decode then measure: ``properties(list_of_bytes) -> PropertyTable``.

    Items are decoded 256 at a time, so memory is bounded by a chunk, not the batch.

    Examples
    --------
    >>> import numpy as np
    >>> t = properties([np.full((4, 6, 3), 255, np.uint8), b"not an image"])
    >>> t.columns["width"].tolist(), float(t.columns["brightness"][0]), t.columns["error"][1]
    ([6.0, nan], 1.0, 'not_an_image')
    """
    items = list(items)
    parts = [compute_properties([decode(it, **decode_options) for it in items[s:s + 256]],
                                hist_bins=hist_bins) for s in range(0, len(items), 256)]
    return concat(parts) if parts else compute_properties([], hist_bins=hist_bins)


def concat(tables: Sequence[PropertyTable]) -> PropertyTable:
    """Rows of several tables, in order (decoded images are held one chunk at a time)."""
    keys = tables[0].columns
    return PropertyTable({k: np.concatenate([t.columns[k] for t in tables]) for k in keys})


def compute_properties(decoded: Sequence[Decoded | DecodeFailure], *, hist_bins: int = 8
                       ) -> PropertyTable:
    """Properties of already-decoded images (so decoding can be timed on its own)."""
    if not isinstance(hist_bins, int) or isinstance(hist_bins, bool) or hist_bins not in (
            1, 2, 4, 8, 16, 32, 64, 128, 256):
        raise ParameterError(f"The 'hist_bins' parameter of properties must be a power of 2 "
                             f"in [1, 256]. Got {hist_bins!r} instead.", "hist_bins")
    n = len(decoded)
    cols: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in NUMERIC}
    hist_names = [f"hist_{c}_{i}" for c in "rgb" for i in range(hist_bins)]
    hist = np.full((n, 3 * hist_bins), np.nan)
    phash = np.zeros(n, np.uint64)
    phash_fine = np.zeros((n, 4), np.uint64)
    dhash = np.zeros(n, np.uint64)
    fmt = np.full(n, None, dtype=object)
    mode = np.full(n, None, dtype=object)
    digest = np.full(n, None, dtype=object)
    error = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    no_blocks: list[int] = []  # not a JPEG at its own scale: no 8-pixel block grid
    for i, d in enumerate(decoded):
        if isinstance(d, DecodeFailure):
            error[i], detail[i] = d.reason, d.message
            if d.file_size:
                cols["file_size"][i] = d.file_size
            continue
        groups[d.image.size].append(i)
        cols["width"][i], cols["height"][i] = d.width, d.height
        cols["channels"][i], cols["file_size"][i] = d.channels, d.file_size
        cols["non_finite"][i] = d.non_finite
        if d.format != "JPEG" or d.scale != 1.0:
            no_blocks.append(i)
        fmt[i], mode[i], digest[i] = d.format, d.mode, d.digest
    cols["aspect_ratio"] = cols["width"] / cols["height"]
    with threadpool_limits(1, user_api="blas"):  # small matrices: threads only spin
        _measure_groups(decoded, groups, cols, hist, (phash, phash_fine, dhash), hist_bins)
    cols["block_step"][no_blocks] = np.nan
    out: dict[str, np.ndarray] = dict(cols)
    out.update({name: hist[:, j] for j, name in enumerate(hist_names)})
    out.update(phash=phash, phash_fine=phash_fine, dhash=dhash, format=fmt, mode=mode,
               digest=digest, error=error, error_detail=detail)
    return PropertyTable(out)


def _measure_groups(decoded: Sequence[Any], groups: dict[tuple[int, int], list[int]],
                    cols: dict[str, np.ndarray], hist: np.ndarray,
                    hashes: tuple[np.ndarray, ...], bins: int) -> None:
    """:func:`_measure` over each group of same-sized images, ``_CHUNK`` at a time.

    BLAS is held to one thread: the row Gram matrices of ``row_copy`` are small, and
    OpenBLAS's threads on a busy machine cost 40x the CPU of one thread (measured)."""
    for idx in groups.values():
        for start in range(0, len(idx), _CHUNK):
            part = idx[start:start + _CHUNK]
            images = [decoded[i].image for i in part]
            blocks = [(decoded[i].grid, decoded[i].mcu) for i in part]
            _measure(images, part, cols, hist, hashes, bins, blocks)


def _measure(images: list[Any], rows: list[int], cols: dict[str, np.ndarray],
             hist: np.ndarray, hashes: tuple[np.ndarray, ...], bins: int,
             blocks: list[tuple[int, int]]) -> None:
    """Histograms in Pillow's C per image; the per-pixel maps in numpy over the batch.
    ``blocks``: per image its JPEG block grid and MCU height ((0, 0): none)."""
    phash, phash_fine, dhash = hashes
    Image = pil()
    k = len(images)
    w, h = images[0].size
    npx = w * h
    greys = [im.convert("L") for im in images]  # Pillow's L: ITU-R 601 luma, rounded
    rgb_hist = np.array([im.histogram() for im in images], np.float64).reshape(k, 3, 256)
    grey_hist = np.array([g.histogram() for g in greys], np.float64)
    levels = np.arange(256.0)
    means = rgb_hist @ levels / npx
    cols["mean_r"][rows], cols["mean_g"][rows], cols["mean_b"][rows] = (means / 255).T
    var = rgb_hist @ levels**2 / npx - means**2
    cols["channel_std_max"][rows] = np.sqrt(np.maximum(var, 0.0)).max(axis=1) / 255
    hist[rows] = rgb_hist.reshape(k, 3, bins, 256 // bins).sum(axis=3).reshape(k, -1) / npx
    p = grey_hist / npx
    mean = p @ levels
    cols["brightness"][rows] = mean / 255
    cols["contrast"][rows] = np.sqrt(np.maximum(p @ levels**2 - mean**2, 0.0)) / 255
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["entropy"][rows] = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    g8 = np.stack([np.asarray(x) for x in greys])
    g = g8.astype(np.int16)
    if h >= 3 and w >= 3:
        lap16 = (g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:]
                 - 4 * g[:, 1:-1, 1:-1])
        cols["sharpness"][rows] = _variance(lap16.reshape(k, -1))
        cols["noise_block"][rows] = noise_block(lap16, g)
    if w >= 4 * COPY_BIN:  # rows as means of 8 columns: Pillow's box reduction is cheapest
        binned = np.stack([np.asarray(x.resize((w // COPY_BIN, h), Image.Resampling.BOX))
                           for x in greys])
        cols["row_copy"][rows] = row_copy(binned)
    else:
        cols["row_copy"][rows] = 0.0
    if h >= 11:
        cols["block_step"][rows] = block_steps(g, g8)
    rgb = np.stack([np.asarray(im) for im in images])
    half, diffs = row_diffs(rgb)  # shared by the two row checks
    cols["row_break"][rows] = row_break(rgb, half, diffs)
    cols["channel_swap"][rows] = channel_swap(half, diffs)
    del half
    cols["tail_fill"][rows] = tail_fill(rgb)
    for grid, mcu in {b for b in blocks if b[0] > 0}:  # JPEGs, by block grid (one usually)
        sel = [j for j, b in enumerate(blocks) if b == (grid, mcu)]
        part = rgb if len(sel) == k else rgb[sel]
        at = [rows[j] for j in sel]
        cols["grey_fill"][at] = grey_fill(part, grid)
        cols["dc_shift"][at] = dc_shift(_ycc_rows(part, dc_rows(h, mcu)), grid, mcu, h)
    cols["saturation"][rows] = _saturation(rgb) / npx
    del rgb
    box = Image.Resampling.BOX
    small = np.stack([np.asarray(x.resize((32, 32), box)) for x in greys]).astype(np.float64)
    diff = np.stack([np.asarray(x.resize((9, 8), box)) for x in greys]).astype(np.int16)
    dct = scipy.fft.dct(scipy.fft.dct(small, axis=1), axis=2)
    low = dct[:, :8, :8].reshape(k, 64)
    phash[rows] = _pack(low > np.median(low, axis=1, keepdims=True))
    fine = dct[:, :16, :16].reshape(k, 256)
    phash_fine[rows] = _pack(fine > np.median(fine, axis=1, keepdims=True)).reshape(k, 4)
    dhash[rows] = _pack((diff[:, :, 1:] > diff[:, :, :-1]).reshape(k, 64))


def _variance(x: np.ndarray) -> np.ndarray:
    """Per row of the int16 array ``x`` (k, n), the population variance, from integer sums
    (exact: no float rounding until the last step)."""
    n = x.shape[1]
    sq = x.astype(np.int32)
    sq *= sq
    m = x.sum(axis=1, dtype=np.int64) / n
    return sq.sum(axis=1, dtype=np.int64) / n - m * m


def _ycc_rows(rgb: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows ``at`` of each image of ``rgb`` (k, h, w, 3) in Pillow's YCbCr, one conversion
    for the batch (Pillow converts pixel by pixel, so stacking changes no value)."""
    k, _, w, _ = rgb.shape
    part = np.ascontiguousarray(rgb[:, at]).reshape(k * len(at), w, 3)
    ycc = np.asarray(pil().fromarray(part, "RGB").convert("YCbCr"))
    return ycc.reshape(k, len(at), w, 3)


def _hsv_saturation_table() -> np.ndarray:
    mx = np.arange(256.0)[:, None]
    mn = np.arange(256.0)[None, :]
    return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1.0), 0.0).ravel()


#: HSV saturation (max - min) / max for max * 256 + min.
_SATURATION = _hsv_saturation_table()


def _saturation(rgb: np.ndarray) -> np.ndarray:
    """Per image of ``rgb`` (k, h, w, 3) uint8, the sum over the pixels of their HSV
    saturation: each pixel's (max, min) pair counted, then weighted by its saturation
    (a table): exact, and 2x cheaper than dividing per pixel."""
    k = rgb.shape[0]
    planes = np.empty((3, *rgb.shape[:3]), np.uint8)  # max/min over strided channels: 2x slower
    for c in range(3):
        planes[c] = rgb[..., c]
    top = np.maximum(planes[0], planes[1])
    np.maximum(top, planes[2], out=top)
    least = np.minimum(planes[0], planes[1])
    np.minimum(least, planes[2], out=least)
    pair = top.astype(np.uint16)
    pair <<= 8
    pair |= least
    flat = pair.reshape(k, -1)
    return np.array([np.bincount(flat[i], minlength=65536) @ _SATURATION for i in range(k)])


#: A block-row step whose per-block means along the row vary less than this (relative to
#: its mean size) is one straight edge of the picture (a flag, a bar, a text box).
EDGE_UNIFORMITY = 0.15
#: ... and one no larger than this times the largest step off the block rows is an edge
#: like the picture's others (drawings put edges on every row, some on block rows).
EDGE_MARGIN = 1.1
#: ... and one that another block row undoes (projected on it, at least this share back):
#: a bar or a box between two block rows.
BOX_UNDO = 0.5


def block_steps(g: np.ndarray, g8: np.ndarray | None = None) -> np.ndarray:
    """``block_step`` of a batch of grey images (k, h, w), h >= 11: the largest block-row
    ratio (see the module docstring), or 1.0 when that step is explained as an edge of the
    picture rather than corrupt data, which is when any of these holds:

    - it is uniform along the row (per-8-pixel means vary < ``EDGE_UNIFORMITY`` of its mean
      size): a straight edge such as a flag's band or a screenshot's bar;
    - it is no more than ``EDGE_MARGIN`` times the largest step on any other row: the
      picture has edges that large anyway, one happens to sit on a block row;
    - the block columns step at least half as much (the same ratio, by columns): a drawing
      laid out on the 8-pixel grid (UI, charts, checkerboards), not a DC shift;
    - another block row steps back by at least ``BOX_UNDO`` of it, block by block: the
      other edge of a bar or box (a DC shift from corrupt data persists).

    Corrupt entropy-coded data shifts the DC of the blocks after it: a step on a block row
    over part of the width, larger than the picture's own edges. Measured on
    bench/image_quality_fp.py: flags, grid drawings and text at 16-2400 px had raw ratios
    up to 162 (31 of 320 clean images above 4); these rules leave ~1 of 320."""
    k, h, w = g.shape
    if g8 is None:
        g8 = g.astype(np.uint8)
    step = _abs_diff(g8, 1).sum(axis=2, dtype=np.uint32) / w  # step[:, y - 1]: y vs y - 1
    ys = np.arange(8, h - 2, 8)
    around = (step[:, ys - 3] + step[:, ys - 2] + step[:, ys] + step[:, ys + 1]) / 4
    ratio = step[:, ys - 1] / (around + 1.0)
    best = ratio.argmax(axis=1)
    top = ratio[np.arange(k), best]
    y = ys[best]
    raw = step[np.arange(k), y - 1]
    off = np.ones(h - 1, dtype=bool)
    off[ys - 1] = False
    other = step[:, off].max(axis=1) if off.any() else np.zeros(k)
    d = (g[np.arange(k), y] - g[np.arange(k), y - 1]).astype(np.float64)  # (k, w)
    nb = w // 8
    per_block = d[:, : nb * 8].reshape(k, nb, 8).mean(axis=2) if nb >= 1 else d
    uniform = per_block.std(axis=1) / (np.abs(d).mean(axis=1) + 1.0) < EDGE_UNIFORMITY
    xs = np.arange(8, w - 2, 8)
    if len(xs):
        cstep = _abs_diff(g8, 2).sum(axis=1, dtype=np.uint32) / h
        caround = (cstep[:, xs - 3] + cstep[:, xs - 2] + cstep[:, xs] + cstep[:, xs + 1]) / 4
        cols_top = (cstep[:, xs - 1] / (caround + 1.0)).max(axis=1)
    else:
        cols_top = np.zeros(k)
    box = np.zeros(k, dtype=bool)
    if nb >= 1 and len(ys) > 1:  # a box's far edge undoes the step: a later DC shift does not
        rows_d = (g[:, ys, : nb * 8] - g[:, ys - 1, : nb * 8]).astype(np.float64)
        signed = rows_d.reshape(k, len(ys), nb, 8).mean(axis=3)  # (k, rows, blocks)
        ref = signed[np.arange(k), best]
        undo = -np.einsum("krn,kn->kr", signed, ref) / ((ref * ref).sum(axis=1) + 1e-9)[:, None]
        undo[np.arange(k), best] = 0.0
        box = (undo > BOX_UNDO).any(axis=1)
    explained = uniform | (raw <= EDGE_MARGIN * other) | (cols_top >= top / 2) | box
    return np.where(explained, 1.0, top)


def _abs_diff(g8: np.ndarray, axis: int) -> np.ndarray:
    """|difference| of neighbours along ``axis`` of uint8 ``g8``, in uint8 (max - min):
    2x cheaper than in int16."""
    a = g8[:, 1:] if axis == 1 else g8[:, :, 1:]
    b = g8[:, :-1] if axis == 1 else g8[:, :, :-1]
    d = np.maximum(a, b)
    d -= np.minimum(a, b)
    return d


def _pack(bits: np.ndarray) -> np.ndarray:
    """(n, 64·w) booleans -> n·w uint64, the first bit the most significant."""
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between hashes: (len(a), len(b)). Hashes are uint64
    (shape (n,)) or several uint64 words each (shape (n, w))."""
    a = np.asarray(a, np.uint64)
    b = np.asarray(b, np.uint64)
    if a.ndim == 1:
        return np.bitwise_count(a[:, None] ^ b[None, :]).astype(np.int16)
    out = np.zeros((len(a), len(b)), np.int16)
    for w in range(a.shape[1]):
        out += np.bitwise_count(a[:, None, w] ^ b[None, :, w])
    return out
