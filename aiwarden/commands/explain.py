"""``aiwarden explain``: why logged predictions (or rows in a file) got their output, and
``aiwarden importance``: which features drive a window, against the reference.

Exit codes: ``explain`` 3 when an id is not the model's (the others are still shown);
``importance`` 1 when the ranking moved past the attribution-drift alarm.

Both ask the server (the model, its reference and the logged rows live there); the table
output shows each row's largest contributions, ``--format json`` the whole answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiwarden.commands._common import (
    Exit,
    add_client_options,
    add_output_options,
    call,
    emit,
    fail,
)

__all__ = ["register"]

_METHODS = ("auto", "tree", "linear", "permutation", "kernel", "lime")


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="why logged predictions (by id) or rows in a file got "
                       "their output: SHAP or LIME contributions per feature")
    p.add_argument("model")
    p.add_argument("ids", nargs="*", metavar="PREDICTION_ID")
    p.add_argument("--rows", type=Path, help="a CSV, Parquet or JSON file of feature rows "
                   "to explain instead of logged ids")
    p.add_argument("--version", help="explain with this version (default: the one that "
                   "served each id; for --rows the serving one)")
    p.add_argument("--method", choices=_METHODS, default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=5, help="contributions shown per row (table)")
    add_client_options(p)
    add_output_options(p)
    p.set_defaults(func=_explain)

    q = sub.add_parser("importance", help="which features drive a window (mean |SHAP| with "
                       "intervals), the reference's ranking and their attribution drift")
    q.add_argument("model")
    q.add_argument("--start", default="-1d")
    q.add_argument("--end", default="now")
    q.add_argument("--version")
    q.add_argument("--sample-size", type=int, default=None,
                   help="rows of the window explained (default 500, fewer for a black box)")
    q.add_argument("--where", action="append", default=[], metavar="CONDITION",
                   help="a slice to compare with the rest, e.g. 'amount<10'; repeatable")
    q.add_argument("--method", choices=_METHODS, default="auto")
    q.add_argument("--seed", type=int, default=0)
    add_client_options(q)
    add_output_options(q)
    q.set_defaults(func=_importance)


def _client(args: argparse.Namespace) -> Any:
    from aiwarden.sdk import Client

    return Client(args.url, api_key=args.api_key, timeout=300)


def _explain(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.rows):
        return fail("explain", "give prediction ids or --rows FILE (one of them).")
    rows = None
    if args.rows is not None:
        from aiwarden.tabular_io import read_file

        code, table = call("explain", lambda: read_file(args.rows))
        if code:
            return code
        rows = table.to_pylist()
    with _client(args) as c:
        code, answer = call("explain", lambda: c.explain(
            args.model, args.ids or None, rows=rows, version=args.version,
            method=args.method, seed=args.seed))
    if code:
        return code
    emit(args, answer, lambda a: _explain_table(a, args.top))
    return Exit.NOT_FOUND if answer["missing"] else Exit.OK


def _explain_table(answer: dict[str, Any], top: int) -> None:
    for e in answer["explanations"]:
        who = e["prediction_id"] if e["prediction_id"] is not None else f"row {e['row']}"
        cls = "" if e["explained_class"] is None else f" of class {e['explained_class']}"
        print(f"{who} (version {e['version']}, {e['method']}): {e['output_space']}{cls} "
              f"{_num(e['output'])} = base {_num(e['base_value'])} + contributions"
              f"{'' if abs(e['residual'] or 0) < 1e-6 else ' + residual ' + _num(e['residual'])}")
        for c in e["contributions"][:top]:
            rule = f"  [{c['rule']}]" if c.get("rule") else ""
            value = f"{c['value']:.6g}" if isinstance(c["value"], float) else c["value"]
            print(f"  {c['contribution']:+10.4f}  {c['feature']} = {value}{rule}")
        rest = e["contributions"][top:]
        if rest:
            print(f"  {sum(c['contribution'] or 0 for c in rest):+10.4f}  "
                  f"({len(rest)} other feature(s))")
        logged = e.get("logged") or {}
        if logged.get("agrees") is False:
            print(f"  ! logged {_num(logged['value'])}, the registered model gives "
                  f"{_num(logged['model'])}: this explains the registered model, not what "
                  f"answered")
    for pid in answer["missing"]:
        print(f"{pid}: not a prediction id of this model")


def _importance(args: argparse.Namespace) -> int:
    with _client(args) as c:
        code, answer = call("importance", lambda: c.importance(
            args.model, args.start, args.end, version=args.version,
            sample_size=args.sample_size, where=args.where or None, method=args.method,
            seed=args.seed))
    if code:
        return code
    emit(args, answer, _importance_table)
    return Exit.FOUND if answer["drift"]["alarm"] else Exit.OK


def _importance_table(a: dict[str, Any]) -> None:
    imp, ref, drift = a["importance"], a["reference"], a["drift"]
    ref_rank = {f["feature"]: f["rank"] for f in ref["features"]}
    print(f"{a['model']} version {a['version']}: {imp['n_explained']} of {a['rows']} rows "
          f"explained ({imp['method']}, {imp['output_space']}); "
          f"{round(imp['level'] * 100)} % intervals")
    alarm = " ALARM" if drift["alarm"] else ""
    print(f"ranking vs reference: nDCG {drift['ndcg']:.3f} "
          f"(alarm below {drift['threshold']}){alarm}")
    shifted = {s["feature"] for s in drift["features"] if s["shifted"]}
    print(f"{'rank':>4}  {'feature':<24}{'importance':>12}  {'interval':<22}{'ref rank':>8}")
    for f in imp["features"]:
        mark = "  shifted" if f["feature"] in shifted else ""
        interval = f"[{_num(f['lower'])}, {_num(f['upper'])}]"
        print(f"{f['rank']:>4}  {f['feature'][:23]:<24}{_num(f['importance']):>12}  "
              f"{interval:<22}{ref_rank.get(f['feature'], '-'):>8}{mark}")
    s = a.get("slice")
    if s:
        print(f"slice {s['description']}: {s['inside']['n_rows']} rows; largest differences "
              "from the rest:")
        for d in s["difference"][:5]:
            print(f"  {d['difference']:+10.4f}  {d['feature']}")


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}"
