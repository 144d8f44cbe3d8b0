"""Quality findings over a batch of images: each with a stable reason code.

``quality(items) -> QualityReport``: items are encoded bytes, arrays, or a
:class:`PropertyTable` already computed (a server computes properties once and reuses them).
Reason codes (``REASONS``) are the contract a quarantine or a retraining gate keys on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aiwarden.errors import ParameterError
from aiwarden.images._properties import PropertyTable, hamming, properties

__all__ = ["REASONS", "Finding", "QualityReport", "duplicates", "leakage", "quality"]

#: reason code -> what it means. Decode failures first (the image could not be analysed).
REASONS = {
    "empty": "the file has no bytes",
    "bad_base64": "the base64 text does not decode",
    "not_an_image": "not an image in a supported format",
    "unreadable": "the header or pixels cannot be decoded",
    "truncated": "the file ends before the image does",
    "too_large_file": "more bytes than max_bytes",
    "too_many_pixels": "more pixels than max_pixels (decompression-bomb guard)",
    "wrong_shape": "an array that is not HxW, HxWx1, HxWx3 or HxWx4 numbers",
    "missing_file": "a path in the manifest does not exist or cannot be read",
    "non_finite": "NaN or infinite values in a float array",
    "wrong_mode": "the mode (RGB, L, RGBA...) is not the expected one",
    "constant": "all pixels (nearly) one colour: a black, white or blank frame",
    "garbled": "decodes into corrupt data: a jump on a JPEG block row, blocks shifted "
               "from a point on, mid-grey blocks or one rare colour to the end, rows "
               "shifted sideways or channels swapped from a row on, a block of noise, a "
               "band of rows copied from elsewhere",
    "too_small": "a side shorter than min_side",
    "too_large": "a side longer than max_side",
    "extreme_aspect": "width/height beyond max_aspect (either way)",
    "exact_duplicate": "the same bytes (or array) as an earlier image",
    "near_duplicate": "perceptually the same as an earlier image (256-bit pHash)",
    "leakage": "(nearly) the same image is in the reference (training) set",
    "label_issue": "the given label is likely wrong (confident learning)",
    "outlier": "far from every other image in embedding space",
}
FAILURES = frozenset(("empty", "bad_base64", "not_an_image", "unreadable", "truncated",
                      "too_large_file", "too_many_pixels", "wrong_shape", "missing_file"))


@dataclass(frozen=True)
class Finding:
    """One problem with one image. ``index`` is its position in the input; ``related`` the
    index of the image it duplicates (in the same input, or in the reference for leakage)."""

    index: int
    reason: str
    message: str
    name: str | None = None
    related: int | None = None
    related_name: str | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class QualityReport:
    findings: tuple[Finding, ...]
    table: PropertyTable = field(repr=False)

    @property
    def flagged(self) -> list[int]:
        return sorted({f.index for f in self.findings})

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.reason] = out.get(f.reason, 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"images": len(self.table), "flagged": len(self.flagged),
                "counts": self.by_reason(), "findings": [f.to_dict() for f in self.findings]}


def quality(items: Sequence[Any] | PropertyTable, *, names: Sequence[str] | None = None,
            expected_mode: str | None = None, min_side: int = 16, max_side: int = 20_000,
            max_aspect: float = 5.0, constant_std: float = 0.004, max_block_step: float = 4.0,
            max_dc_shift: float = 3.0, max_row_break: float = 3.5, max_channel_swap: float = 1.5,
            max_noise_block: float = 2.6, near_distance: int = 20,
            near_distance_64: int = 2, near_distance_loose: int = 32,
            near_colour: float = 0.06, reference: PropertyTable | None = None,
            **decode_options: Any) -> QualityReport:
    """Every check in ``REASONS`` except the audit's label issues and outliers.

    Examples
    --------
    >>> import numpy as np
    >>> rep = quality([np.zeros((32, 32, 3), np.uint8), b"GIF89a..."])
    >>> [(f.index, f.reason) for f in rep.findings]
    [(0, 'constant'), (1, 'not_an_image')]
    """
    _check(min_side=min_side, max_side=max_side, max_aspect=max_aspect,
           constant_std=constant_std, max_block_step=max_block_step,
           max_dc_shift=max_dc_shift, max_row_break=max_row_break,
           max_channel_swap=max_channel_swap,
           max_noise_block=max_noise_block, near_distance=near_distance,
           near_distance_64=near_distance_64, near_distance_loose=near_distance_loose,
           near_colour=near_colour)
    near = (near_distance, near_distance_64, near_distance_loose, near_colour)
    table = items if isinstance(items, PropertyTable) else properties(items, **decode_options)
    n = len(table)
    if names is not None and len(names) != n:
        raise ParameterError(f"The 'names' parameter of quality must have one name per image "
                             f"({n}). Got {len(names)} instead.", "names")
    c = table.columns
    found: list[Finding] = []

    def add(i: int, reason: str, message: str, **kw: Any) -> None:
        found.append(Finding(int(i), reason, message,
                             names[i] if names is not None else None, **kw))

    details = c.get("error_detail", np.full(n, None, dtype=object))
    for i, err in enumerate(c["error"]):
        if err is not None:
            add(i, err, details[i] or REASONS.get(err, err))
    ok = table.ok
    for i in np.flatnonzero(ok):
        w, h = int(c["width"][i]), int(c["height"][i])
        if c["non_finite"][i] > 0:
            add(i, "non_finite", f"{int(c['non_finite'][i])} NaN or infinite values")
        if expected_mode is not None and c["mode"][i] != expected_mode:
            add(i, "wrong_mode", f"mode {c['mode'][i]}, expected {expected_mode}")
        if c["channel_std_max"][i] <= constant_std:
            add(i, "constant", f"one colour: mean RGB ({c['mean_r'][i]:.2f}, "
                f"{c['mean_g'][i]:.2f}, {c['mean_b'][i]:.2f}), largest channel std "
                f"{c['channel_std_max'][i]:.4f}", score=float(c["channel_std_max"][i]))
        garbled = _garbled(c, i, max_block_step, max_dc_shift, max_row_break, max_noise_block,
                           max_channel_swap)
        if garbled and c["channel_std_max"][i] > constant_std:  # a blank frame is constant
            add(i, "garbled", garbled[0], score=garbled[1])
        if min(w, h) < min_side:
            add(i, "too_small", f"{w}x{h}: a side shorter than {min_side}")
        if max(w, h) > max_side:
            add(i, "too_large", f"{w}x{h}: a side longer than {max_side}")
        if max(w / h, h / w) > max_aspect:
            add(i, "extreme_aspect", f"{w}x{h}: aspect ratio {w / h:.3g} beyond "
                f"1:{max_aspect:g}", score=w / h)
    usable = ok & (c["channel_std_max"] > constant_std)
    for i, j, reason, dist in duplicates(table, usable, *near):
        other = names[j] if names is not None else f"image {j}"
        add(i, reason, f"duplicates {other}" + (f" (pHash distance {dist} of 256)"
                                                if reason == "near_duplicate" else ""),
            related=j, related_name=names[j] if names is not None else None,
            score=float(dist))
    if reference is not None:
        for i, j, dist in leakage(table, reference, usable, *near):
            add(i, "leakage", f"(nearly) the same as reference image {j} (pHash distance "
                f"{dist} of 256)", related=j, score=float(dist))
    found.sort(key=lambda f: (f.index, f.reason))
    return QualityReport(tuple(found), table)


def duplicates(table: PropertyTable, usable: np.ndarray, near_distance: int = 20,
               near_distance_64: int = 2, near_distance_loose: int = 32,
               near_colour: float = 0.06) -> list[tuple[int, int, str, int]]:
    """(index, first index it duplicates, reason, pHash distance) for every later copy.

    Exact: equal digests. Near: the 256-bit pHash within ``near_distance`` bits, or within
    ``near_distance_loose`` when the 64-bit one is within ``near_distance_64`` (the 256-bit
    hash is sharper on detailed images, the 64-bit one steadier on low-resolution ones such
    as upscaled digits, whose fine bits flip), and every
    channel mean within ``near_colour`` (a cheap second opinion: distinct low-detail images
    can come close in pHash; their colours rarely agree too). Groups are closed
    transitively; the first member is the original."""
    c = table.columns
    idx = np.flatnonzero(usable)
    parent = {int(i): int(i) for i in idx}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    exact: dict[int, int] = {}
    for i in idx:
        d = c["digest"][i]
        if d in first:
            exact[int(i)] = first[d]
            parent[root(int(i))] = root(first[d])
        else:
            first[d] = int(i)
    ph, ph64 = c["phash_fine"][idx], c["phash"][idx]
    block = _block(len(idx))
    colours = np.stack([c["mean_r"][idx], c["mean_g"][idx], c["mean_b"][idx]], axis=1)
    logar = np.log(c["aspect_ratio"][idx])
    dist_to: dict[int, int] = {}
    for s in range(0, len(idx), block):
        d = hamming(ph[s:s + block], ph)
        close = np.argwhere((d <= near_distance) | (
            (d <= near_distance_loose) & (hamming(ph64[s:s + block], ph64) <= near_distance_64)))
        close = close[close[:, 0] + s < close[:, 1]]
        for a, b in close:
            i, j = int(idx[a + s]), int(idx[b])
            if np.abs(colours[a + s] - colours[b]).max() > near_colour:
                continue
            if abs(logar[a + s] - logar[b]) > _NEAR_LOG_ASPECT:
                continue  # a resized or re-encoded copy keeps its shape (low-detail images,
                # such as two-band flags, match in pHash whatever their shape)
            ri, rj = root(i), root(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
            dist_to[j] = min(dist_to.get(j, 256), int(d[a, b]))
    out = []
    for i in idx:
        r = root(int(i))
        if r != i:
            reason = "exact_duplicate" if int(i) in exact else "near_duplicate"
            out.append((int(i), r, reason, 0 if reason == "exact_duplicate"
                        else dist_to.get(int(i), 0)))
    return out


def leakage(table: PropertyTable, reference: PropertyTable, usable: np.ndarray | None = None,
            near_distance: int = 20, near_distance_64: int = 2, near_distance_loose: int = 32,
            near_colour: float = 0.06) -> list[tuple[int, int, int]]:
    """(index, nearest reference index, pHash distance) for images found in ``reference``."""
    c, rc = table.columns, reference.columns
    mask = table.ok if usable is None else usable
    idx = np.flatnonzero(mask)
    ridx = np.flatnonzero(reference.ok & (rc["channel_std_max"] > 0))
    if not len(idx) or not len(ridx):
        return []
    rcol = np.stack([rc["mean_r"][ridx], rc["mean_g"][ridx], rc["mean_b"][ridx]], axis=1)
    rdig = {d: int(j) for j, d in zip(ridx, rc["digest"][ridx], strict=True)}
    out = []
    block = _block(len(ridx))
    for s in range(0, len(idx), block):
        part = idx[s:s + block]
        d = hamming(c["phash_fine"][part], rc["phash_fine"][ridx]).astype(np.int32)
        d64 = hamming(c["phash"][part], rc["phash"][ridx])
        loose = (d64 <= near_distance_64) & (d > near_distance) & (d <= near_distance_loose)
        d[loose] = near_distance  # close in both hashes
        col = np.stack([c["mean_r"][part], c["mean_g"][part], c["mean_b"][part]], axis=1)
        far = np.abs(col[:, None, :] - rcol[None, :, :]).max(axis=2) > near_colour
        d[far] = 999
        shape = np.abs(np.log(c["aspect_ratio"][part])[:, None]
                       - np.log(rc["aspect_ratio"][ridx])[None, :]) > _NEAR_LOG_ASPECT
        d[shape] = 999  # as in duplicates: a copy keeps its shape
        best = d.argmin(axis=1)
        for a, i in enumerate(part):
            if c["digest"][i] in rdig:
                out.append((int(i), rdig[c["digest"][i]], 0))
            elif d[a, best[a]] <= near_distance:
                out.append((int(i), int(ridx[best[a]]), int(d[a, best[a]])))
    return out


#: Near duplicates differ in aspect ratio by at most this factor (1.5: a 4:3 photo and its
#: square-squeezed copy still match; a 16x20 and a 173x320 two-band flag do not).
_NEAR_LOG_ASPECT = float(np.log(1.5))


def _garbled(c: dict[str, np.ndarray], i: int, max_block_step: float, max_dc_shift: float,
             max_row_break: float, max_noise_block: float, max_channel_swap: float = 1.5
             ) -> tuple[str, float] | None:
    """(message, score) when image ``i`` is a JPEG whose decoded pixels show corrupt data
    (aiwarden/images/_garble.py), else None; the strongest sign first."""
    if c["grey_fill"][i] > 0:
        return (f"the last {c['grey_fill'][i]:.0%} of the blocks are exactly mid-grey: the "
                f"decoder ran out of data (corrupt or cut JPEG data)", float(c["grey_fill"][i]))
    if c["dc_shift"][i] > max_dc_shift:
        return (f"the blocks from one point on are shifted by {c['dc_shift'][i]:.1f}x the "
                f"image's row-to-row variation (corrupt JPEG data)", float(c["dc_shift"][i]))
    if c["tail_fill"][i] > 0:
        return (f"the last {c['tail_fill'][i]:.0%} of the pixels are one colour, from inside "
                f"a row on, a colour rare above: data cut short and padded",
                float(c["tail_fill"][i]))
    if c["row_break"][i] > max_row_break:
        return (f"the rows from one row on match the rows above only shifted sideways or with "
                f"the colour channels swapped ({c['row_break'][i]:.1f}x better than as they "
                f"are): displaced or corrupt data", float(c["row_break"][i]))
    if c["channel_swap"][i] > max_channel_swap:
        return (f"the colour channels are permuted from one row on: permuted back, the rows "
                f"below match the rows above ({c['channel_swap'][i]:.1f}x the image's usual row "
                f"difference better): swapped channels (RGB/BGR) part way",
                float(c["channel_swap"][i]))
    if c["row_copy"][i] > 0:
        return (f"a band of rows repeats, in order, rows elsewhere in the image and nowhere "
                f"else ({c['row_copy'][i]:.0f} windows of 6 rows): copied from elsewhere "
                f"(displaced or corrupt data)",
                float(c["row_copy"][i]))
    if c["noise_block"][i] > max_noise_block:
        return (f"a small region is noise, {c['noise_block'][i]:.1f}x rougher than what is "
                f"around it: blocks of random data (corrupt data)", float(c["noise_block"][i]))
    if c["block_step"][i] > max_block_step:
        return (f"decoded pixels jump on an 8-pixel block row: {c['block_step'][i]:.1f}x the "
                f"rows around it (corrupt JPEG data)", float(c["block_step"][i]))
    return None


def _block(n: int) -> int:
    """Rows per block so a block's distance matrix stays near 4M cells (bounded memory)."""
    return max(1, 4_000_000 // max(n, 1))


def _check(**values: Any) -> None:
    bounds = {"max_block_step": (1.0, 1e9), "max_dc_shift": (0.0, 1e9),
              "max_row_break": (1.0, 1e9), "max_noise_block": (1.0, 1e9),
              "max_channel_swap": (1.0, 1e9),
              "min_side": (1, 1 << 20), "max_side": (1, 1 << 20), "max_aspect": (1.0, 1e6),
              "constant_std": (0.0, 1.0), "near_distance": (0, 256), "near_distance_64": (0, 64),
              "near_distance_loose": (0, 256),
              "near_colour": (0.0, 1.0)}
    for key, v in values.items():
        lo, hi = bounds[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ParameterError(f"The '{key}' parameter of quality must be a number in "
                                 f"[{lo}, {hi}]. Got {v!r} instead.", key)
