"""Training processes left behind by a server that died (kill -9, OOM killer, power cut).

The local executor starts each run's process in a session of its own, so that a time limit or
a cancel kills it with its children; the price is that the process outlives a server killed
with SIGKILL. The server that later finds the run's stale heartbeat ends the run and kills
what is left of it here.

How a process is known to be the run's: the executor puts ``AIWARDEN_TRAINING_CONTEXT=
<run dir>/context.json`` in its environment (entry-point and command pipelines alike), and
the run directory is unique to the run and recorded on it when it is claimed. A process
qualifies only when that variable names this run's directory *and* it leads its own session
(the executor's child, not something it started that moved away); the whole session is
killed. A *warm* run's process (forked from the zygote, aiwarden/training/warm.py) cannot
carry the variable where ``/proc`` shows it (that is the zygote's environment, fixed at its
start), so it writes a marker into the run directory instead: its pid with its start time
and the boot's id, a pair no later process can share. Either way a pid reused since the crash
can never be mistaken for the run. Linux only (``/proc``); a process on another machine, or
another user's, is not visible and is left alone (the reason says so when nothing was found).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from aiwarden.training.contract import CONTEXT_ENV, CONTEXT_FILE
from aiwarden.training.warm import MARKER_FILE, boot_id, start_time

__all__ = ["find_run_processes", "kill_run_processes"]

_PROC = Path("/proc")


def _environ(pid: int) -> dict[str, str]:
    raw = (_PROC / str(pid) / "environ").read_bytes()
    return dict(p.decode("utf-8", "replace").partition("=")[::2]
                for p in raw.split(b"\0") if b"=" in p)


def _state(pid: int) -> str | None:
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _marked(run_dir: str) -> list[int]:
    """The warm run process the run directory's marker names, if it still runs."""
    try:
        mark = json.loads((Path(run_dir) / MARKER_FILE).read_text())
        pid = int(mark["pid"])
        if (mark.get("boot_id") != boot_id() or start_time(pid) != mark.get("start_time")
                or os.getsid(pid) != pid):
            return []
    except (OSError, ValueError, KeyError, TypeError):  # none, gone, another process now
        return []
    return [pid] if _state(pid) not in (None, "Z") else []


def find_run_processes(run_dir: str) -> list[int]:
    """Pids of the session leaders this host runs for the run directory ``run_dir``."""
    if not run_dir or not _PROC.is_dir():
        return []
    marker = str(Path(run_dir) / CONTEXT_FILE)
    found = _marked(run_dir)
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if _environ(pid).get(CONTEXT_ENV) != marker or os.getsid(pid) != pid:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):  # gone, another user's, unreadable
            continue
        if state != "Z":  # a zombie is already dead; only its parent can reap it
            found.append(pid)
    return sorted(set(found))


def kill_run_processes(run_dir: str) -> list[int]:
    """SIGKILL the sessions of the run's processes left on this host; the pids killed."""
    killed = []
    for pid in find_run_processes(run_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
