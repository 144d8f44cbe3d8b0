"""``aiwarden incidents``: list, show and act on incidents from a terminal."""

from __future__ import annotations

import argparse
from typing import Any

from aiwarden.commands._common import add_client_options, add_output_options, emit
from aiwarden.commands.alerts import _call, _http

__all__ = ["register"]

_ACTIONS = ("ack", "mitigate", "resolve", "decline")
_API = {"ack": "acknowledge", "mitigate": "mitigate", "resolve": "resolve",
        "decline": "decline"}


def register(sub: Any) -> None:
    p = sub.add_parser("incidents", help="list, show, acknowledge or resolve incidents")
    ps = p.add_subparsers(dest="incidents_command", required=True)
    ls = ps.add_parser("list", help="incidents, newest first")
    ls.add_argument("--model")
    ls.add_argument("--status", choices=("triggered", "acknowledged", "mitigated", "resolved",
                                         "declined"))
    add_client_options(ls)
    add_output_options(ls)
    ls.set_defaults(func=_list)
    sh = ps.add_parser("show", help="an incident with its timeline and RCA")
    sh.add_argument("id", type=int)
    add_client_options(sh)
    add_output_options(sh)
    sh.set_defaults(func=_show)
    for action in _ACTIONS:
        a = ps.add_parser(action, help=f"{_API[action]} an incident")
        a.add_argument("id", type=int)
        a.add_argument("--note", help="a comment to add with it")
        a.add_argument("--as", dest="actor", help="who you are (open servers only)")
        add_client_options(a)
        a.set_defaults(func=_act, action=action)


def _list(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("model", args.model), ("status", args.status)) if v}
    with _http(args) as c:
        code, rows = _call("incidents list", lambda: c.get("/incidents", params=params))
    return code or emit(args, rows, _list_table)


def _list_table(rows: list[dict[str, Any]]) -> None:
    from aiwarden.monitoring.windows import to_iso

    print(f"{'id':>5}  {'model':<22}{'status':<14}{'severity':<10}{'opened':<21}title")
    for i in rows:
        print(f"{i['id']:>5}  {i['model'][:21]:<22}{i['status']:<14}"
              f"{i.get('severity') or '-':<10}{to_iso(i['created_at'])[:19]:<21}{i['title']}")


def _show(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, inc = _call("incidents show", lambda: c.get(f"/incidents/{args.id}"))
    return code or emit(args, inc, _show_text)


def _show_text(inc: dict[str, Any]) -> None:
    """The timeline in the sentences the postmortem uses (a fired alert names its rule and
    value), then the latest root-cause analysis in full: each RCA inlined where it
    happened buried the timeline under pages of tables."""
    from aiwarden.incidents.lifecycle import TimelineEntry
    from aiwarden.incidents.postmortem import describe
    from aiwarden.monitoring.windows import to_iso

    print(f"#{inc['id']} {inc['title']}\n{inc['model']} · {inc['status']} · "
          f"{inc.get('severity') or '-'} · assignee {inc.get('assignee') or '-'}")
    for rb in inc.get("runbooks", []):
        print(f"runbook: {rb}")
    print("\ntimeline:")
    analyses = []
    for e in inc["timeline"]:
        entry = TimelineEntry(e["at"], e["actor"], e["kind"], e.get("detail") or {})
        print(f"  {to_iso(entry.at)[:19]}  {entry.actor:<12} {describe(entry)}")
        if entry.kind == "action" and "markdown" in entry.detail:
            analyses.append(entry)
    if analyses:
        more = (f" (the latest of {len(analyses)}; `-o json` has every one)"
                if len(analyses) > 1 else "")
        print(f"\n{analyses[-1].detail.get('text', 'analysis')}, "
              f"{to_iso(analyses[-1].at)[:19]}{more}:\n\n{analyses[-1].detail['markdown']}")


def _act(args: argparse.Namespace) -> int:
    headers = {"X-Aiwarden-Actor": args.actor} if args.actor else {}
    body = {"note": args.note} if args.note else None
    with _http(args) as c:
        code, inc = _call(f"incidents {args.action}", lambda: c.post(
            f"/incidents/{args.id}/{_API[args.action]}", json=body, headers=headers))
    if not code:
        print(f"#{inc['id']} is {inc['status']}")
    return code
