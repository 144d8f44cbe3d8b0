"""What one time bucket holds: the engine profile plus serving facts the engine does not know.

Everything merges by addition, so a window is the merge of its buckets' partials.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from aiwarden.engine.profile import Profile
from aiwarden.monitoring import latency

__all__ = ["BucketData", "bucket_starts", "split_by_bucket"]

_FORMAT = 1


@dataclass(frozen=True, eq=False)
class BucketData:
    rows: int = 0
    profile: Profile | None = None
    latency: np.ndarray = field(default_factory=lambda: np.zeros(latency.N_BINS, np.int64))
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    labels: int = 0

    @staticmethod
    def merge_all(parts: list[BucketData]) -> BucketData:
        if not parts:
            return BucketData()
        if len(parts) == 1:
            return parts[0]
        profiles = [p.profile for p in parts if p.profile is not None]
        reasons: dict[str, int] = {}
        for p in parts:
            for k, v in p.quarantine_reasons.items():
                reasons[k] = reasons.get(k, 0) + v
        return BucketData(
            rows=sum(p.rows for p in parts),
            profile=Profile.merge_all(profiles) if profiles else None,
            latency=np.sum([p.latency for p in parts], axis=0),
            quarantined=sum(p.quarantined for p in parts),
            quarantine_reasons=reasons,
            labels=sum(p.labels for p in parts),
        )

    def to_bytes(self) -> bytes:
        nz = np.flatnonzero(self.latency)
        body: dict[str, Any] = {
            "format": _FORMAT, "rows": self.rows,
            "profile": None if self.profile is None else self.profile.to_dict(),
            "latency": [nz.tolist(), self.latency[nz].tolist()],
            "quarantined": self.quarantined, "quarantine_reasons": self.quarantine_reasons,
            "labels": self.labels,
        }
        return zlib.compress(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> BucketData:
        d = orjson.loads(zlib.decompress(blob))
        lat = np.zeros(latency.N_BINS, np.int64)
        idx, vals = d["latency"]
        lat[np.asarray(idx, dtype=np.int64)] = vals
        return cls(
            rows=int(d["rows"]),
            profile=None if d["profile"] is None else Profile.from_dict(d["profile"]),
            latency=lat, quarantined=int(d["quarantined"]),
            quarantine_reasons={str(k): int(v) for k, v in d["quarantine_reasons"].items()},
            labels=int(d["labels"]),
        )


def bucket_starts(ts: np.ndarray, bucket_seconds: int) -> np.ndarray:
    """The start (epoch seconds) of each timestamp's bucket."""
    return (np.asarray(ts, np.float64) // bucket_seconds).astype(np.int64) * bucket_seconds


def split_by_bucket(starts: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(bucket start, positions)`` pairs; positions keep their input order."""
    order = np.argsort(starts, kind="stable")
    first_starts, first = np.unique(starts[order], return_index=True)
    return list(zip(first_starts.tolist(), np.split(order, first[1:]), strict=True))
