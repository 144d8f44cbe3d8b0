"""``aiwarden confusion MODEL``: a classifier's confusion matrix, per class and over time.

The table shows the range's matrix (up to 12 classes; ``--json`` has every cell), each
class's recall and precision, the most confused pairs, and per step the top pair's rate,
so "banana -> cucumber" rising is one glance.
"""

from __future__ import annotations

import argparse
from typing import Any

from aiwarden.commands._common import add_client_options, add_output_options, call, emit

__all__ = ["register"]

_MAX_MATRIX = 12  # classes drawn as a matrix in the table output


def register(sub: Any) -> None:
    p = sub.add_parser("confusion", help="a classifier's confusion matrix over time: "
                       "per-class recall and precision, most confused pairs")
    p.add_argument("model")
    p.add_argument("--window", default="1d", help="range ending at --end (default 1d)")
    p.add_argument("--start", help="range start instead of --window (ISO 8601, epoch, -1h)")
    p.add_argument("--end", help="range end (default now)")
    p.add_argument("--step", help="per-point width, e.g. 1h (default: about 48 points)")
    p.add_argument("--version")
    p.add_argument("--segment", help="one segment's rows, e.g. store:7")
    p.add_argument("--top", type=int, default=5, help="confused pairs listed (default 5)")
    add_client_options(p)
    add_output_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.sdk import Client

    window = None if args.start else args.window
    with Client(args.url, api_key=args.api_key) as c:
        code, answer = call("confusion", lambda: c.confusion(
            args.model, window, start=args.start, end=args.end, step=args.step,
            version=args.version, segment=args.segment, top=args.top))
    return code or emit(args, answer, _table)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _table(a: dict[str, Any]) -> None:
    total, classes = a["total"], a["classes"]
    print(f"{a['model']} version {a['version']}: {a['start']} .. {a['end']}, "
          f"{total['n']} labelled rows")
    if 0 < len(classes) <= _MAX_MATRIX:
        w = max(8, *(min(len(str(c)), 14) + 1 for c in classes))
        print("true \\ predicted".ljust(w) + "".join(str(c)[:w - 1].rjust(w) for c in classes))
        for c, row in zip(classes, total["matrix"], strict=True):
            print(str(c)[:w - 1].ljust(w) + "".join(str(x).rjust(w) for x in row))
    print(f"\n{'class':<24}{'support':>9}{'recall':>9}{'precision':>11}")
    for pc in total["per_class"]:
        print(f"{str(pc['class'])[:23]:<24}{pc['support']:>9}{_pct(pc['recall']):>9}"
              f"{_pct(pc['precision']):>11}")
    print("\nmost confused (true -> predicted):")
    for p in total["pairs"] or []:
        print(f"  {p['true']} -> {p['pred']}: {p['count']} ({_pct(p['rate'])} of "
              f"{p['true']})")
    if not total["pairs"]:
        print("  none")
    print(f"\n{'window start (UTC)':<22}{'labels':>8}  top pair")
    for pt in a["points"]:
        top = (pt.get("pairs") or [None])[0]
        what = (f"{top['true']} -> {top['pred']} {_pct(top['rate'])}" if top
                else pt.get("reason", "-") if pt.get("matrix") is None else "-")
        print(f"{pt['start'][:19]:<22}{pt['labels']:>8}  {what}")
