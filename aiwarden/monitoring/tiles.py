"""Decoded bucket partials kept between reads, so a window re-read decodes only what is new.

An alert cycle reads the same windows of every model every few seconds, and a dashboard
re-reads the same ranges; between two reads only the newest partials change. Stored
partials are immutable (compaction inserts a merged row and deletes the old ones), so a
decoded partial stays valid for as long as its row exists. A row is recognised by its id
together with its level, start and row count, so even an id that a database hands out
again after a deletion cannot be mistaken for the old row.

The cache is bounded by the bytes its arrays hold and evicts the least recently used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.stored_accumulators import Stored

__all__ = ["TileCache", "TileKey"]

# row id, level, start, rows (and the segment, for a segment partial: another id sequence)
TileKey = tuple[int, int, int, int] | tuple[int, int, int, int, str]
_OVERHEAD = 6144  # bytes around the arrays: Python objects of the header and accumulators


class TileCache:
    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[TileKey, tuple[BucketData, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: TileKey) -> BucketData | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: TileKey, data: BucketData) -> None:
        size = _size(data)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (data, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._items.popitem(last=False)
                self._bytes -= freed

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


def _size(d: BucketData) -> int:
    """Bytes of the arrays a partial holds (profile, accumulators, latency) plus a fixed
    allowance for the Python objects around them; within ~10 % of tracemalloc's count."""
    p = d.packed
    arrays = [d.latency]
    if p is not None:
        arrays += [*p.arrays(), p.num_offsets, p.cat_offsets]
        for acc in (p.performance, p.estimated):  # engine objects or stored dicts
            fields = (acc.d if isinstance(acc, Stored) else getattr(acc, "__dict__", {})).values()
            arrays += [v for v in fields if isinstance(v, np.ndarray)]
    return _OVERHEAD + sum(a.nbytes for a in arrays)
