"""``aiwarden report REFERENCE CURRENT``: the offline report, no server needed.

Exit codes (docs/cli.md): 0 when the report was written (whatever it found, unless
``--fail-on`` says otherwise), 1 when it was written and ``--fail-on`` is met (``warning``:
the verdict is warning or critical; ``error``: critical), 2 when it could not be written
(unreadable input, unknown column, unwritable output), with one line on stderr naming
the file and the reason instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from aiwarden.errors import AiwardenError

__all__ = ["register", "run"]

_TASKS = ("binary", "multiclass", "regression", "none")
_MAX_FINDINGS_PRINTED = 10
_FAIL_ON = {"warning": ("warning", "critical"), "error": ("critical",)}


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "report", help="write a JSON and a single-file HTML drift and data-quality report",
        description="Compare CURRENT data with REFERENCE data and write report.json and "
                    "report.html (self-contained) to --out. Inputs: .parquet/.pq, .csv, "
                    ".json/.jsonl/.ndjson, .arrow/.feather/.ipc.")
    p.add_argument("reference", type=Path, help="reference data (e.g. the validation set)")
    p.add_argument("current", type=Path, help="current data to check against the reference")
    p.add_argument("--out", type=Path, default=Path("aiwarden-report"),
                   help="output directory (default: ./aiwarden-report)")
    p.add_argument("--target", help="target (label) column")
    p.add_argument("--prediction", help="prediction column")
    p.add_argument("--scores", type=_comma_list, help="score columns, comma separated")
    p.add_argument("--id", help="row identifier column")
    p.add_argument("--timestamp", help="timestamp column")
    p.add_argument("--segments", type=_comma_list, help="segment columns, comma separated")
    p.add_argument("--task", choices=_TASKS, help="model task (default: inferred)")
    p.add_argument("--fail-on", choices=tuple(_FAIL_ON), help="exit 1 when the verdict is "
                   "at least this bad (warning: warning or critical; error: critical); the "
                   "report is written either way")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Build and write the report; print a short summary. Returns the exit code."""
    from aiwarden.report.build import report_files, write_report

    out = out or sys.stdout
    err = err or sys.stderr
    hints = {k: getattr(args, k, None) for k in ("target", "prediction", "scores", "id",
                                                 "timestamp", "segments", "task")}
    from aiwarden.commands._progress import Progress

    bar = Progress("report", 4, unit="steps", stream=err)

    def step(what: str) -> None:
        bar.label = f"report: {what}"
        bar.update(bar.done + 1, force=True)

    try:
        with bar:
            report = report_files(args.reference, args.current, on_step=step, **hints)
            step("writing")
            json_path, html_path = write_report(report, args.out)
    except AiwardenError as exc:
        err.write(f"aiwarden report: error: {exc}\n")
        return 2
    except OSError as exc:
        name = exc.filename if exc.filename is not None else args.out
        err.write(f"aiwarden report: error: cannot write {str(name)!r}: "
                  f"{exc.strerror or exc}\n")
        return 2
    _summary(out, report, json_path, html_path)
    fail_on = getattr(args, "fail_on", None)
    if fail_on and report["verdict"]["status"] in _FAIL_ON[fail_on]:
        err.write(f"aiwarden report: verdict {report['verdict']['status']} "
                  f"(--fail-on {fail_on})\n")
        return 1
    return 0


def _summary(out: TextIO, report: Mapping[str, Any], json_path: Path, html_path: Path) -> None:
    v = report["verdict"]
    out.write(f"aiwarden report: {v['status'].upper()}\n")
    for side, d in report["datasets"].items():
        out.write(f"  {side:<9} {d['name']}: {d['rows']:,} rows, {d['columns']} columns\n")
    levels = {c["column"]: c for c in report["drift"]["columns"]}
    drifted = [f"{name} ({levels[name]['level']}, severity {levels[name]['severity']:.2f})"
               for name in v["drifted_columns"]]
    out.write(f"  drifted columns: {', '.join(drifted) if drifted else 'none'}\n")
    findings = report["quality"]["findings"]
    out.write(f"  data quality: {v['quality_errors']} error(s), {v['quality_warnings']} "
              f"warning(s)\n")
    for f in findings[:_MAX_FINDINGS_PRINTED]:
        rows = f" rows {f['examples']}" if f["examples"] else ""
        out.write(f"    [{f['severity']}] {f['check']}: {f['message']}{rows}\n")
    if len(findings) > _MAX_FINDINGS_PRINTED:
        out.write(f"    ... and {len(findings) - _MAX_FINDINGS_PRINTED} more in the report\n")
    out.write(f"  wrote {json_path}\n  wrote {html_path}\n")
