"""A training process that dies with the process that started it (Linux ``PR_SET_PDEATHSIG``).

Why: on a Dask worker nobody comes back for a run whose worker was killed (SIGKILL, the OOM
killer): the server's orphan search (aiwarden/training/orphans.py) only sees its own host. So
there the run process asks the kernel for a signal when its parent dies. The kernel sends it
when the parent *thread* exits, which is why it is set only under a parent that waits for the
child in the thread that started it (the local executor's wait loop, the warm runner's
shepherd), and never under a server: a server's runs outlive it on purpose, until the
restarted server finds and ends them.

Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

__all__ = ["death_signal_hook"]

_PR_SET_PDEATHSIG = 1


def death_signal_hook(sig: int) -> Callable[[], None] | None:
    """A function to call in a child right after ``fork`` (a ``preexec_fn``) that has the
    kernel send ``sig`` to it when the calling process dies; a parent already gone by then
    sends ``sig`` at once (that death would otherwise go unnoticed). Everything is resolved
    here, in the parent: the child only makes two system calls. None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)
    return hook
