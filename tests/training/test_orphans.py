"""A training process left behind is found by its run directory and killed with its session;
nothing else is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiwarden.training.contract import CONTEXT_ENV
from aiwarden.training.orphans import find_run_processes, kill_run_processes

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux /proc")

# a training process that started a child of its own (a data loader, a compiler...)
TREE = ("import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(p.pid, flush=True); time.sleep(60)")


def _start(run_dir: Path, *, session: bool) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, **{CONTEXT_ENV: str(run_dir / "context.json")})
    proc = subprocess.Popen([sys.executable, "-c", TREE], env=env, stdout=subprocess.PIPE,
                            text=True, start_new_session=session)
    assert proc.stdout is not None
    with proc.stdout:
        return proc, int(proc.stdout.readline())


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_runs_session_is_found_and_killed_whole(tmp_path: Path) -> None:
    ours, child = _start(tmp_path / "run-7", session=True)
    other, other_child = _start(tmp_path / "run-8", session=True)
    try:
        assert find_run_processes(str(tmp_path / "run-7")) == [ours.pid]
        assert kill_run_processes(str(tmp_path / "run-7")) == [ours.pid]
        assert ours.wait(timeout=10) == -9
        deadline = time.monotonic() + 30
        while not _gone(child):  # the child went with the session
            assert time.monotonic() < deadline, "the training process's child survived"
            time.sleep(0.05)
        assert other.poll() is None and not _gone(other_child)  # another run: untouched
        assert find_run_processes(str(tmp_path / "run-7")) == []
    finally:
        for p in (ours, other):
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()


def test_a_process_that_does_not_lead_its_session_is_not_taken_for_the_run(
        tmp_path: Path) -> None:
    proc, _child = _start(tmp_path / "run-9", session=False)
    try:
        assert find_run_processes(str(tmp_path / "run-9")) == []
        assert find_run_processes("") == []
    finally:
        proc.kill()
        proc.wait()
        os.kill(_child, 9)
