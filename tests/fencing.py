"""The fencing check both lease tests make: a successor's take of the lease waits for the
old holder's fenced write to commit (the row is share-locked until then), then succeeds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def waiting_successor(db: Any, take: Callable[[Any], bool], lease: str, old: str,
                      new: str) -> Callable[[], None]:
    """Start ``take`` (in a write of its own, on a thread) while the caller's open write holds
    the fence for ``old``; asserts that it waits. Returns the check to call once that write
    committed: the take then ends and took the lease, which fences ``old`` out and ``new``
    in."""
    took: list[bool] = []

    def successor() -> None:
        with db.write() as conn:
            took.append(take(conn))

    t = threading.Thread(target=successor)
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive() and not took, "the take did not wait for the fenced write"

    def finished() -> None:
        from aiwarden.store import alerts_repo

        t.join(timeout=30)
        assert took == [True]
        with db.write() as conn:
            assert not alerts_repo.fence(conn, lease, old)
            assert alerts_repo.fence(conn, lease, new)

    return finished
