"""``aiwarden quarantine``: list, show, replay, release and drop quarantined rows.

``replay`` and ``release`` exit 1 when some rows stay quarantined (still bad, or not
replayable as stored), so a script can tell "done" from "look again".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiwarden.commands._common import (
    Exit,
    add_client_options,
    add_output_options,
    call,
    emit,
    fail,
    print_fields,
)

__all__ = ["register"]

_MAX_IDS = 1000  # per request (aiwarden.monitoring.quarantine.MAX_IDS)


def register(sub: Any) -> None:
    p = sub.add_parser("quarantine", help="rows ingest refused: list, show, replay corrected, "
                       "release as they are, or drop")
    qs = p.add_subparsers(dest="quarantine_command", required=True)
    ls = qs.add_parser("list", help="quarantined rows, newest first, with field and reason")
    ls.add_argument("model")
    ls.add_argument("--field", help="only rows refused for this field, e.g. features.amount")
    ls.add_argument("--prediction-id")
    ls.add_argument("--limit", type=int, default=100)
    add_client_options(ls)
    add_output_options(ls)
    ls.set_defaults(func=_list)
    sh = qs.add_parser("show", help="one row: field, reason and the row as sent")
    sh.add_argument("model")
    sh.add_argument("id", type=int)
    add_client_options(sh)
    add_output_options(sh)
    sh.set_defaults(func=_show)
    for action, what in (("replay", "send rows through ingest again, corrected or as stored"),
                         ("release", "accept rows as they are, bad values read as missing"),
                         ("drop", "delete rows for good (their counts stay)")):
        a = qs.add_parser(action, help=what)
        a.add_argument("model")
        a.add_argument("ids", type=int, nargs="*", metavar="ID")
        a.add_argument("--all", action="store_true", help="every quarantined row of the model "
                       "(with --field: every row refused for that field)")
        a.add_argument("--field", help="with --all: only rows refused for this field")
        if action == "replay":
            a.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                           help="set a value first, e.g. features.amount=12.5 (JSON values: "
                           "12.5, null, \"text\"; anything else is text); repeatable")
            a.add_argument("--row", help="a JSON file with the corrected row (one ID only)")
        add_client_options(a)
        add_output_options(a)
        a.set_defaults(func=_act, action=action)


def _client(args: argparse.Namespace) -> Any:
    from aiwarden.sdk import Client

    return Client(args.url, api_key=args.api_key)


def _path(model: str, *rest: str) -> str:
    return "/".join([f"/models/{quote(model, safe='')}/quarantine", *rest]).rstrip("/")


def _list(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("field", args.field), ("prediction_id", args.prediction_id),
                                ("limit", args.limit)) if v is not None}
    with _client(args) as c:
        code, rows = call("quarantine list", lambda: c._json("GET", _path(args.model),
                                                             params=params))
    return code or emit(args, rows, _list_table)


def _list_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'id':>8}  {'received (UTC)':<20}{'prediction id':<22}{'field':<22}reason")
    for r in rows:
        print(f"{r['id']:>8}  {(r['received_at'] or '-')[:19]:<20}"
              f"{(r['prediction_id'] or '-')[:21]:<22}{(r['field'] or '-')[:21]:<22}"
              f"{r['reason']}")


def _show(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, row = call("quarantine show", lambda: c._json(
            "GET", _path(args.model, "rows", str(args.id))))
    return code or emit(args, row, _show_text)


def _show_text(row: dict[str, Any]) -> None:
    print_fields({k: v for k, v in row.items() if k not in ("payload", "row")})
    print("row:")
    print(json.dumps(row["row"], indent=2, default=str))


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set expects PATH=VALUE, e.g. features.amount=12.5; "
                             f"got {item!r}")
        out[path] = _value(value)
    return out


def _all_ids(c: Any, model: str, field: str | None) -> list[int]:
    ids: list[int] = []
    params: dict[str, Any] = {"limit": 10_000} | ({"field": field} if field else {})
    while True:
        page = c._json("GET", _path(model), params=params)
        ids += [r["id"] for r in page]
        if len(page) < params["limit"]:
            return ids
        params["before"] = page[-1]["id"]


def _act(args: argparse.Namespace) -> int:
    from aiwarden.commands._progress import Progress

    command = f"quarantine {args.action}"
    if bool(args.ids) == bool(args.all):
        return fail(command, "name the rows: IDs, or --all")
    if args.field and not args.all:
        return fail(command, "--field goes with --all")
    body: dict[str, Any] = {}
    if args.action == "replay":
        try:
            if args.set:
                body["set"] = _sets(args.set)
            if args.row:
                if len(args.ids) != 1:
                    return fail(command, "--row corrects one row: give exactly one ID")
                body["rows"] = [{"id": args.ids[0],
                                 "row": json.loads(Path(args.row).read_text())}]
        except (OSError, ValueError) as exc:
            return fail(command, str(exc))

    def go(c: Any) -> dict[str, Any]:
        ids = _all_ids(c, args.model, args.field) if args.all else list(args.ids)
        total: dict[str, Any] = {}
        with Progress(f"{args.action} {args.model}", len(ids), unit="rows") as bar:
            for start in range(0, len(ids), _MAX_IDS):
                part = c._json("POST", _path(args.model, args.action),
                               json=body | {"ids": ids[start:start + _MAX_IDS]})
                for k, v in part.items():
                    total[k] = total.get(k, 0 if isinstance(v, int) else []) + v
                bar.update(min(start + _MAX_IDS, len(ids)))
        total.setdefault("requested", len(ids))
        return total

    with _client(args) as c:
        code, out = call(command, lambda: go(c))
    if code:
        return code
    emit(args, out, _act_text)
    stuck = out.get("still_quarantined", []) + out.get("refused", [])
    return Exit.FOUND if stuck else Exit.OK


def _act_text(out: dict[str, Any]) -> None:
    if "dropped" in out:
        print(f"dropped {len(out['dropped'])} row(s)" + (
            f"; {len(out['gone'])} not in quarantine: {_ids(out['gone'])}" if out["gone"]
            else ""))
        return
    print(f"{len(out['replayed'])} of {out['requested']} row(s) left quarantine: "
          f"{out['accepted']} accepted, {out['duplicates']} duplicate(s)")
    for s in out["still_quarantined"]:
        now = f" (now {s['new_id']})" if s.get("new_id") else ""
        print(f"  still quarantined: {s['id']}{now} ({s['prediction_id'] or '-'}): "
              f"{s['field']}: {s['reason']}")
    for r in out["refused"]:
        print(f"  not replayed: {r['id']}: {r['reason']}")
    if out["gone"]:
        print(f"  not in quarantine (replayed, released or dropped already): "
              f"{_ids(out['gone'])}")


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:20])) + (f" and {len(ids) - 20} more" if len(ids) > 20
                                            else "")
