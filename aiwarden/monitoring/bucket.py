"""What one time bucket holds: the engine profile plus serving facts the engine does not know.

Everything merges by addition, so a window is the merge of its buckets' partials.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from aiwarden._plausible import MAX_MAGNITUDE
from aiwarden.engine.profile import Profile
from aiwarden.errors import DataError
from aiwarden.monitoring import latency as latency_hist
from aiwarden.monitoring.packed import Packed
from aiwarden.monitoring.stored_accumulators import lift, resolve

__all__ = ["MAX_GAUGE", "BucketData", "bucket_starts", "split_by_bucket"]

# stored formats: 1 = one JSON document (read only); 2 = header + raw arrays (read only);
# 3 = 2 with the accumulators' histogram lists as raw arrays too, after the profile's
_PACKED = 3
# The largest gauge sample or feedback score taken (one bound for every summed ingest
# number: aiwarden/_plausible.py)
MAX_GAUGE = MAX_MAGNITUDE
_HEAD = struct.Struct("<4sI")
_MAGIC = b"AWB2"
# Compression around either format: LZ4 (frame), after this magic and the raw length, or
# zlib (every blob written before LZ4; a zlib stream starts with 0x78, never with "AW").
# LZ4 decodes a partial ~10x and encodes it ~7x faster than zlib level 1, for ~30-50 % more
# bytes: a restarted server decodes every partial its first alert cycle reads, and ingest
# encodes one per bucket, rollup level and segment (bench/alerting.py, bench/segments.py).
_LZ4_MAGIC = b"AWZ4"
_LZ4 = pa.Codec("lz4") if pa.Codec.is_available("lz4") else None
_DTYPES = (np.int64, np.int64, np.float64, np.int64, np.int64, np.int64)  # Packed._ARRAYS


class BucketData:
    """One bucket (or a merged window): rows, profile, latency, quarantine, labels, errors
    and resource gauges.

    The profile is held packed (:class:`Packed`) or as an engine :class:`Profile`,
    whichever it was made from, and converted on first use: buckets read from the store
    are merged packed and only the window's merge becomes a ``Profile``.
    Resource gauges are ``name -> (samples, sum, max)``, so mean and peak survive merging.
    """

    __slots__ = (
        "_packed",
        "_profile",
        "errors",
        "labels",
        "latency",
        "quarantine_reasons",
        "quarantined",
        "resources",
        "rows",
    )

    def __init__(self, rows: int = 0, profile: Profile | None = None,
                 latency: np.ndarray | None = None, quarantined: int = 0,
                 quarantine_reasons: dict[str, int] | None = None, labels: int = 0,
                 errors: int = 0, resources: dict[str, tuple[float, float, float]] | None = None,
                 *, packed: Packed | None = None) -> None:
        self.rows, self._profile, self._packed = rows, profile, packed
        self.latency = (np.zeros(latency_hist.N_BINS, np.int64) if latency is None
                        else latency)
        self.quarantined, self.labels, self.errors = quarantined, labels, errors
        self.quarantine_reasons = quarantine_reasons or {}
        self.resources = resources or {}

    @property
    def profile(self) -> Profile | None:
        if self._profile is None and self._packed is not None:
            self._profile = self._packed.to_profile()
        return self._profile

    @property
    def packed(self) -> Packed | None:
        if self._packed is None and self._profile is not None:
            self._packed = Packed.from_profile(self._profile)
        return self._packed

    @staticmethod
    def merge_all(parts: list[BucketData]) -> BucketData:
        if not parts:
            return BucketData()
        if len(parts) == 1:
            return parts[0]
        packed = [p.packed for p in parts if p.has_profile]
        reasons: dict[str, int] = {}
        resources: dict[str, tuple[float, float, float]] = {}
        for p in parts:
            for k, v in p.quarantine_reasons.items():
                reasons[k] = reasons.get(k, 0) + v
            for k, (n, total, peak) in p.resources.items():
                n0, t0, p0 = resources.get(k, (0, 0.0, -np.inf))
                resources[k] = (n0 + n, t0 + total, max(p0, peak))
        return BucketData(
            rows=sum(p.rows for p in parts),
            packed=Packed.merge_all(packed) if packed else None,
            latency=np.sum([p.latency for p in parts], axis=0),
            quarantined=sum(p.quarantined for p in parts),
            # a replayed row's -1 cancels its +1: a reason that nets to 0 is gone
            quarantine_reasons={k: v for k, v in reasons.items() if v},
            labels=sum(p.labels for p in parts),
            errors=sum(p.errors for p in parts), resources=resources,
        )

    @property
    def has_profile(self) -> bool:
        return self._profile is not None or self._packed is not None

    def to_bytes(self) -> bytes:
        nz = np.flatnonzero(self.latency)
        packed = self.packed
        head: dict[str, Any] = {
            "format": _PACKED, "rows": self.rows,
            "profile": None if packed is None else packed.header(),
            "latency": [nz.tolist(), self.latency[nz].tolist()],
            "quarantined": self.quarantined, "quarantine_reasons": self.quarantine_reasons,
            "labels": self.labels, "errors": self.errors,
            "resources": {k: list(v) for k, v in self.resources.items()},
        }
        arrays = [] if packed is None else [_narrow(np.asarray(a, t)) for a, t in
                                            zip(packed.arrays(), _DTYPES, strict=True)]
        if packed is not None:
            extra: list[np.ndarray] = []
            for key in ("performance", "estimated"):
                head["profile"][key] = lift(head["profile"][key], extra)
            arrays += [_narrow(a) if a.dtype.kind == "i" else np.ascontiguousarray(a)
                       for a in extra]
        head["arrays"] = [[a.dtype.str, a.size] for a in arrays]
        body = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
        return _compress(b"".join([_HEAD.pack(_MAGIC, len(body)), body,
                                   *(a.tobytes() for a in arrays)]))

    @classmethod
    def from_bytes(cls, blob: bytes) -> BucketData:
        raw = _decompress(blob)
        if raw[:4] != _MAGIC:
            return cls._from_json(orjson.loads(raw))
        _, size = _HEAD.unpack_from(raw)
        at = _HEAD.size + size
        d = orjson.loads(raw[_HEAD.size:at])
        packed = None
        if d["profile"] is not None:
            arrays = []
            n_packed = len(_DTYPES)  # then, in format 3, the accumulators' arrays
            for i, (stored, n) in enumerate(d["arrays"]):
                a = np.frombuffer(raw, stored, n, at)
                # a copy, so the decompressed buffer is not kept alive by a view (caches)
                arrays.append(a.copy() if i >= n_packed or a.dtype.kind == "u"
                              else a.astype(_DTYPES[i]))
                at += a.nbytes
            if len(arrays) < n_packed:
                raise DataError(f"A stored bucket partial has {len(arrays)} profile arrays, "
                                f"not {n_packed}; it is damaged.")
            for key in ("performance", "estimated"):
                resolve(d["profile"][key], arrays[n_packed:])
            packed = Packed.from_parts(d["profile"], arrays[:n_packed])
        return cls._common(d, packed=packed)

    @classmethod
    def _from_json(cls, d: dict[str, Any]) -> BucketData:
        """Format 1, as stored before packing: still read, never written."""
        profile = None if d["profile"] is None else Profile.from_dict(d["profile"])
        return cls._common(d, profile=profile)

    @classmethod
    def _common(cls, d: dict[str, Any], **profile: Any) -> BucketData:
        lat = np.zeros(latency_hist.N_BINS, np.int64)
        idx, vals = d["latency"]
        lat[np.asarray(idx, dtype=np.int64)] = vals
        return cls(
            rows=int(d["rows"]), latency=lat, quarantined=int(d["quarantined"]),
            quarantine_reasons={str(k): int(v) for k, v in d["quarantine_reasons"].items()},
            labels=int(d["labels"]), errors=int(d.get("errors", 0)),
            resources={str(k): (float(v[0]), float(v[1]), float(v[2]))
                       for k, v in d.get("resources", {}).items()
                       if None not in v},  # a sum stored as null (inf) before MAX_GAUGE
            **profile,
        )


def _compress(raw: bytes) -> bytes:
    if _LZ4 is None:  # a pyarrow built without LZ4: the older encoding, read the same way
        return zlib.compress(raw, 1)
    return _HEAD.pack(_LZ4_MAGIC, len(raw)) + _LZ4.compress(raw, asbytes=True)


def _decompress(blob: bytes) -> bytes:
    if bytes(blob[:4]) != _LZ4_MAGIC:
        return zlib.decompress(blob)
    if _LZ4 is None:
        raise DataError("This bucket partial is LZ4-compressed and this pyarrow has no "
                           "LZ4 codec; install a pyarrow wheel from PyPI (they include it).")
    _, size = _HEAD.unpack_from(blob)
    return _LZ4.decompress(memoryview(blob)[_HEAD.size:], size, asbytes=True)


def _narrow(a: np.ndarray) -> np.ndarray:
    """Counts in the smallest unsigned type that holds them: a minute bucket's bins are
    mostly zeros and small, and a quarter of the bytes decompresses four times faster."""
    if a.dtype.kind != "i" or not a.size or a.min() < 0:
        return np.ascontiguousarray(a)
    top = int(a.max())
    for t in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(t).max:
            return a.astype(t)
    return np.ascontiguousarray(a)


def bucket_starts(ts: np.ndarray, bucket_seconds: int) -> np.ndarray:
    """The start (epoch seconds) of each timestamp's bucket."""
    return (np.asarray(ts, np.float64) // bucket_seconds).astype(np.int64) * bucket_seconds


def split_by_bucket(starts: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(bucket start, positions)`` pairs; positions keep their input order."""
    order = np.argsort(starts, kind="stable")
    first_starts, first = np.unique(starts[order], return_index=True)
    return list(zip(first_starts.tolist(), np.split(order, first[1:]), strict=True))
