"""A script that reads only the first line (``KEY=$(aiwarden keys create ci ... | head -1)``)
gets no traceback: the command did its work, and a reader that left is not an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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


def test_a_keyed_server_tells_the_cli_user_how_to_give_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aiwarden.cli import main
    from aiwarden.store import keys
    from aiwarden.store.database import Database
    from tests.server.live import ThreadServer, settings_for

    url = f"sqlite:///{tmp_path / 'k.db'}"
    db = Database(url)
    db.migrate()
    with db.write() as conn:
        keys.create_key(conn, "admin", ["admin"])
    db.dispose()
    with ThreadServer(settings_for(url, tmp_path)) as srv:
        for argv in (["models", "list"], ["registry", "list"],
                     ["log", "predictions", "m", str(tmp_path / "rows.json")]):
            (tmp_path / "rows.json").write_text('[{"prediction_id": "a"}]')
            assert main([*argv, "--url", srv.url]) == 2, argv
            err = capsys.readouterr().err
            assert "HTTP 401" in err and "--api-key" in err and "AIWARDEN_API_KEY" in err, err
