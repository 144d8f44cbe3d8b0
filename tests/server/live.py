"""Real servers and real databases for tests: uvicorn in a thread or in a child process,
on SQLite files or on throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import create_engine, text

from aiwarden.server.settings import ServerSettings
from aiwarden.store.database import Database

PG_ADMIN = os.environ.get("AIWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database_url(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database of ``kind`` ('sqlite' or 'postgresql'), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'aw-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"aw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def migrated_database(kind: str, tmp: Path) -> Iterator[Database]:
    """A fresh database of ``kind``, migrated to head, disposed and dropped afterwards."""
    with database_url(kind, tmp) as url:
        database = Database(url)
        database.migrate()
        try:
            yield database
        finally:
            database.dispose()


class ThreadServer:
    """uvicorn serving the real app on a free loopback port, in this process."""

    def __init__(self, settings: ServerSettings) -> None:
        from aiwarden.server.app import create_app

        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning",
            lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def settings_for(url: str, tmp: Path, **kw: object) -> ServerSettings:
    # The test receivers (tests/alerting/receivers.py) listen on 127.0.0.1, which the egress
    # policy denies by default: test servers allow it explicitly (egress_allow="" to not).
    return ServerSettings(host="127.0.0.1", port=free_port(), data_dir=str(tmp),
                          database_url=url, compact_every=kw.pop("compact_every", 0.5),
                          egress_allow=kw.pop("egress_allow", "127.0.0.1"),
                          **kw)  # type: ignore[arg-type]


class ProcessServer:
    """``aiwarden server`` as a child process: for kill -9, binding and multi-process tests.

    ``url`` None leaves the database to ``args``; the environment carries no other
    ``AIWARDEN_*`` settings than the ones given here.
    """

    def __init__(self, url: str | None, tmp: Path, port: int | None = None,
                 extra_env: dict[str, str] | None = None, args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url, self.tmp = url, tmp
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
        self.env = {**clean, "AIWARDEN_DATA_DIR": str(tmp), "AIWARDEN_LOG_LEVEL": "warning",
                    **({"AIWARDEN_DATABASE_URL": url} if url else {}), **(extra_env or {})}
        self.args = list(args) or ["--host", "127.0.0.1"]
        self.log_path = tmp / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> ProcessServer:
        # The log goes to a file: an unread pipe would block a chatty server.
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiwarden.cli", "server", "--port", str(self.port),
             *self.args], env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, within: float = 60) -> ProcessServer:
        assert self.proc is not None
        deadline = time.monotonic() + within
        # one client: httpx.get builds an SSL context per call (~40 CPU-ms), which at ten
        # polls a second took a third of a core from the server starting up
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log()[-2000:]}")
                try:
                    if http.get(f"{self.url}/readyz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def start(self) -> ProcessServer:
        return self.spawn().wait_ready()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
