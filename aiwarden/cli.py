"""The ``aiwarden`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiwarden.commands import (
    alerts,
    demo,
    incidents,
    keys,
    log,
    models,
    registry,
    serve,
    server,
)
from aiwarden.report import command as report

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiwarden", description="Keep production models honest.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, server, keys, models, log, report, alerts, incidents, registry, serve):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
