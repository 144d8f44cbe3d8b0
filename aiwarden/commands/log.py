"""``aiwarden log``: send a file of predictions or labels to the server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aiwarden.commands._common import add_client_options, exit_code, explain, fail

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="send a Parquet/CSV/JSON/Arrow file of predictions or labels",
                       description="Predictions: the row format of docs/api.md, as "
                                   "JSON/JSON Lines rows (flat, or nested features/prediction/"
                                   "scores/tags) or as Parquet/CSV/Arrow columns (flat, "
                                   "dotted features.x, or struct columns). Labels: "
                                   "prediction_id and label.")
    p.add_argument("kind", choices=("predictions", "labels", "llm", "llm-feedback"),
                   help="llm: LLM events, llm-feedback: {request_id, score, comment} rows, "
                        "both as JSON or JSON Lines (docs/llm.md)")
    p.add_argument("model")
    p.add_argument("file")
    p.add_argument("--version", help="version for rows that do not name one (predictions)")
    add_client_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.commands._progress import Progress
    from aiwarden.errors import AiwardenError
    from aiwarden.sdk import ApiError, Client
    from aiwarden.tabular_io import read_file

    try:
        # JSON rows go as JSON rows (their nested objects intact), columns as Arrow: the
        # server reads both forms with the same code as REST requests.
        data = _read_rows(args.file)
        if args.kind.startswith("llm"):
            return _llm(args, data)
        if data is None:
            data = read_file(args.file)
        with Client(args.url, api_key=args.api_key) as c, \
                Progress(f"log {args.kind} {args.model}", None, unit="rows") as bar:
            def sent(done: int, total: int) -> None:
                bar.total = total
                bar.update(done)

            if args.kind == "predictions":
                res = c.log_predictions(args.model, data, version=args.version, progress=sent)
            else:
                res = c.log_labels(args.model, data, progress=sent)
    except (ApiError, AiwardenError, OSError) as exc:
        return fail("log", explain(exc), exit_code(exc))
    counts = ", ".join(f"{k} {v}" for k, v in res.items()
                       if isinstance(v, int) and not isinstance(v, bool))
    print(f"{args.kind} from {args.file}: {counts}")
    if res.get("ignored_columns"):
        print(f"  ignored columns (in no schema column): {', '.join(res['ignored_columns'])}")
    if res.get("schema_from"):
        for v, src in res["schema_from"].items():
            print(f"  version {v} has no reference: typed and monitored with version {src}'s")
    for e in res.get("errors", [])[:10]:
        print(f"  row {e.get('row')} ({e.get('prediction_id')}): {e.get('field')}: "
              f"{e.get('reason')}")
    # Rows refused (labels) or quarantined (predictions): the others are stored, and the
    # exit code says not all were, as `log llm` and `quarantine replay` do (docs/cli.md).
    return 1 if res.get("quarantined") or res.get("rejected") else 0


def _read_rows(path: str) -> list[Any] | None:
    """:func:`read_rows`, a malformed JSON Lines row named by its line in the file (each line
    is parsed alone, so the decoder's own position is always "line 1"), as ``audit text``
    names it."""
    from aiwarden.errors import DataError
    from aiwarden.tabular_io import read_rows

    try:
        return read_rows(path)
    except DataError:
        bad = _bad_line(Path(path))
        if bad is None:  # one JSON document: the decoder's line is the file's
            raise
        number, exc = bad
        raise DataError(f"Cannot read {path!r} as json: line {number}: {exc}") from None


def _bad_line(path: Path) -> tuple[int, ValueError] | None:
    """The first line that is not JSON, in a JSON Lines file (one whose first row parses on
    its own); None for a JSON array or a single (pretty-printed) document."""
    lines = [(n, line) for n, line in enumerate(path.read_bytes().splitlines(), start=1)
             if line.strip()]
    if not lines or lines[0][1].lstrip().startswith(b"["):
        return None
    if len(lines) > 1 and not lines[1][1].lstrip().startswith(b"{"):
        try:  # a pretty-printed object's first line is "{", not a row
            json.loads(lines[0][1])
        except ValueError:
            return None
    for number, line in lines:
        try:
            json.loads(line)
        except ValueError as exc:
            return number, exc
    return None


_LLM_CHUNK = 1000  # events per request: evaluated and stored in one transaction


def _llm(args: argparse.Namespace, rows: list[Any] | None) -> int:
    """LLM events or feedback, sent in chunks; counts summed, the first errors shown."""
    from aiwarden.errors import AiwardenError
    from aiwarden.sdk import ApiError, Client

    if rows is None:
        return fail("log", f"{args.file}: LLM events are read from JSON or JSON Lines rows "
                    "(docs/llm.md)", 2)
    total: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    try:
        with Client(args.url, api_key=args.api_key) as c:
            for i in range(0, len(rows), _LLM_CHUNK):
                part = rows[i:i + _LLM_CHUNK]
                if args.version and args.kind == "llm":
                    part = [dict(r, version=r.get("version") or args.version)
                            if isinstance(r, dict) else r for r in part]
                try:
                    res = (c.log_llm(args.model, part) if args.kind == "llm"
                           else c.log_llm_feedback(args.model, rows=part))
                except ApiError as exc:
                    if exc.status != 422:  # a chunk of only bad rows: counted, go on
                        raise
                    res = {"received": len(part), "rejected": len(part),
                           "errors": [{"row": None, "field": exc.field,
                                       "reason": exc.message}]}
                for k, v in res.items():
                    if isinstance(v, int) and not isinstance(v, bool):
                        total[k] = total.get(k, 0) + v
                errors += [dict(e, row=None if e.get("row") is None else e["row"] + i)
                           for e in res.get("errors", [])]
    except (ApiError, AiwardenError, OSError) as exc:
        return fail("log", explain(exc), exit_code(exc))
    print(f"{args.kind} from {args.file}: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    for e in errors[:10]:
        print(f"  row {e.get('row')} ({e.get('request_id')}): {e.get('field')}: "
              f"{e.get('reason')}")
    return 1 if errors else 0
