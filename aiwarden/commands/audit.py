"""``aiwarden audit text``: run the LLM evaluators over a fine-tuning or prompt dataset.

Unsafe, PII, secret and injection rows are named by row number (1 = the first data row) and
category and counted by category; exit code 1 when anything is found, so a retraining pipeline
can gate on it. PII and secret values are never printed: excerpts are redacted.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from aiwarden.commands._common import Exit, add_output_options, fail
from aiwarden.commands.audit_images import add_images_parser
from aiwarden.llm.audit import DEFAULT_EVALUATORS, audit_texts, load_evaluators_named

__all__ = ["DEFAULT_EVALUATORS", "audit_texts", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="audit a dataset's texts (unsafe content, PII, secrets) "
                       "or images (corrupt, duplicate, mislabelled); exit 1 when found")
    ps = p.add_subparsers(dest="audit_command", required=True)
    t = ps.add_parser("text", help="run the LLM evaluators over text columns of a "
                      "JSONL/CSV/Parquet file",
                      description="Names each row with unsafe content, PII, secrets or prompt "
                                  "injection (row 1 = the first data row) and counts findings "
                                  "by category. PII is shown redacted. Exit code 1 when "
                                  "anything is found, 0 when clean, 2 on bad input.")
    t.add_argument("file", help="JSON Lines, JSON, CSV, Parquet or Arrow file")
    t.add_argument("--column", action="append", required=True,
                   help="text column to audit (repeat, or comma-separate, for several)")
    t.add_argument("--evaluators", default=",".join(DEFAULT_EVALUATORS),
                   help=f"comma-separated evaluators (default {','.join(DEFAULT_EVALUATORS)})")
    t.add_argument("--max-rows", type=int, default=50,
                   help="flagged rows listed in the table output (default 50; JSON lists all)")
    add_output_options(t)
    t.set_defaults(func=_run)
    add_images_parser(ps)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.errors import AiwardenError
    from aiwarden.tabular_io import read_file

    names = [n.strip() for n in args.evaluators.split(",") if n.strip()]
    cols = [c.strip() for spec in args.column for c in spec.split(",") if c.strip()]
    try:
        table = read_file(args.file)
        absent = [c for c in cols if c not in table.column_names]
        if absent:
            return fail("audit text", f"{args.file}: no column {', '.join(map(repr, absent))}; "
                        f"the columns are {', '.join(table.column_names)}")
        evaluators, missing = load_evaluators_named(names)
    except (AiwardenError, OSError, ValueError) as exc:
        return fail("audit text", str(exc))
    if not evaluators:
        return fail("audit text", "no evaluator is available: " + "; ".join(missing.values()))
    report = audit_texts({c: table.column(c).to_pylist() for c in cols}, evaluators)
    report = {"file": args.file, "columns": cols,
              "evaluators": [e.name for e in evaluators], "not_run": missing, **report}
    if args.output == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _table(report, args.max_rows)
    return Exit.FOUND if report["findings"] else Exit.OK


def _table(r: dict[str, Any], max_rows: int) -> None:
    print(f"audit of {r['file']}: {r['rows']} rows, column(s) {', '.join(r['columns'])}; "
          f"evaluators {', '.join(r['evaluators'])}")
    for name, why in r["not_run"].items():
        print(f"  not run: {name}: {why}")
    for e in r["findings"][:max_rows]:
        print(f"row {e['row']} {e['column']}: {', '.join(e['categories'])}: {e['excerpt']}")
    if len(r["findings"]) > max_rows:
        print(f"... {len(r['findings']) - max_rows} more (use -o json for all)")
    if not r["findings"]:
        print("no findings")
        return
    print(f"flagged rows: {r['rows_flagged']} of {r['rows']}")
    print("by category: " + ", ".join(f"{k} {v}" for k, v in r["counts"].items()))
