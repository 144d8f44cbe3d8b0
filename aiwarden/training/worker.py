"""``python -m aiwarden.training.worker --entry pkg.mod:fn RUN_DIR``: one run, one process.

The process the executor starts: it imports the user's function (never the server), calls it
with the run's context and writes ``result.json``, success or failure, so the executor always
reads *why* a run ended. A crash the function cannot report (killed, out of memory at the C
level) leaves no result, and the executor says that instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiwarden.training.contract import CONTEXT_FILE, RESULT_FILE, TrainingContext, TrainingResult


def _load(entry: str) -> Any:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _as_result(value: Any, run_dir: Path) -> TrainingResult:
    if isinstance(value, TrainingResult):
        result = value
    elif isinstance(value, dict):
        result = TrainingResult.from_dict(value)
    else:
        raise ValueError(f"the training function returned {type(value).__name__}, not a "
                         "TrainingResult (or a dict with 'artifact')")
    path = Path(result.artifact)
    path = path if path.is_absolute() else run_dir / path
    if not path.is_file():
        raise ValueError(f"the artifact {result.artifact!r} the function returned does not "
                         "exist")
    return TrainingResult(**(asdict(result) | {"artifact": str(path)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiwarden.training.worker")
    parser.add_argument("--entry", required=True)
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = run_dir / RESULT_FILE
    try:
        ctx = TrainingContext.from_file(run_dir / CONTEXT_FILE)
        sys.path.insert(0, str(Path.cwd()))
        result = _as_result(_load(args.entry)(ctx), run_dir)
        out.write_text(json.dumps({"ok": True, "result": result.to_dict()}))
        return 0
    except MemoryError as exc:
        out.write_text(json.dumps({"ok": False, "kind": "memory",
                                   "error": f"MemoryError: {exc}"}))
        return 3
    except BaseException as exc:  # the function's failure, whatever it is, is the run's reason
        out.write_text(json.dumps({"ok": False, "kind": "error",
                                   "error": f"{type(exc).__name__}: {exc}"[:2000],
                                   "traceback": traceback.format_exc()[-8000:]}))
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
