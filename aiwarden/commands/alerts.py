"""``aiwarden apply`` (rule files) and ``aiwarden alerts`` (a model's alert states)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiwarden.commands._common import (
    Exit,
    add_client_options,
    add_output_options,
    emit,
    exit_code,
    fail,
)

__all__ = ["register"]


def register(sub: Any) -> None:
    ap = sub.add_parser("apply", help="make the server's alert rules match a YAML rule file",
                        description="Validated, diffed and idempotent: prints what it "
                                    "creates, updates and deletes.")
    ap.add_argument("file")
    ap.add_argument("--dry-run", action="store_true", help="show the plan field by field, "
                    "change nothing; exit 1 when changes are pending, 0 when none")
    add_client_options(ap)
    add_output_options(ap)
    ap.set_defaults(func=_apply)
    al = sub.add_parser("alerts", help="a model's alerts: state, value, since when")
    al.add_argument("model")
    add_client_options(al)
    add_output_options(al)
    al.set_defaults(func=_alerts)
    rc = sub.add_parser("rca", help="root-cause analysis of a model's recent window")
    rc.add_argument("model")
    rc.add_argument("--start", help="window start: ISO, epoch, or --start=-1h (default: 1 h "
                    "before end)")
    rc.add_argument("--end", help="window end (default: now)")
    add_client_options(rc)
    add_output_options(rc)  # table: the markdown report
    rc.set_defaults(func=_rca)


def _http(args: argparse.Namespace) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.url.rstrip("/") + "/api/v1", headers=headers, timeout=60)


def _call(command: str, fn: Any, raw: bool = False) -> tuple[int, Any]:
    import httpx

    from aiwarden.sdk import ApiError

    try:
        r = fn()
    except httpx.HTTPError as exc:
        return fail(command, f"cannot reach the server: {exc}", Exit.CONNECTION), None
    if r.status_code >= 400:
        err = ApiError.from_response(r)
        return fail(command, f"HTTP {r.status_code}: {err.message[:300]}", exit_code(err)), None
    return 0, r if raw else r.json()


def _apply(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text()
    except OSError as exc:
        return fail("apply", f"cannot read {args.file!r}: {exc.strerror}")
    with _http(args) as c:
        code, plan = _call("apply", lambda: c.post(
            "/rules/apply", params={"dry_run": str(args.dry_run).lower()},
            content=text.encode(), headers={"content-type": "application/yaml"}))
    if code:
        return code
    if args.output == "json":
        emit(args, plan, print)
    else:
        _plan_text(args, plan)
    pending = bool(plan.get("diff")) or any(plan[k] for k in ("created", "updated",
                                                               "deleted"))
    return Exit.FOUND if args.dry_run and pending else Exit.OK


_MARKS = {"create": "+", "update": "~", "delete": "-"}


def _plan_text(args: argparse.Namespace, plan: dict[str, Any]) -> None:
    """One line per thing changed, then its fields: ``current -> desired``."""
    import json

    def shown(v: Any) -> str:
        return "(absent)" if v is None else json.dumps(v, default=str)

    for c in plan.get("diff", []):
        what = "" if c["kind"] == "rule" else f"{c['kind'].replace('_', ' ')} "
        print(f"{_MARKS[c['action']]} {what}{c['name'] if c['kind'] != c['name'] else ''}"
              .rstrip())
        for f in c["fields"]:
            if c["action"] == "create":
                print(f"    {f['field']}: {shown(f['desired'])}")
            elif c["action"] == "delete":
                print(f"    {f['field']}: {shown(f['current'])}")
            else:
                print(f"    {f['field']}: {shown(f['current'])} -> {shown(f['desired'])}")
    verb = "would" if args.dry_run else "did"
    changes = sum(len(plan[k]) for k in ("created", "updated", "deleted"))
    other = [c for c in plan.get("diff", []) if c["kind"] != "rule"]
    also = f"; {len(other)} other setting(s)" if other else ""
    print(f"{args.file}: {verb} change {changes} rule(s){also}; {len(plan['unchanged'])} "
          "unchanged")


def _alerts(args: argparse.Namespace) -> int:
    with _http(args) as c:
        code, alerts = _call("alerts", lambda: c.get(f"/models/{args.model}/alerts",
                                                    params={"events": 0}))
    return code or emit(args, alerts, _alerts_table)


def _alerts_table(alerts: list[dict[str, Any]]) -> None:
    from aiwarden.monitoring.windows import to_iso

    # A segment_by rule has one instance per segment and a nodata/error state says why:
    # without both, two lines of one rule look alike and "nodata" explains nothing. Each
    # version has its own instances (the version column), and a relative rule's value is
    # a change against its baseline, not the metric (marked Δ ... vs reference/previous).
    print(f"{'rule':<24}{'column/segment':<18}{'version':<10}{'state':<12}{'severity':<10}"
          f"{'value':>24}  since                why")
    for a in alerts:
        st, labels = a["state"], a["labels"]
        value = _value(st.get("value"), (a.get("rule") or {}).get("relative_to"))
        since = to_iso(st["since"])[:19] if st.get("since") is not None else "-"
        where = labels.get("column") or labels.get("segment") or "-"
        version = str(labels.get("version") or "-")
        why = st.get("error") or st.get("reason") or ""
        print(f"{labels['rule'][:23]:<24}{where[:17]:<18}{version[:9]:<10}{st['phase']:<12}"
              f"{st.get('severity') or '-':<10}{value:>24}  {since:<19}  {why}".rstrip())


def _value(value: float | None, relative_to: str | None) -> str:
    """The compared number; a relative rule's is the change ``(v - b) / |b|`` against the
    reference's (or previous window's) value, which alone would read as the metric."""
    if value is None:
        return "-"
    if relative_to:
        return f"Δ {value:+.4g} vs {relative_to}"
    return f"{value:.4g}"


def _rca(args: argparse.Namespace) -> int:
    import json

    params = {k: v for k, v in (("start", args.start), ("end", args.end)) if v}
    as_json = args.output == "json"
    params["format"] = "json" if as_json else "markdown"
    with _http(args) as c:
        code, r = _call("rca", lambda: c.get(f"/models/{args.model}/rca", params=params),
                        raw=True)
    if code:
        return code
    print(json.dumps(r.json(), indent=2) if as_json else r.text, end="")
    return 0
