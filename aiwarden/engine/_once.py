"""A result computed once per process, even when threads ask for it at the same moment.

Why not ``functools.cache``: every thread that misses at the same time runs the body. The
numba loaders replace module globals with their compiled versions, so a second run compiled
an already compiled function (numba's TypeError), which failed a server's first
concept-drift feed when two threads reached it together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

__all__ = ["once"]

T = TypeVar("T")


def once(fn: Callable[[], T]) -> Callable[[], T]:
    lock = threading.Lock()
    done: list[T] = []

    @wraps(fn)
    def wrapper() -> T:
        if not done:
            with lock:
                if not done:
                    done.append(fn())
        return done[0]

    return wrapper
