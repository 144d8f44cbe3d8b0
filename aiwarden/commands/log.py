"""``aiwarden log``: send a file of predictions or labels to the server."""

from __future__ import annotations

import argparse
from typing import Any

from aiwarden.commands._common import add_client_options, fail

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="send a Parquet/CSV/JSON/Arrow file of predictions or labels",
                       description="Predictions: flat columns prediction_id, timestamp?, "
                                   "version?, latency_ms? and the schema's columns. Labels: "
                                   "prediction_id and label.")
    p.add_argument("kind", choices=("predictions", "labels"))
    p.add_argument("model")
    p.add_argument("file")
    p.add_argument("--version", help="version for rows that do not name one (predictions)")
    add_client_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.errors import AiwardenError
    from aiwarden.sdk import ApiError, Client
    from aiwarden.tabular_io import read_file

    try:
        table = read_file(args.file)
        with Client(args.url, api_key=args.api_key) as c:
            if args.kind == "predictions":
                res = c.log_predictions(args.model, table, version=args.version)
            else:
                res = c.log_labels(args.model, table)
    except (ApiError, AiwardenError, OSError) as exc:
        return fail("log", str(exc))
    counts = ", ".join(f"{k} {v}" for k, v in res.items() if k != "errors")
    print(f"{args.kind} from {args.file}: {counts}")
    for e in res.get("errors", [])[:10]:
        print(f"  row {e.get('row')} ({e.get('prediction_id')}): {e.get('field')}: "
              f"{e.get('reason')}")
    return 0
