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

__all__ = ["AGREE", "COSINE", "QUIET", "bin_rows", "channel_swap", "dc_rows", "dc_shift",
           "grey_fill", "noise_block", "row_break", "row_copy", "row_diffs", "row_tear",
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


def dc_shift(ycc: np.ndarray, grid: int, mcu: int, height: int | None = None) -> np.ndarray:
    """The largest staircase step (see the module docstring) in units of the image's
    roughness, per image of ``ycc`` (k, h, w, 3) uint8, YCbCr (the components JPEG codes,
    so a DC error is a step in one of them); 0 where none qualifies.

    ``grid``: block width in pixels; ``mcu``: the height of a row of coded blocks (16 for
    4:2:0 chroma subsampling, else 8, times the draft scale). Per block row boundary y and
    block column b, the step is the row difference at y less the mean of the row
    differences just above and below (a smooth gradient cancels), averaged over the block;
    the roughness is the same statistic half a block row off the grid. With ``height``,
    ``ycc`` holds only the rows :func:`dc_rows` (height, mcu) names, in order (converting
    only those to YCbCr halves the cost at mcu 16)."""
    k, h, w, _ = ycc.shape
    if height is None:
        ycc = ycc[:, dc_rows(h, mcu)]
    else:
        h = height
    nbx = w // grid if grid >= 2 else 0
    if nbx < 2 * MIN_HALF:
        return np.zeros(k)
    ys = _block_rows(h, mcu)
    if len(ys) < 2 or nbx < 2:
        return np.zeros(k)
    read = dc_rows(h, mcu)
    at = np.zeros(h, np.intp)  # image row -> row of ``ycc``
    at[read] = np.arange(len(read))
    sums = _block_sums(ycc, nbx, grid)
    sigma = np.abs(_steps(sums, at, ys - mcu // 2, h, grid)).mean(axis=(2, 3)) + 1.0
    e = _steps(sums, at, ys, h, grid) / sigma[:, :, None, None]  # (k, 3, rows, blocks)
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


def _block_rows(h: int, mcu: int) -> np.ndarray:
    """The row boundaries between rows of coded blocks that :func:`dc_shift` reads."""
    ys = np.arange(mcu, h - 1, mcu) if mcu >= 2 else np.arange(0)
    return ys[ys >= 2]


def _usable(ys: np.ndarray, h: int) -> np.ndarray:
    return ys[(ys >= 2) & (ys + 1 < h)]


def dc_rows(h: int, mcu: int) -> np.ndarray:
    """The rows of an image of height ``h`` that :func:`dc_shift` reads (two rows either
    side of each boundary, on the grid and half an MCU off it), ascending."""
    ys = _block_rows(h, mcu)
    at = np.concatenate([_usable(ys - mcu // 2, h), _usable(ys, h)])
    return np.unique((at[:, None] + np.arange(-2, 2)[None, :]).ravel())


def _block_sums(ycc: np.ndarray, nbx: int, grid: int) -> np.ndarray:
    """(k, rows, nbx, 3): each row's sums over the ``grid`` columns of each block, per
    component. A float32 matrix product (exact: integers below 2^24), 3x faster than
    numpy's sum over a middle axis of uint8."""
    k, r = ycc.shape[:2]
    pick = np.tile(np.eye(3, dtype=np.float32), (grid, 1))  # (grid * 3, 3): a block's sum
    x = ycc[:, :, : nbx * grid].reshape(k * r * nbx, grid * 3).astype(np.float32)
    return (x @ pick).reshape(k, r, nbx, 3)


def _steps(sums: np.ndarray, at: np.ndarray, ys: np.ndarray, h: int, grid: int
           ) -> np.ndarray:
    """(k, 3, len(ys), nbx): per block, the mean over its columns of the step from row
    y - 1 to y less the mean of the steps y-2 -> y-1 and y -> y+1, per component, from
    the rows' block sums (``sums[:, at[y]]``: row y). Exact until the division."""
    ys = _usable(ys, h)
    row = [sums[:, at[ys + d]] for d in (-2, -1, 0, 1)]  # (k, R, nbx, 3)
    twice = 3 * (row[2] - row[1]) - (row[3] - row[0])  # exact in float32 (< 2^24)
    return (twice.astype(np.float64) / (2 * grid)).transpose(0, 3, 1, 2)


#: ``row_break``: a row boundary whose direct difference is at least this many times the
#: difference after the best horizontal shift or channel permutation counts as a tear.
TEAR_MIN_SHIFT = 2
#: ``row_break``: row boundaries examined per image, the roughest candidates.
MAX_TEARS = 4
#: ``tail_fill``: pixels within this many levels of the fill colour belong to the fill.
FILL_TOLERANCE = 3


def row_break(rgb: np.ndarray, half: np.ndarray | None = None,
              diffs: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """:func:`row_tear` between adjacent rows and between rows 3 apart (a JPEG's chroma
    subsampling and its blocks spread a tear over two or three rows), the larger.
    ``half`` and ``diffs``: :func:`row_diffs`' when already made (else made here)."""
    a = rgb if rgb.dtype == np.uint8 else np.clip(rgb, 0, 255).astype(np.uint8)
    if half is None or diffs is None:
        half, diffs = row_diffs(a)
    return np.maximum(row_tear(a, 1, half, diffs.get(1)), row_tear(a, 3, half, diffs.get(3)))


def row_diffs(rgb: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(every other column of ``rgb`` (k, h, w, 3) uint8, contiguous; per gap in 1, 3 and
    ``SWAP_GAPS``, the mean |difference| of rows that far apart over those columns,
    (k, h - gap)): what :func:`row_break` and :func:`channel_swap` share."""
    half = _every_other_column(rgb)
    h = rgb.shape[1]
    return half, {g: _row_diff(half, g) for g in sorted({1, 3, *SWAP_GAPS}) if g < h}


def _row_diff(half: np.ndarray, gap: int) -> np.ndarray:
    """(k, h - gap): mean |half[:, r + gap] - half[:, r]| over columns and channels."""
    k, h = half.shape[:2]
    # |difference| in uint8 (max - min) and a uint32 sum: 2.5x faster than in int16
    d = np.maximum(half[:, gap:], half[:, :-gap])
    d -= np.minimum(half[:, gap:], half[:, :-gap])
    return (np.add.reduce(d.reshape(k, h - gap, -1), axis=2, dtype=np.uint32)
            / np.float32(3 * half.shape[2]))


#: ``channel_swap``: rows this many apart are compared (a JPEG's chroma subsampling and
#: its blocks blur a swap over a few rows: the rows either side of the blur still show it).
SWAP_GAPS = (1, 3, 5)
#: ``channel_swap``: the best channel permutation of the lower row explains at least this
#: share of its difference from the upper row (an honest colour edge, such as a red shape
#: above a blue one, is at most half explained: its rows differ in more than colour order).
SWAP_EXPLAINED = 0.6
#: ``channel_swap``: of the pixels the permutation moves (by >= ``SWAP_MOVED`` levels in a
#: channel), at most this share stays as it was (within ``SWAP_STILL``) from row to row.
SWAP_MOVED = 24
SWAP_STILL = 8
SWAP_STILL_SHARE = 0.1
#: ``channel_swap``: row pairs examined per image and gap, the most different ones.
SWAP_CANDIDATES = 6
PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def channel_swap(half: np.ndarray, diffs: dict[int, np.ndarray] | None = None
                 ) -> np.ndarray:
    """Per image, from ``half`` (k, h, w', 3) uint8 (every other column, :func:`row_diffs`):
    the colour channels permuted from one row on (a pipeline that swapped RGB and BGR part
    way, or corrupt data), as the largest drop in the difference between two rows
    ``SWAP_GAPS`` apart when the lower row's channels are permuted, in units of the image's
    median row difference + 1; 0 where no permutation explains ``SWAP_EXPLAINED`` of a
    difference.

    Where the channels are swapped, the rows below the swap are the picture's rows with
    their channels permuted: permuted back, a row matches the row above (up to texture),
    by far better than as it is, over the whole width. A picture's own colour edge is
    explained by no permutation (the rows differ in shape and shade, not channel order);
    two flat bands in permuted colours (a flag) are not counted (the row must have content:
    ``row_tear``'s rule). :func:`row_tear` finds the sharp swaps (adjacent rows match almost
    exactly); this one also the blurred ones (JPEG), against a wider margin."""
    k, h = half.shape[:2]
    out = np.zeros(k)
    if h < 8 or half.shape[2] < 4:
        return out
    for gap in SWAP_GAPS:
        if gap >= h - 2:
            continue
        d0 = diffs[gap] if diffs is not None and gap in diffs else _row_diff(half, gap)
        med = np.median(d0, axis=1) + 1.0  # (k,)
        # a score above 1 needs a difference above the median + 1: the candidates
        rough = np.where(d0 > med[:, None], d0, 0.0)
        top = np.argsort(-rough, axis=1)[:, :SWAP_CANDIDATES]
        ki = np.repeat(np.arange(k), top.shape[1])
        ri = top.ravel()
        keep = rough[ki, ri] > 0
        ki, ri = ki[keep], ri[keep]
        if not len(ki):
            continue
        prev = half[ki, ri].astype(np.int16)  # (n, w', 3)
        cur = half[ki, ri + gap].astype(np.int16)
        # mean |cur channel a - prev channel b| for the 9 pairs: each permutation's
        # difference is a sum of three (5x fewer passes than permuting the rows)
        pair = np.empty((3, 3, len(ki)))
        for a in range(3):
            for b in range(3):
                pair[a, b] = np.abs(cur[:, :, a] - prev[:, :, b]).mean(axis=1)
        alt = np.stack([pair[p, (0, 1, 2)].sum(axis=0) / 3 for p in PERMUTATIONS])
        which = alt.argmin(axis=0)
        direct = d0[ki, ri]
        gain = direct - alt[which, np.arange(len(ki))]
        ok = gain >= SWAP_EXPLAINED * direct
        if not ok.any():
            continue
        ki, direct, gain, which = ki[ok], direct[ok], gain[ok], which[ok]
        prev, cur = prev[ok], cur[ok]
        spread = np.abs(cur - cur.mean(axis=1, keepdims=True)).mean(axis=(1, 2))
        ok = spread >= 0.25 * direct
        # a swap changes every pixel whose channels differ; a shape's colour edge leaves the
        # rest of the row (a coloured background) as it was
        perm = np.array(PERMUTATIONS)[which]  # (n, 3)
        moved = np.abs(np.take_along_axis(prev, perm[:, None, :], axis=2) - prev).max(axis=2)
        moved = moved >= SWAP_MOVED
        still = np.abs(cur - prev).max(axis=2) <= SWAP_STILL
        ok &= (moved & still).sum(axis=1) <= SWAP_STILL_SHARE * moved.sum(axis=1)
        np.maximum.at(out, ki[ok], gain[ok] / med[ki[ok]])
    return out


def _every_other_column(a: np.ndarray) -> np.ndarray:
    """``a[:, :, ::2]`` of (k, h, w, 3) uint8, contiguous: a channel at a time, 5x faster
    than numpy's copy of the strided view (whose innermost run is only 3 bytes)."""
    half = np.empty((a.shape[0], a.shape[1], (a.shape[2] + 1) // 2, 3), np.uint8)
    for c in range(3):
        half[..., c] = a[:, :, ::2, c]
    return half


def row_tear(rgb: np.ndarray, gap: int = 1, half: np.ndarray | None = None,
             d0: np.ndarray | None = None) -> np.ndarray:
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
    direct difference over (the best alternative's + the median row difference).
    ``half``: ``rgb``'s every other column, contiguous uint8 (made here when not given);
    ``d0``: its :func:`_row_diff` at ``gap`` (likewise)."""
    k, h, w, _ = rgb.shape
    out = np.zeros(k)
    if h < 8 or w < 8:
        return out
    a = rgb if rgb.dtype == np.uint8 else np.clip(rgb, 0, 255).astype(np.uint8)
    if half is None:  # every other column: a row's mean difference, at half the cost
        half = _every_other_column(a)
    if d0 is None:
        d0 = _row_diff(half, gap)  # (k, h-gap): row r-1 against row r-1+gap
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


#: ``noise_block``: cells of this many pixels square; the score is a cell's roughness over
#: the second roughest cell 2-3 cells away (a noise block is 8 px: it covers <= 3 cells).
NOISE_CELL = 4
#: ``noise_block``: a cell counts only when its mean |Laplacian| of the grey is at least this
#: (random data: ~175; photographs' texture at <= 512 px: mostly < 100).
NOISE_LEVEL = 100.0
#: ``noise_block``: the median |difference| of a cell's neighbouring pixels is at least this
#: (uniform random data: ~85 before JPEG; a solid dot's or a glyph's: 0 inside the shape).
NOISE_STEP = 20.0


def noise_block(lap: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Per image, from ``lap`` (k, h - 2, w - 2) the 4-neighbour Laplacian of ``grey``
    (k, h, w): the largest ratio of a 4x4 cell's mean |Laplacian| to (the second largest of
    the cells 2 or 3 cells away + 10), over cells at least ``NOISE_LEVEL`` rough whose
    pixels differ from their neighbours by ``NOISE_STEP`` levels or more (median); 0 where
    none is.

    A block of random data (a JPEG block decoded from garbage, noise pasted over a region)
    is rough at every pixel and far rougher than what surrounds it. A picture's own rough
    spots continue: text runs along its line and the lines above and below, texture and
    edges carry on past a few pixels; the second largest neighbour (not the largest) lets
    two noise blocks that touch still stand out. Measured on bench/image_garble_kinds.py and
    bench/image_quality_fp.py (clean images up to ~2.2)."""
    k, h, w = lap.shape
    c = NOISE_CELL
    ny, nx = h // c, w // c
    out = np.zeros(k)
    if ny < 7 or nx < 7:
        return out
    # the cell sums as c + c slice additions: 7x faster than a sum over two middle axes
    a = np.abs(lap[:, : ny * c, : nx * c]).astype(np.int32).reshape(k, ny, c, nx * c)
    rows = a[:, :, 0].copy()
    for t in range(1, c):
        rows += a[:, :, t]
    r = rows.reshape(k, ny, nx, c)
    total = r[..., 0].copy()
    for t in range(1, c):
        total += r[..., t]
    cell = total.astype(np.float32) / (c * c)
    ki, yi, xi = np.nonzero(cell >= NOISE_LEVEL)  # few, in most pictures
    if not len(ki):
        return out
    pad = np.pad(cell, ((0, 0), (3, 3), (3, 3)), mode="reflect")
    ring = np.stack([pad[ki, yi + 3 + dy, xi + 3 + dx] for dy in range(-3, 4)
                     for dx in range(-3, 4) if max(abs(dy), abs(dx)) >= 2], axis=1)
    second = np.partition(ring, ring.shape[1] - 2, axis=1)[:, -2]
    score = cell[ki, yi, xi] / (second + 10.0)
    keep = score > 1.0  # (the threshold is at least 1)
    ki, yi, xi, score = ki[keep], yi[keep], xi[keep], score[keep]
    if not len(ki):
        return out
    # noise differs from every neighbour; a small solid shape (a dot, a glyph) is rough
    # only on its outline: most of its neighbouring pixels are equal
    off = np.arange(c + 1)
    ys = (1 + c * yi)[:, None, None] + off[None, :, None]
    xs = (1 + c * xi)[:, None, None] + off[None, None, :]
    patch = grey[ki[:, None, None], np.minimum(ys, h + 1), np.minimum(xs, w + 1)]
    patch = patch.astype(np.int16).reshape(len(ki), c + 1, c + 1)
    steps = np.concatenate([np.abs(np.diff(patch, axis=1)).reshape(len(ki), -1),
                            np.abs(np.diff(patch, axis=2)).reshape(len(ki), -1)], axis=1)
    score[np.median(steps, axis=1) < NOISE_STEP] = 0.0
    np.maximum.at(out, ki, score)
    return out


#: ``row_copy``: rows are compared by their means over this many columns; windows start
#: every ``COPY_STRIDE`` rows on one side (every row on the other).
COPY_BIN = 8
COPY_STRIDE = 3
#: ``row_copy``: a copy is at least this many consecutive rows, this far from its source.
COPY_ROWS = 6
COPY_GAP = 8
#: ``row_copy``: the window's difference to its copy is below this share of its rows' own
#: row-to-row difference, and that difference is at least this (mean square, grey levels).
COPY_MATCH = 0.2
COPY_TEXTURE = 0.5
#: ``row_copy``: rows mostly at one level (text or a drawing on a plain background) do not
#: count: a repeated text line or a repeated shape is honest.
COPY_FLAT = 0.7
#: ``row_copy``: windows matching ``d`` rows on over at least this share of the rows that
#: have a row ``d`` on are a period, not a copy.
COPY_PERIODIC = 0.6
_COPY_CELLS = 2_000_000  # images x rows x rows of one pass (bounded memory)


def row_copy(binned: np.ndarray) -> np.ndarray:
    """Per image of ``binned`` (k, h, nb): its grey rows as means over ``COPY_BIN`` columns
    (:func:`bin_rows`, or Pillow's box reduction to nb x h), how many windows of
    ``COPY_ROWS`` rows (starting every ``COPY_STRIDE`` rows) repeat, in order, rows at least
    ``COPY_GAP`` away and nowhere else (a band of rows copied from elsewhere, as a broken
    decoder or transfer leaves); 0 where none.

    A window is a copy of the window ``d`` rows away when the two differ by less than
    ``COPY_MATCH`` of the rows' own row-to-row difference, that difference shows texture
    (>= ``COPY_TEXTURE``: smooth sky matches every other sky row), most rows are not mostly
    one level (``COPY_FLAT``: text, drawings), and the window matches only there (within 4
    rows): a periodic texture matches at every multiple of its period."""
    k, h, nb = binned.shape
    out = np.zeros(k)
    m = h - COPY_ROWS + 1
    if nb < 4 or m < 2 * COPY_GAP:
        return out
    step = max(1, _COPY_CELLS // (h * h))
    for s in range(0, k, step):
        out[s:s + step] = _row_copy(binned[s:s + step].astype(np.float32))
    return out


def bin_rows(g: np.ndarray) -> np.ndarray:
    """(k, h, w) grey -> (k, h, w // ``COPY_BIN``): the means of each ``COPY_BIN`` columns."""
    k, h, w = g.shape
    nb = w // COPY_BIN
    return g[:, :, : nb * COPY_BIN].reshape(k, h, nb, COPY_BIN).mean(axis=3)


def _row_copy(sig: np.ndarray) -> np.ndarray:
    k, h, nb = sig.shape
    L, st = COPY_ROWS, COPY_STRIDE
    m = h - L + 1
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: windows are sums along the Gram matrix's diagonals
    sq = np.einsum("khb,khb->kh", sig, sig)
    gram = np.matmul(sig, sig.transpose(0, 2, 1))  # (k, h, h)
    near = (sq[:, :-1] + sq[:, 1:] - 2 * np.diagonal(gram, 1, axis1=1, axis2=2)) / nb
    adj = np.empty((k, h), np.float32)  # the smaller of a row's two neighbours' differences
    adj[:, :-1] = near
    adj[:, -1] = near[:, -1]
    adj[:, 1:] = np.minimum(adj[:, 1:], near)
    texture = _window_sum(adj, L) * nb  # (k, m), in the units of ``win`` below
    med = np.partition(sig, nb // 2, axis=2)[:, :, nb // 2:nb // 2 + 1]
    flat = np.count_nonzero(np.abs(sig - med) <= 2, axis=2) >= COPY_FLAT * nb  # (k, h)
    dense = _window_sum((~flat).astype(np.float32), L) >= L - 1
    valid = dense & (texture >= L * COPY_TEXTURE * nb)
    if not valid.any():
        return np.zeros(k)
    # windows starting every ``st`` rows (a copy of >= L + st - 1 rows holds one) against
    # windows starting at every row: win[a, j] compares rows a*st.. with rows j.., L each
    win = gram[:, 0:m:st, :m].copy()
    for t in range(1, L):
        win += gram[:, t:t + m:st, t:t + m]
    norms = _window_sum(sq, L)  # (k, m)
    win *= -2
    win += norms[:, ::st, None]
    win += norms[:, None, :]  # (k, m/st, m): squared distances of the windows
    i, j = np.arange(0, m, st), np.arange(m)
    least = np.minimum(texture[:, ::st, None], texture[:, None, :])
    least *= COPY_MATCH
    good = win < least
    good &= (np.abs(i[:, None] - j[None, :]) >= COPY_GAP)[None]
    good &= valid[:, ::st, None] & valid[:, None, :]
    has = good.any(axis=2)
    if not has.any():
        return np.zeros(k)
    first = good.argmax(axis=2)
    last = m - 1 - good[:, :, ::-1].argmax(axis=2)
    unique = has & (last - first <= 4)  # one place only: not a period
    out = np.zeros(k)
    for n in np.flatnonzero(unique.any(axis=1)):  # images with a copy: few
        a = np.flatnonzero(unique[n])
        lag = first[n, a] - i[a]
        keep = np.ones(len(a), dtype=bool)
        for d in np.unique(lag):
            # a copy is a band; rows that match ``d`` rows on over most of the image
            # repeat with that period (a texture with two periods in its height)
            pos = np.flatnonzero((i + d >= 1) & (i + d < m - 1))
            hit = good[n, pos, i[pos] + d] | good[n, pos, i[pos] + d - 1] | good[
                n, pos, i[pos] + d + 1]
            if len(pos) and hit.mean() >= COPY_PERIODIC:
                keep[lag == d] = False
        out[n] = keep.sum()
    return out


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """(k, len - n + 1): sums of ``n`` consecutive values along axis 1."""
    cs = np.zeros((x.shape[0], x.shape[1] + 1), np.float64)
    np.cumsum(x, axis=1, out=cs[:, 1:])
    return (cs[:, n:] - cs[:, :-n]).astype(np.float32)
