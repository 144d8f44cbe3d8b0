"""Options several subcommands share, the exit codes, and the one way they print errors.

Exit codes (docs/cli.md, the one place they are listed):

====  ==========  =====================================================================
code  name        when
====  ==========  =====================================================================
0     OK          done
1     FOUND       a check found something: ``report --fail-on``, ``apply --dry-run``
                  with changes pending
2     USAGE       bad arguments or input, or the server refused the request (HTTP 4xx
                  other than 404: invalid, conflict, unauthorised)
3     NOT_FOUND   the model, version, key, incident or quarantined row does not exist
4     CONNECTION  the server could not be reached
5     SERVER      the server failed (HTTP 5xx)
6     RUN_FAILED  ``retrain --wait``: the training run failed or was cancelled, or had
                  not ended when ``--timeout`` ran out (a run a gate blocked exits 1)
====  ==========  =====================================================================
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Exit", "add_client_options", "add_output_options", "add_store_options", "call",
           "emit", "exit_code", "fail", "print_fields", "store_settings"]


class Exit(enum.IntEnum):
    OK = 0
    FOUND = 1
    USAGE = 2
    NOT_FOUND = 3
    CONNECTION = 4
    SERVER = 5
    RUN_FAILED = 6


def add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data folder for the embedded SQLite store "
                   "(env AIWARDEN_DATA_DIR; default ./aiwarden-data)")
    p.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://... "
                   "(env AIWARDEN_DATABASE_URL; default: SQLite in the data folder)")


def add_client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("AIWARDEN_URL", "http://127.0.0.1:8000"),
                   help="server URL (env AIWARDEN_URL)")
    p.add_argument("--api-key", default=os.environ.get("AIWARDEN_API_KEY"),
                   help="API key (env AIWARDEN_API_KEY)")


def add_output_options(p: argparse.ArgumentParser, default: str = "table") -> None:
    """``-o table|json`` and its shorthand ``--json``: JSON is what the API answered.

    Commands that always printed JSON keep it as their default (``default="json"``)."""
    p.add_argument("-o", "--output", choices=("table", "json"), default=default,
                   help=f"output format (default {default})")
    p.add_argument("--json", dest="output", action="store_const", const="json",
                   help="print JSON (same as -o json)")


def emit(args: argparse.Namespace, data: Any, table: Callable[[Any], None]) -> int:
    """Print ``data`` as JSON when asked to, else through ``table``; returns 0."""
    if getattr(args, "output", "table") == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        table(data)
    return Exit.OK


def print_fields(data: Any) -> None:
    """A JSON object as ``key: value`` lines (nested values as compact JSON)."""
    if not isinstance(data, dict):
        print(json.dumps(data, default=str))
        return
    for k, v in data.items():
        print(f"{k}: {json.dumps(v, default=str) if isinstance(v, dict | list) else v}")


def store_settings(args: argparse.Namespace, **extra: Any) -> Any:
    from aiwarden.server.settings import ServerSettings

    return ServerSettings.from_env(data_dir=args.data_dir, database_url=args.database_url,
                                   **extra)


def exit_code(exc: BaseException) -> Exit:
    """The exit code an exception stands for (see the table above)."""
    from aiwarden.sdk import ApiError

    if isinstance(exc, ApiError):
        if exc.status == 0:
            return Exit.CONNECTION
        if exc.status == 404:
            return Exit.NOT_FOUND
        return Exit.SERVER if exc.status >= 500 else Exit.USAGE
    # only commands that opened the store can raise its NotFound; importing it here would
    # load the engine (scipy) for every client command's error, a second of start-up
    repo = sys.modules.get("aiwarden.store.models_repo")
    if repo is not None and isinstance(exc, repo.NotFound):
        return Exit.NOT_FOUND
    return Exit.USAGE


def explain(exc: BaseException) -> str:
    """The error as one line; a 401 also says how a command line gives its key."""
    from aiwarden.sdk import ApiError

    if isinstance(exc, ApiError) and exc.status == 401:
        return f"{exc} Give the key with --api-key or the AIWARDEN_API_KEY environment variable."
    return str(exc)


def fail(command: str, message: str, code: int = Exit.USAGE) -> int:
    print(f"aiwarden {command}: error: {message}", file=sys.stderr)
    return int(code)


def call(command: str, fn: Callable[[], Any]) -> tuple[int, Any]:
    """``(0, fn())``, or the failure printed as one line and its exit code."""
    from aiwarden.errors import AiwardenError

    try:
        return 0, fn()
    except (AiwardenError, OSError, ValueError, TypeError) as exc:
        return fail(command, explain(exc), exit_code(exc)), None
