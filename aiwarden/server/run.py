"""Starting the server: checks that must fail before binding, then uvicorn (one process,
or ``workers`` processes sharing one socket and one PostgreSQL database)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import uvicorn

from aiwarden._spawned_pool import cores
from aiwarden.server.settings import ServerSettings
from aiwarden.store import keys
from aiwarden.store.database import Database

__all__ = ["preflight", "serve", "worker_app", "workers_problem"]


def preflight(settings: ServerSettings) -> str | None:
    """Migrate, then the reason not to start (None when fine)."""
    db = Database(settings.url)
    try:
        db.migrate()
        with db.read() as conn:
            active = keys.count_active(conn)
    finally:
        db.dispose()
    if active == 0 and not settings.loopback:
        return (f"refusing to listen on {settings.host} without an API key. Create one with "
                "`aiwarden keys create NAME --scopes admin` (same --data-dir/--database-url), "
                "or bind to 127.0.0.1.")
    return None


#: ``--workers`` beyond this many per core is refused: ``--workers 500`` once spawned 500
#: processes of ~330 MB each and took the machine's memory.
MAX_WORKERS_PER_CORE = 4


def workers_problem(settings: ServerSettings, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve this store (None when they can)."""
    if workers < 1:
        return f"--workers must be at least 1, got {workers}."
    most = MAX_WORKERS_PER_CORE * cores()
    if workers > most:
        return (f"--workers {workers} is more than {most} ({MAX_WORKERS_PER_CORE} per core on "
                f"{cores()} cores): each process holds ~330 MB and up to 16 PostgreSQL "
                "connections, and more processes than cores add contention, not capacity "
                "(docs/deployment.md).")
    if workers > 1 and settings.url.startswith("sqlite"):
        return (f"--workers {workers} needs PostgreSQL (--database-url postgresql+psycopg://"
                "...): SQLite lets one process write at a time, so more workers would queue "
                "on its lock instead of adding capacity.")
    return None


def _logging(settings: ServerSettings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's own requests


def _as_env(settings: ServerSettings) -> dict[str, str]:
    """The settings as ``AIWARDEN_*`` variables: worker processes are started fresh and
    read their settings from the environment, flags included."""
    out = {}
    for f in fields(settings):
        value: Any = getattr(settings, f.name)
        if value is None:
            continue
        out[f"AIWARDEN_{f.name.upper()}"] = (("true" if value else "false")
                                             if isinstance(value, bool) else str(value))
    return out


def worker_app() -> Any:
    """One worker's app (uvicorn's factory in each worker process)."""
    from aiwarden.server.app import create_app

    settings = ServerSettings.from_env()
    _logging(settings)
    return create_app(settings)


def serve(settings: ServerSettings, *, on_started: Callable[[], None] | None = None,
          workers: int = 1) -> int:
    _logging(settings)
    problem = workers_problem(settings, workers)
    if problem is None and workers > 1 and on_started is not None:
        problem = "--demo runs in one process: leave --workers out."
    problem = problem or preflight(settings)
    if problem:
        print(f"aiwarden server: error: {problem}", file=sys.stderr)
        return 2
    if workers > 1:
        # Every worker serves ingest, reads, the dashboard and its gateways; the one
        # holding the evaluator lease also evaluates, notifies and runs retention
        # (docs/server.md, Several processes). A worker that dies is started again.
        os.environ.update(_as_env(settings))
        uvicorn.run("aiwarden.server.run:worker_app", factory=True, workers=workers,
                    host=settings.host, port=settings.port, log_level=settings.log_level,
                    access_log=False, timeout_graceful_shutdown=10,
                    # a worker is replaced when its ping thread misses this long; the
                    # default 5 s could take a worker starved on a loaded machine for hung
                    timeout_worker_healthcheck=30)
        return 0
    from aiwarden.server.app import create_app

    app = create_app(settings, on_started=on_started)
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 2  # could not listen (docs/cli.md: usage)
