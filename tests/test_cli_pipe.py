"""A script that reads only the first line (``KEY=$(aiwarden keys create ci ... | head -1)``)
gets no traceback: the command did its work, and a reader that left is not an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _aiwarden(tmp: Path, *argv: str, stdout: int | None = subprocess.PIPE
              ) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    env["AIWARDEN_DATA_DIR"] = str(tmp)
    return subprocess.run([sys.executable, "-m", "aiwarden.cli", *argv], env=env,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=120)


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command prints anything
    try:
        done = _aiwarden(tmp_path, "keys", "create", "ci", "--scopes", "read", stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr
    listed = _aiwarden(tmp_path, "keys", "list")
    assert listed.returncode == 0 and b" ci " in listed.stdout, listed.stdout  # created
