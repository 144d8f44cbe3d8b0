"""``aiwarden models``: list, show and create models, upload references (through the API)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from aiwarden.commands._common import add_client_options, add_output_options, call, emit, fail

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list, show or create models; upload references")
    ms = p.add_subparsers(dest="models_command", required=True)
    ls = ms.add_parser("list", help="list models")
    add_client_options(ls)
    add_output_options(ls)
    ls.set_defaults(func=_list)
    sh = ms.add_parser("show", help="a model with its versions and counts (JSON; -o table)")
    sh.add_argument("name")
    add_client_options(sh)
    add_output_options(sh, default="json")
    sh.set_defaults(func=_show)
    cr = ms.add_parser("create", help="register a model")
    cr.add_argument("name")
    cr.add_argument("--task", choices=("binary", "multiclass", "regression",
                                       "text_generation", "none"))
    cr.add_argument("--description")
    cr.add_argument("--segments", help="segment columns of the model's references, comma "
                    "separated (docs/server.md, Segments)")
    add_client_options(cr)
    cr.set_defaults(func=_create)
    rf = ms.add_parser("reference", help="upload a version's reference data file")
    rf.add_argument("name")
    rf.add_argument("version")
    rf.add_argument("file", help=".parquet, .csv, .json or .arrow")
    for hint in ("target", "prediction", "id", "timestamp", "task"):
        rf.add_argument(f"--{hint}")
    rf.add_argument("--scores", help="score columns, comma separated")
    rf.add_argument("--segments", help="segment columns, comma separated")
    add_client_options(rf)
    rf.set_defaults(func=_reference)


def _client(args: argparse.Namespace) -> Any:
    from aiwarden.sdk import Client

    return Client(args.url, api_key=args.api_key)


_call = call


def _list(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, models = _call("models list", c.list_models)
    return code or emit(args, models, _list_table)


def _list_table(models: list[dict[str, Any]]) -> None:
    print(f"{'name':<32}{'task':<12}description")
    for m in models:
        print(f"{m['name'][:31]:<32}{(m.get('task') or '-'):<12}{m.get('description') or ''}")


def _show(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, model = _call("models show", lambda: c.get_model(args.name))
    return code or emit(args, model, _show_text)


def _show_text(m: dict[str, Any]) -> None:
    about = f": {m['description']}" if m.get("description") else ""
    print(f"{m['name']} ({m.get('task') or 'no task'}){about}")
    for k, v in m.items():
        if k not in ("name", "task", "description", "versions"):
            print(f"  {k}: {json.dumps(v) if isinstance(v, dict | list) else v}")
    versions = m.get("versions") or []
    print(f"  versions: {len(versions)}")
    for v in versions:
        print(f"    {json.dumps(v)}")


def _create(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, model = _call("models create", lambda: c.create_model(
            args.name, task=args.task, description=args.description,
            segments=_split(args.segments)))
    if not code:
        print(f"created model {model['name']}")
    return code


def _split(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _reference(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, model = _call("models reference", lambda: c.get_model(args.name))
        if code:
            return code
        if model.get("task") == "text_generation":  # reference LLM events (docs/llm.md)
            return _llm_reference(args, c)
        code, out = _call("models reference", lambda: c.upload_reference(
            args.name, args.version, args.file, target=args.target, prediction=args.prediction,
            scores=_split(args.scores), id=args.id, timestamp=args.timestamp,
            segments=_split(args.segments), task=args.task))
    if not code:
        print(f"reference for {args.name} {args.version}: {out['rows']} rows, "
              f"{out['columns']} columns, fingerprint {out['fingerprint']}")
    return code


def _llm_reference(args: argparse.Namespace, c: Any) -> int:
    from aiwarden.tabular_io import read_rows

    rows = read_rows(args.file)
    if rows is None:
        return fail("models reference", f"{args.file}: a text_generation model's reference is "
                    "LLM events as JSON or JSON Lines rows (docs/llm.md)", 2)
    code, out = _call("models reference", lambda: c.upload_llm_reference(
        args.name, args.version, rows, tags=_split(args.segments)))
    if not code:
        print(f"reference for {args.name} {args.version}: {out['rows']} events, "
              f"{out['columns']} columns, fingerprint {out['fingerprint']}")
        for col, why in (out.get("absent_columns") or {}).items():
            print(f"  {col} left out: {why}")
    return code
