"""``aiwarden apply`` (rule files) and ``aiwarden alerts`` (a model's alert states)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiwarden.commands._common import add_client_options, fail

__all__ = ["register"]


def register(sub: Any) -> None:
    ap = sub.add_parser("apply", help="make the server's alert rules match a YAML rule file",
                        description="Validated, diffed and idempotent: prints what it "
                                    "creates, updates and deletes.")
    ap.add_argument("file")
    ap.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    add_client_options(ap)
    ap.set_defaults(func=_apply)
    al = sub.add_parser("alerts", help="a model's alerts: state, value, since when")
    al.add_argument("model")
    add_client_options(al)
    al.set_defaults(func=_alerts)
    rc = sub.add_parser("rca", help="root-cause analysis of a model's recent window")
    rc.add_argument("model")
    rc.add_argument("--start", help="window start: ISO, epoch, or --start=-1h (default: 1 h "
                    "before end)")
    rc.add_argument("--end", help="window end (default: now)")
    rc.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    add_client_options(rc)
    rc.set_defaults(func=_rca)


def _http(args: argparse.Namespace) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.url.rstrip("/") + "/api/v1", headers=headers, timeout=60)


def _call(command: str, fn: Any) -> tuple[int, Any]:
    import httpx

    try:
        r = fn()
    except httpx.HTTPError as exc:
        return fail(command, f"cannot reach the server: {exc}"), None
    if r.status_code >= 400:
        try:
            detail = r.json()["detail"]
            message = detail["message"] if isinstance(detail, dict) else str(detail)
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        return fail(command, f"HTTP {r.status_code}: {message}"), None
    return 0, r.json()


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
    verb = "would" if args.dry_run else "did"
    for kind, mark in (("created", "+"), ("updated", "~"), ("deleted", "-")):
        for name in plan[kind]:
            print(f"{mark} {name}")
    changes = sum(len(plan[k]) for k in ("created", "updated", "deleted"))
    print(f"{args.file}: {verb} change {changes} rule(s); {len(plan['unchanged'])} unchanged")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from aiwarden.monitoring.windows import to_iso

    with _http(args) as c:
        code, alerts = _call("alerts", lambda: c.get(f"/models/{args.model}/alerts",
                                                    params={"events": 0}))
    if code:
        return code
    print(f"{'rule':<24}{'column':<18}{'state':<12}{'severity':<10}{'value':>10}  since")
    for a in alerts:
        st, labels = a["state"], a["labels"]
        value = "-" if st.get("value") is None else f"{st['value']:.4g}"
        since = to_iso(st["since"])[:19] if st.get("since") is not None else "-"
        print(f"{labels['rule'][:23]:<24}{labels.get('column', '-')[:17]:<18}"
              f"{st['phase']:<12}{st.get('severity') or '-':<10}{value:>10}  {since}")
    return 0


def _rca(args: argparse.Namespace) -> int:
    import json

    params = {k: v for k, v in (("start", args.start), ("end", args.end)) if v}
    params["format"] = "json" if args.json else "markdown"
    with _http(args) as c:
        r = c.get(f"/models/{args.model}/rca", params=params)
    if r.status_code >= 400:
        return _call("rca", lambda: r)[0]
    print(json.dumps(r.json(), indent=2) if args.json else r.text, end="")
    return 0
