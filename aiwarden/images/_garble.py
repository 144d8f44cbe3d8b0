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

__all__ = ["AGREE", "COSINE", "QUIET", "dc_shift", "grey_fill"]

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
