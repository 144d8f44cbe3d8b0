"""Options several subcommands share, and the one way they print errors."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_client_options", "add_store_options", "fail", "store_settings"]


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


def store_settings(args: argparse.Namespace, **extra: Any) -> Any:
    from aiwarden.server.settings import ServerSettings

    return ServerSettings.from_env(data_dir=args.data_dir, database_url=args.database_url,
                                   **extra)


def fail(command: str, message: str) -> int:
    print(f"aiwarden {command}: error: {message}", file=sys.stderr)
    return 2
