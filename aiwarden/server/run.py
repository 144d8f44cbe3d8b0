"""Starting the server: checks that must fail before binding, then uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import uvicorn

from aiwarden.server.settings import ServerSettings
from aiwarden.store import keys
from aiwarden.store.database import Database

__all__ = ["preflight", "serve"]


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


def serve(settings: ServerSettings, *, on_started: Callable[[], None] | None = None) -> int:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's own requests
    problem = preflight(settings)
    if problem:
        print(f"aiwarden server: error: {problem}", file=sys.stderr)
        return 2
    from aiwarden.server.app import create_app

    app = create_app(settings, on_started=on_started)
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 2  # could not listen (docs/cli.md: usage)
