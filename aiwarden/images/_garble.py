"""Two signatures of corrupt JPEG data that decodes without an error, on batches of images.

A JPEG's entropy-coded data is one bit stream in scan order, block after block; each
block's DC (its mean) is coded as the difference from the previous block's. A damaged byte,
a lost or inserted run of bytes, or swapped chunks (the kinds bench/image_quality_fp.py
plants) leave two traces that clean pictures almost never show:

- ``grey_fill``: when the decoder runs out of data early (the stream desynchronised, or a
  truncated file was closed with an end marker), libjpeg leaves the remaining blocks
  zero, which decodes to exactly (128, 128, 128): the image ends with a run of exactly
  mid-grey blocks, in scan order, that starts somewhere inside a row.
- ``dc_shift``: every block after the damage is offset by the same DC error (in one or
  more colour components), so block row r is offset from block column j on, and block row
  r + 1 before j: a step shaped like a staircase on the block grid, of one sign and size
  along both halves, while the complementary halves (row r before j, row r + 1 from j on)
  do not step. A picture's own edge on a block row is straight (both halves of a row step,
  or neither), so it does not match; the score is the size of that step in units of the
  image's own row-to-row roughness off the grid.

Both read the decoded pixels on the JPEG block grid (8 pixels at full scale, 8 x the
draft scale / the box reduction for large JPEGs: ``grid``), so they run on the reduced
copy of a large image and the cost stays bounded. Measured on bench/image_quality_fp.py.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AGREE", "COSINE", "QUIET", "dc_shift", "grey_fill", "row_break", "row_tear",
           "tail_fill"]

#: A block's shift counts towards the staircase when it is at least this share of the
#: staircase's mean shift; at least ``AGREE`` of the blocks of each half must.
SHARE = 0.4
AGREE = 0.7
#: The two halves must shift in the same colour direction (cosine of the RGB shifts).
COSINE = 0.8
#: The complementary halves step by less than this share of the staircase's step.
QUIET = 0.35
#: Each half of a staircase spans at least this many blocks (a 16-pixel-wide image has
#: too few to tell a shift from its content).
MIN_HALF = 2
#: On a reduced large image a grey run of fewer blocks is not counted (a block is 1-4
#: pixels there, and a gradient may pass through mid-grey in a corner).
MIN_FILL = 2


def grey_fill(rgb: np.ndarray, grid: int) -> np.ndarray:
    """Share of the blocks (``grid`` x ``grid``, raster order) in the trailing run of blocks
    whose every pixel is within 1 of (128, 128, 128); 0 when the last block is not grey or
    the whole image is (a constant frame). ``rgb``: (k, h, w, 3) uint8."""
    k, h, w, _ = rgb.shape
    out = np.zeros(k)
    if grid < 1:
        return out
    last = rgb[:, -1, -1].astype(np.int16)  # the last block must be grey: most are not
    for i in np.flatnonzero((np.abs(last - 128) <= 1).all(axis=1)):
        grey = (np.abs(rgb[i].astype(np.int16) - 128) <= 1).all(axis=2)
        ny, nx = -(-h // grid), -(-w // grid)
        pad = np.ones((ny * grid, nx * grid), dtype=bool)  # edge blocks: their own pixels
        pad[:h, :w] = grey
        blocks = pad.reshape(ny, grid, nx, grid).all(axis=(1, 3)).ravel()
        other = np.flatnonzero(~blocks)
        run = len(blocks) - other[-1] - 1 if len(other) else 0
        if run >= (1 if grid >= 8 else MIN_FILL):
            out[i] = run / len(blocks)
    return out


def dc_shift(ycc: np.ndarray, grid: int, mcu: int) -> np.ndarray:
    """The largest staircase step (see the module docstring) in units of the image's
    roughness, per image of ``ycc`` (k, h, w, 3) uint8, YCbCr (the components JPEG codes,
    so a DC error is a step in one of them); 0 where none qualifies.

    ``grid``: block width in pixels; ``mcu``: the height of a row of coded blocks (16 for
    4:2:0 chroma subsampling, else 8, times the draft scale). Per block row boundary y and
    block column b, the step is the row difference at y less the mean of the row
    differences just above and below (a smooth gradient cancels), averaged over the block;
    the roughness is the same statistic half a block row off the grid."""
    k, h, w, _ = ycc.shape
    nbx = w // grid if grid >= 2 else 0
    if nbx < 2 * MIN_HALF:
        return np.zeros(k)
    ys = np.arange(mcu, h - 1, mcu) if mcu >= 2 else np.arange(0)
    ys = ys[ys >= 2]
    if len(ys) < 2 or nbx < 2:
        return np.zeros(k)
    a = ycc[:, :, : nbx * grid]
    sigma = np.abs(_steps(a, ys - mcu // 2, nbx, grid)).mean(axis=(2, 3)) + 1.0  # (k, 3)
    e = _steps(a, ys, nbx, grid) / sigma[:, :, None, None]  # (k, 3, rows, blocks)
    cs = np.cumsum(e, axis=3)
    j = np.arange(MIN_HALF, nbx - MIN_HALF + 1)
    suffix = (cs[..., -1:] - cs[..., j - 1]) / (nbx - j)  # mean of blocks j.. of each row
    prefix = cs[..., j - 1] / j  # mean of blocks ..j-1
    top, bottom = suffix[:, :, :-1], prefix[:, :, 1:]  # row r from j, row r+1 before j
    other_top, other_bottom = prefix[:, :, :-1], suffix[:, :, 1:]
    n_top, n_bottom = np.linalg.norm(top, axis=1), np.linalg.norm(bottom, axis=1)
    cosine = (top * bottom).sum(axis=1) / (n_top * n_bottom + 1e-9)
    u = top + bottom
    u /= np.linalg.norm(u, axis=1, keepdims=True) + 1e-9  # (k, 3, R, J) the shift's colour
    size = np.minimum((u * top).sum(axis=1), (u * bottom).sum(axis=1))
    quiet = ((np.abs((u * other_top).sum(axis=1)) < QUIET * size)
             & (np.abs((u * other_bottom).sum(axis=1)) < QUIET * size))
    score = np.zeros(size.shape)
    # per block, for the candidates still in: how many blocks of each half carry the shift
    ki, ri, ji = np.nonzero((cosine > COSINE) & quiet)
    if len(ki):
        uc = u[ki, :, ri, ji]  # (n, 3)
        p_top = np.einsum("nc,ncx->nx", uc, e[ki, :, ri])
        p_bottom = np.einsum("nc,ncx->nx", uc, e[ki, :, ri + 1])
        jc = j[ji]
        right = np.arange(nbx)[None, :] >= jc[:, None]  # block x in row r's half
        least = SHARE * size[ki, ri, ji][:, None]
        agree_top = ((p_top > least) & right).sum(axis=1) / (nbx - jc)
        agree_bottom = ((p_bottom > least) & ~right).sum(axis=1) / jc
        ok = (agree_top >= AGREE) & (agree_bottom >= AGREE)
        score[ki[ok], ri[ok], ji[ok]] = np.minimum(n_top, n_bottom)[ki[ok], ri[ok], ji[ok]]
    return score.reshape(k, -1).max(axis=1)


def _steps(a: np.ndarray, ys: np.ndarray, nbx: int, grid: int) -> np.ndarray:
    """(k, 3, len(ys), nbx): per block, the mean over its columns of the step from row
    y - 1 to y less the mean of the steps y-2 -> y-1 and y -> y+1."""
    ys = ys[(ys >= 2) & (ys + 1 < a.shape[1])]
    planes = a.transpose(0, 3, 1, 2)  # (k, 3, h, w): rows gathered below are contiguous
    row = [planes[:, :, ys + d].astype(np.float32) for d in (-2, -1, 0, 1)]
    e = 1.5 * (row[2] - row[1]) - 0.5 * (row[3] - row[0])  # (k, 3, R, W)
    k, _, r, _ = e.shape
    return e.reshape(k, 3, r, nbx, grid).mean(axis=4)


#: ``row_break``: a row boundary whose direct difference is at least this many times the
#: difference after the best horizontal shift or channel permutation counts as a tear.
TEAR_MIN_SHIFT = 2
#: ``row_break``: row boundaries examined per image, the roughest candidates.
MAX_TEARS = 4
#: ``tail_fill``: pixels within this many levels of the fill colour belong to the fill.
FILL_TOLERANCE = 3


def row_break(rgb: np.ndarray) -> np.ndarray:
    """:func:`row_tear` between adjacent rows and between rows 3 apart (a JPEG's chroma
    subsampling and its blocks spread a tear over two or three rows), the larger."""
    a = rgb.astype(np.int16)  # once for both gaps
    return np.maximum(row_tear(a, 1), row_tear(a, 3))


def row_tear(rgb: np.ndarray, gap: int = 1) -> np.ndarray:
    """Per image of ``rgb`` (k, h, w, 3) uint8, any format: the largest tear between two
    pixel rows, in units of the image's own row-to-row difference; 0 where none.

    A tear is data displaced from one row on (the rows after a lost or inserted run of raw
    bytes, rows rolled sideways, colour channels swapped from a point on): row r differs
    from row r - 1 much more than rows do elsewhere, yet matches it once shifted sideways
    (by 2 or more pixels, circularly) or with its channels permuted, while row r - 1 does
    not match itself under that shift (a periodic texture would: a checkerboard's rows
    match shifted by a period) and the rows just before and after r do not tear (a slanted
    texture shifts every row). A picture's own edge along a row (a horizon, a flag's band)
    matches no shift or permutation better than directly, so it does not count. Score: the
    direct difference over (the best alternative's + the median row difference)."""
    k, h, w, _ = rgb.shape
    out = np.zeros(k)
    if h < 8 or w < 8:
        return out
    a = rgb if rgb.dtype == np.int16 else rgb.astype(np.int16)
    half = a[:, :, ::2]  # every other column: a row's mean difference, at half the cost
    d0 = (np.abs(half[:, gap:] - half[:, :-gap]).sum(axis=(2, 3), dtype=np.int32)
          / np.float32(3 * half.shape[2]))  # (k, h-gap): row r-1 against row r-1+gap
    noise = np.median(d0, axis=1, keepdims=True) + 1.0
    cand = d0 > 2.5 * noise  # a row boundary rougher than the image's usual
    cand[:, gap:] &= d0[:, :-gap] < 0.5 * d0[:, gap:]  # the boundary before it is not
    cand[:, :-gap] &= d0[:, gap:] < 0.5 * d0[:, :-gap]  # nor the one after
    cand[:, :gap] = cand[:, -gap:] = False
    # the roughest few per image: what the score keeps is a maximum, and the cost stays
    # bounded on a noisy picture with many candidates
    rough = np.where(cand, d0, 0)
    top = np.argsort(-rough, axis=1)[:, :MAX_TEARS]
    keep = np.zeros_like(cand)
    np.put_along_axis(keep, top, True, axis=1)
    ki, ri = np.nonzero(cand & keep)
    if not len(ki):
        return out
    prev, cur = a[ki, ri].astype(np.float32), a[ki, ri + gap].astype(np.float32)  # (n, w, 3)
    best = np.full(len(ki), np.inf, np.float32)
    for perm in ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        best = np.minimum(best, np.abs(cur[:, :, perm] - prev).mean(axis=(1, 2)))
    # a permutation explains only a row with content of its own: two flat bands of colours
    # that happen to be near permutations of each other (a flag) are an edge
    spread = np.abs(cur - cur.mean(axis=1, keepdims=True)).mean(axis=(1, 2))
    best[spread < 0.25 * d0[ki, ri]] = np.inf
    g_prev, g_cur = prev.mean(axis=2), cur.mean(axis=2)  # (n, w)
    fp, fc = np.fft.rfft(g_prev, axis=1), np.fft.rfft(g_cur, axis=1)
    corr = np.fft.irfft(fc * np.conj(fp), n=w, axis=1)  # corr[s] = sum cur[x] prev[x-s]
    auto = np.fft.irfft(fp * np.conj(fp), n=w, axis=1)
    energy = (g_prev ** 2).sum(axis=1)
    l2 = (g_cur ** 2).sum(axis=1)[:, None] + energy[:, None] - 2 * corr  # ||cur - roll(prev, s)||^2
    self_l2 = 2 * energy[:, None] - 2 * auto  # ||prev - roll(prev, s)||^2
    s = np.arange(w)
    far = (np.minimum(s, w - s) >= TEAR_MIN_SHIFT)[None, :]
    direct_l2 = np.maximum(l2[:, 0], 1e-6)
    # a shift explains the tear only when row r - 1 is not periodic (a checkerboard's or
    # a stripe pattern's rows match each other shifted by a period, and themselves
    # under twice the shift: a photo's row does not, a period's multiple does)
    masked = np.where(far, l2, np.inf)
    best_s = masked.argmin(axis=1)
    shift_l2 = masked[np.arange(len(ki)), best_s]
    twice = (2 * best_s) % w
    periodic = (np.minimum(twice, w - twice) >= TEAR_MIN_SHIFT) & (
        self_l2[np.arange(len(ki)), twice] < 0.5 * direct_l2)
    shift_l2[periodic] = np.inf
    # back to an L1-like scale: the ratio of RMS differences
    ratio_shift = np.sqrt(direct_l2 / np.maximum(shift_l2, 1e-6))
    alt = np.minimum(best, d0[ki, ri] / np.maximum(ratio_shift, 1.0))
    # how much better the best alternative matches than the rows as they are, bounded by
    # how rough the boundary is against the image's usual (a flat image's tiny steps)
    score = np.minimum(d0[ki, ri] / (alt + 0.5), d0[ki, ri] / noise[ki, 0])
    np.maximum.at(out, ki, score)
    return out


def tail_fill(rgb: np.ndarray) -> np.ndarray:
    """Per image of ``rgb`` (k, h, w, 3) uint8, any format: the share of the pixels, in
    raster order, in a trailing run of one colour (any colour, within ``FILL_TOLERANCE``)
    that starts inside a row and spans at least one whole row, where that colour is rare
    above the run (< 1 % of the pixels): data cut short and padded (zeros, grey, a repeated
    value). 0 otherwise: a drawing's or screenshot's background runs to the end too, but
    its colour is all over the picture above; an image that is all one colour is
    ``constant``."""
    k, h, w, _ = rgb.shape
    out = np.zeros(k)
    if h < 4 or w < 4:
        return out
    last = rgb[:, -1].astype(np.int16)  # (k, w, 3)
    flat_last = (last.max(axis=1) - last.min(axis=1) <= 2 * FILL_TOLERANCE).all(axis=1)
    for i in np.flatnonzero(flat_last):
        colour = rgb[i, -1, -1].astype(np.int16)
        near = (np.abs(rgb[i].astype(np.int16) - colour) <= FILL_TOLERANCE).all(axis=2)
        full = near.all(axis=1)
        if full.all():
            continue
        top = int(np.flatnonzero(~full)[-1])  # the last row not wholly the fill colour
        if top < 1:
            continue
        row = near[top]
        x0 = int(np.flatnonzero(~row)[-1]) + 1  # the fill starts in this row at x0
        if x0 <= 0 or x0 >= w:
            x0 = w  # starts at a row boundary: no partial row to show the cut
        # the rows just above may hold the cut's own partial rows (a JPEG fills by block
        # rows of 8 or 16 pixels): the colour's share is read above them
        above = near[: top - 16 if top > 32 else top].mean()
        if x0 == w or above >= 0.01:
            continue
        # the cut row's content before the fill is far from its colour (JPEG ringing under
        # a dark bar fades into the bar's colour: it is close, and not a cut)
        left = np.abs(rgb[i, top, :x0].astype(np.int16) - colour).max(axis=1).mean()
        if left < 2 * FILL_TOLERANCE:
            continue
        run = (h - 1 - top) * w + (w - x0)
        out[i] = run / (h * w)
    return out
