"""``aiwarden audit text``: run the LLM evaluators over a fine-tuning or prompt dataset.

Unsafe, PII, secret and injection rows are named by row number (1 = the first data row) and
category and counted by category; exit code 1 when anything is found, so a retraining pipeline
can gate on it. PII and secret values are never printed: excerpts are redacted.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from aiwarden.commands._common import Exit, add_output_options, fail

__all__ = ["DEFAULT_EVALUATORS", "audit_texts", "register"]

#: Evaluators an audit runs unless ``--evaluators`` says otherwise (those that are installed).
DEFAULT_EVALUATORS = ("safety", "pii", "secrets", "injection")
_EXCERPT = 100
_SPACES = re.compile(r"\s+")


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="audit a dataset's texts for unsafe content, PII and "
                       "secrets (exit 1 when found)")
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


def _load(names: list[str]) -> tuple[list[Any], dict[str, str]]:
    """One instance per evaluator name (the one reading outputs, or inputs for injection)."""
    from aiwarden.llm.descriptors import load_evaluators

    found, missing = load_evaluators()
    chosen: dict[str, Any] = {}
    for ev in found:
        if ev.name in names and ev.name not in chosen:
            chosen[ev.name] = ev
    unknown = [n for n in names if n not in chosen and n not in missing]
    if unknown:
        valid = sorted({e.name for e in found} | set(missing))
        raise ValueError(f"unknown evaluator {', '.join(unknown)}; choose from "
                         f"{', '.join(valid)}")
    return [chosen[n] for n in names if n in chosen], {n: missing[n] for n in names
                                                        if n in missing}


def audit_texts(columns: dict[str, list[Any]], evaluators: list[Any]) -> dict[str, Any]:
    """Findings per row and column of ``columns`` (name → values; None/empty skipped; chat
    ``messages`` lists read as ``role: content`` lines).

    Returns the JSON-ready report: ``rows``, ``rows_flagged``, ``counts`` (category →
    findings), ``findings`` (one entry per row and column with its categories, spans and a
    redacted excerpt).
    """
    from aiwarden.llm.redact import redact

    n_rows = len(next(iter(columns.values()))) if columns else 0
    counts: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    flagged: set[int] = set()
    for col, values in columns.items():
        all_texts = [_as_text(v) for v in values]
        idx = [i for i, t in enumerate(all_texts) if t]
        texts = [all_texts[i] for i in idx]
        per_text: list[list[Any]] = [[] for _ in texts]
        for ev in evaluators:
            for k, fs in enumerate(ev.evaluate(texts)):
                per_text[k].extend(fs)
        for k, fs in enumerate(per_text):
            if not fs:
                continue
            i = idx[k]
            flagged.add(i)
            for f in fs:
                counts[f.category] = counts.get(f.category, 0) + 1
            entries.append({
                "row": i + 1, "column": col,
                "categories": sorted({f"{f.evaluator}:{f.category}" for f in fs}),
                "findings": [{"evaluator": f.evaluator, "category": f.category,
                              "span": [f.start, f.end], "severity": f.severity}
                             for f in fs],
                "excerpt": _excerpt(redact(texts[k], fs), fs),
            })
    entries.sort(key=lambda e: (e["row"], e["column"]))
    return {"rows": n_rows, "rows_flagged": len(flagged),
            "counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "findings": entries}


def _as_text(value: Any) -> str:
    """A cell as the text audited: chat ``messages`` lists (the fine-tuning format) as
    ``role: content`` lines, other non-strings as ``str``; None as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m
                                                 for m in value):
        return "\n".join(f"{m.get('role') or 'message'}: {m.get('content') or ''}"
                          for m in value)
    return str(value)


def _excerpt(redacted: str, findings: list[Any]) -> str:
    """Up to 100 characters of the redacted text (whitespace collapsed) around the first
    finding. Text before the first span is unchanged by redaction, so its offset holds."""
    first = min((f.start for f in findings if f.start >= 0), default=0)
    before = _SPACES.sub(" ", redacted[:first])
    text = before + _SPACES.sub(" ", redacted[first:])
    if len(text) <= _EXCERPT:
        return text.strip()
    start = max(0, min(len(before) - 30, len(text) - _EXCERPT))
    cut = text[start:start + _EXCERPT].strip()
    return ("…" if start else "") + cut + ("…" if start + _EXCERPT < len(text) else "")


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
        evaluators, missing = _load(names)
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
