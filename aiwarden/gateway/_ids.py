"""The caller's prediction ids this gateway has served, to tell reuse from a retry.

Ingest keeps one event per (model, prediction_id) and counts the rest as duplicates
(docs/api.md). A caller that reuses an id for a different request would get a fresh
prediction whose event monitoring then drops: its drift, quality and labels silently
describe the first request. So the gateway remembers, per id, a digest of the features
it was served with: the same features again is a retry (answered, marked ``duplicate``),
other features a conflict (409, nothing runs). The memory is this process's most recent
``max_ids`` ids: an id first used in another process or before a restart is not seen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from aiwarden.gateway._errors import PredictionIdConflict
from aiwarden.gateway._rows import Item

__all__ = ["IdLedger"]


def _digest(features: dict[str, Any]) -> int:
    try:
        text = orjson.dumps(features, option=orjson.OPT_SORT_KEYS
                            | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # a Python caller's odd value: its repr still tells rows apart
        text = repr(sorted(features.items(), key=lambda kv: str(kv[0]))).encode()
    return hash(text)


class IdLedger:
    """Bounded id → features digest, oldest forgotten first; thread-safe."""

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, items: Sequence[Item], version: str, single: bool) -> list[bool]:
        """Per item, True when it repeats an id served with the same features. Raises
        PredictionIdConflict (recording nothing) when an id was served with other
        features, earlier or in this very request."""
        given = [(i, it, _digest(it.features)) for i, it in enumerate(items) if it.given_id]
        repeat = [False] * len(items)
        if not given:
            return repeat
        with self._lock:
            fresh: dict[str, int] = {}
            for i, it, d in given:
                pid = it.prediction_id
                prev = fresh.get(pid, self._seen.get(pid))
                if prev is None:
                    fresh[pid] = d
                elif prev == d:
                    repeat[i] = True
                else:
                    where = "prediction_id" if single else f"rows[{i}].prediction_id"
                    raise PredictionIdConflict(
                        f"{where}: {pid!r} is already used for another request (other "
                        "features); monitoring keeps one event per id and would drop this "
                        "one. Send a new id; a retry of the same request is answered.",
                        version=version, field=where)
            for pid, d in fresh.items():
                self._seen[pid] = d
            while len(self._seen) > self.max_ids:
                self._seen.popitem(last=False)
        return repeat
