"""References are immutable once uploaded, so each process decodes each one once.

A version without a reference or schema is monitored against the reference it inherits
(:func:`~aiwarden.store.models_repo.inherits_from`); that one is looked up on every call,
never cached under the inheriting version, so a reference uploaded later is seen.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from aiwarden.engine.reference import Reference
from aiwarden.store.models_repo import load_reference, reference_source

__all__ = ["References"]


class References:
    def __init__(self) -> None:
        self._cache: dict[int, Reference] = {}
        self._lock = threading.Lock()

    def cached(self, version_id: int) -> Reference | None:
        """The version's own reference if this process decoded it before, else None: a
        caller that has no connection open can skip checking one out (on PostgreSQL that
        is a ping and a rollback, two round trips, per request)."""
        return self._cache.get(version_id)

    def get(self, conn: Connection, version_id: int, *,
            inherit: bool = True) -> Reference | None:
        ref = self._cache.get(version_id)
        if ref is None:
            ref = load_reference(conn, version_id)
            if ref is not None:
                with self._lock:
                    self._cache[version_id] = ref
            elif inherit:
                src = reference_source(conn, version_id)
                if src is not None:
                    return self.get(conn, src, inherit=False)
        return ref
