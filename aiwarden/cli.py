"""The ``aiwarden`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from aiwarden.commands import (
    alerts,
    audit,
    confusion,
    demo,
    explain,
    incidents,
    keys,
    log,
    models,
    profile,
    quarantine,
    registry,
    serve,
    server,
    training,
)
from aiwarden.commands._common import Exit, exit_code, fail
from aiwarden.errors import AiwardenError
from aiwarden.report import command as report

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from aiwarden import __version__

    parser = argparse.ArgumentParser(prog="aiwarden", description="Keep production models "
                                     "honest. Exit codes: 0 ok, 1 a check found something, "
                                     "2 usage or refused, 3 not found, 4 connection, "
                                     "5 server error, 6 a training run failed (docs/cli.md).")
    parser.add_argument("--version", action="version", version=f"aiwarden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, server, keys, models, log, report, alerts, incidents, quarantine,
                   registry, serve, audit, training, explain, confusion, profile):
        module.register(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, so a reader that left is handled below
        return code
    except BrokenPipeError:  # `aiwarden keys create ci | head -1`: the reader has its line
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error
        return 0
    except AiwardenError as exc:  # e.g. a bad AIWARDEN_* setting: one line, no traceback
        return fail(args.command, str(exc), exit_code(exc))
    except Exception as exc:
        # keys, server: the database cannot be reached. Only a command that loaded SQLAlchemy
        # can raise its errors, so client commands do not pay for importing it.
        sa = sys.modules.get("sqlalchemy.exc")
        if sa is None or not isinstance(exc, sa.OperationalError):
            raise
        return fail(args.command, "cannot reach the database: " + " ".join(str(exc.orig).split()),
                    Exit.CONNECTION)


if __name__ == "__main__":
    raise SystemExit(main())
