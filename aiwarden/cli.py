"""The ``aiwarden`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiwarden.commands import alerts, incidents, keys, log, models, registry, serve, server
from aiwarden.report import command as report

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from aiwarden.demo import run_demo

    run_demo(seed=args.seed, out=sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiwarden", description="Keep production models honest.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="print the engine's story on a generated fraud model "
                          "(no server; `aiwarden server --demo` runs the live demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    for module in (server, keys, models, log, report, alerts, incidents, registry, serve):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
