"""References are immutable once uploaded, so each process decodes each one once."""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from aiwarden.engine.reference import Reference
from aiwarden.store.models_repo import load_reference

__all__ = ["References"]


class References:
    def __init__(self) -> None:
        self._cache: dict[int, Reference] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, version_id: int) -> Reference | None:
        ref = self._cache.get(version_id)
        if ref is None:
            ref = load_reference(conn, version_id)
            if ref is not None:
                with self._lock:
                    self._cache[version_id] = ref
        return ref
