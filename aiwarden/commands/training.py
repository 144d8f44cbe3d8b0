"""``aiwarden retrain`` and ``aiwarden runs``: start, follow, inspect and cancel training runs.

``retrain --wait`` follows the run to its end and says how it ended through its exit code, so
a CI job can gate on it: 0 succeeded, 1 blocked by a gate (the gate and its reason are
printed), 6 failed or cancelled, or still running when ``--timeout`` ran out.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import quote

from aiwarden.commands._common import Exit, add_client_options, add_output_options, emit
from aiwarden.commands.alerts import _call, _http

__all__ = ["register"]

#: how a run ended, as ``--wait`` exits (docs/cli.md)
_ENDED = {"succeeded": Exit.OK, "blocked": Exit.FOUND, "failed": Exit.RUN_FAILED,
          "cancelled": Exit.RUN_FAILED}


def register(sub: Any) -> None:
    rt = sub.add_parser("retrain", help="queue a training run of a model's pipeline now",
                        description="Queues a run by hand (no cooldown; one run per model at "
                        "a time: a run already queued by hand is returned). With --wait: "
                        "exit 0 succeeded, 1 blocked by a gate, 6 failed or cancelled.")
    rt.add_argument("model")
    rt.add_argument("--reason", help="why (kept on the run and the model's timeline)")
    rt.add_argument("--wait", action="store_true", help="follow the run until it ends, then "
                    "print its gates and exit with how it ended")
    rt.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="with --wait: give up after this long (exit 6; the run goes on)")
    rt.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                    help=argparse.SUPPRESS)
    add_client_options(rt)
    add_output_options(rt)
    rt.set_defaults(func=_retrain)
    p = sub.add_parser("runs", help="training runs: list, show, cancel, log")
    ps = p.add_subparsers(dest="runs_command", required=True)
    ls = ps.add_parser("list", help="a model's training runs, newest first")
    ls.add_argument("model")
    ls.add_argument("--limit", type=int, default=50)
    add_client_options(ls)
    add_output_options(ls)
    ls.set_defaults(func=_list)
    sh = ps.add_parser("show", help="a run: state, trigger, duration, gates with their "
                       "reasons, lineage, version and promotion")
    sh.add_argument("id", type=int)
    add_client_options(sh)
    add_output_options(sh)
    sh.set_defaults(func=_show)
    cn = ps.add_parser("cancel", help="cancel a run (a running one stops within a heartbeat)")
    cn.add_argument("id", type=int)
    add_client_options(cn)
    add_output_options(cn)
    cn.set_defaults(func=_cancel)
    lg = ps.add_parser("log", help="what the training process printed (its last 200 kB)")
    lg.add_argument("id", type=int)
    add_client_options(lg)
    lg.set_defaults(func=_log)


def _retrain(args: argparse.Namespace) -> int:
    body = {"reason": args.reason} if args.reason else None
    with _http(args) as c:
        code, run = _call("retrain", lambda: c.post(
            f"/models/{quote(args.model, safe='')}/runs", json=body))
        if code:
            return code
        if not args.wait:
            return emit(args, run, lambda r: print(
                f"run #{r['id']} of {r['model']} is {r['state']} "
                f"(follow it: aiwarden runs show {r['id']})"))
        if args.output != "json":
            print(f"run #{run['id']} of {run['model']} {run['state']}; waiting for it to end",
                  file=sys.stderr)
        try:
            code, run = _wait(c, run, args.timeout, args.poll)
        except KeyboardInterrupt:  # the run is the server's: stopping to wait leaves it be
            print(f"\naiwarden retrain: stopped waiting; run #{run['id']} goes on "
                  f"(aiwarden runs show {run['id']})", file=sys.stderr)
            return 130
        if not code and args.output != "json":
            run = _with_lineage(c, run)
    if code:
        return code
    emit(args, run, _show_text)
    if run["state"] in ("queued", "running"):
        print(f"aiwarden retrain: run #{run['id']} is still {run['state']} after "
              f"{args.timeout:g} s; it goes on (aiwarden runs cancel {run['id']} stops it)",
              file=sys.stderr)
    return int(_ENDED.get(run["state"], Exit.RUN_FAILED))


def _wait(c: Any, run: dict[str, Any], timeout: float | None, poll: float
          ) -> tuple[int, dict[str, Any]]:
    """(0, the run once it ended or ``timeout`` ran out), or a failed request's exit code."""
    deadline = None if timeout is None else time.monotonic() + timeout
    path = f"/runs/{run['id']}"
    while run["state"] in ("queued", "running"):
        if deadline is not None and time.monotonic() >= deadline:
            break
        time.sleep(max(0.05, poll))
        code, got = _call("retrain", lambda: c.get(path))
        if code:
            return code, run
        run = got
    return 0, run


def _list(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, rows = _call("runs list", lambda: c.get(
            f"/models/{quote(args.model, safe='')}/runs", params={"limit": args.limit}))
    return code or emit(args, rows, _list_table)


def _when(t: float | None) -> str:
    from aiwarden.monitoring.windows import to_iso

    return "-" if t is None else to_iso(t)[:19]


def _duration(run: dict[str, Any]) -> str:
    if run.get("seconds") is not None:
        return f"{run['seconds']:.1f}s"
    if run.get("started_at") is not None:
        return f"{time.time() - run['started_at']:.0f}s so far"
    return "-"


def _list_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'id':>6}  {'state':<11}{'trigger':<10}{'created (UTC)':<21}{'duration':<14}"
          f"{'version':<9}reason")
    for r in rows:
        print(f"{r['id']:>6}  {r['state']:<11}{r['trigger']:<10}{_when(r['created_at']):<21}"
              f"{_duration(r):<14}{r.get('version') or '-':<9}{_outcome(r)}".rstrip())


def _outcome(run: dict[str, Any]) -> str:
    """The run's reason, and what became of its canary since (the reason was written when
    the canary started: "promoted when it holds")."""
    reason = run.get("reason") or ""
    promo = (run.get("result") or {}).get("promotion") or {}
    if promo.get("state") in ("promoted", "superseded", "rolled_back"):
        return f"{reason}; then {promo['state'].replace('_', ' ')}"
    return reason


def _show(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, run = _call("runs show", lambda: c.get(f"/runs/{args.id}"))
        if code:
            return code
        if args.output != "json":
            run = _with_lineage(c, run)
    return emit(args, run, _show_text)


def _with_lineage(c: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The run and the lineage of the version it registered (the code that made it lives
    there); the run alone when it registered none or the version cannot be read."""
    if not run.get("version"):
        return run
    r = c.get(f"/registry/models/{quote(run['model'], safe='')}/versions/{run['version']}")
    if r.status_code != 200:
        return run
    return run | {"_lineage": (r.json().get("metadata") or {}).get("lineage")}


def _show_text(run: dict[str, Any]) -> None:
    detail = run.get("trigger_detail") or {}
    why = detail.get("reason") or detail.get("why") or ""  # manual: reason; others: why
    print(f"run #{run['id']} of {run['model']}: {run['state']}")
    by = f", by {detail['by']}" if detail.get("by") else ""
    print(f"trigger:   {run['trigger']}{f' ({why})' if why else ''}{by}")
    print(f"created:   {_when(run['created_at'])}  started: {_when(run.get('started_at'))}  "
          f"finished: {_when(run.get('finished_at'))}  duration: {_duration(run)}")
    if run.get("reason"):
        print(f"reason:    {run['reason']}")
    if run.get("cancel_requested") and run["state"] in ("queued", "running"):
        print("cancel:    requested")
    result = run.get("result") or {}
    if result.get("peak_memory_mb") is not None:
        print(f"training:  {result.get('seconds', '-')}s, peak memory "
              f"{result['peak_memory_mb']} MB, exit code {result.get('exit_code', '-')}")
    if run.get("gates"):
        print("gates:")
        for g in run["gates"]:
            print(f"  {'pass' if g['passed'] else 'FAIL'}  {g['gate']:<11}{g['reason']}")
            for p in (g.get("evidence") or {}).get("problems", [])[:10]:  # rows named
                print(f"        row {p.get('row', '-')}, column {p.get('column', '-')}: "
                      f"{p.get('reason') or p.get('value')}")
    steps = result.get("steps") or []
    if steps:
        print("steps:")
        for st in steps:
            print(f"  {_when(st.get('at'))[11:]}  {st.get('text', '')}")
    data = run.get("data") or {}
    if data:
        print("lineage:")
        for k in ("window", "rows", "train_rows", "holdout_rows", "holdout",
                  "quarantined_rows", "sha256", "champion", "reference_version"):
            if data.get(k) is not None:
                print(f"  {k}: {data[k]}")
        if (run.get("_lineage") or {}).get("code"):
            print(f"  code: {run['_lineage']['code']}")
    print(f"version:   {run.get('version') or '-'}")
    promo = result.get("promotion")
    if promo:
        hold = (f" until {_when(promo['hold_until'])}"
                if promo.get("hold_until") and promo.get("state") == "canary" else "")
        print(f"promotion: {promo.get('state')}{hold}")


def _cancel(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, run = _call("runs cancel", lambda: c.post(f"/runs/{args.id}/cancel"))
    return code or emit(args, run, lambda r: print(
        f"run #{r['id']} is {r['state']}"
        f"{' (cancel requested: it stops within a heartbeat)' if r['state'] == 'running' else ''}"))


def _log(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, r = _call("runs log", lambda: c.get(f"/runs/{args.id}/log"), raw=True)
    if not code:
        sys.stdout.write(r.text)
    return code
