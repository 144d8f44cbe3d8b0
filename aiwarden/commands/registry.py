"""``aiwarden registry`` (register, list, show, alias, history, previous, download,
import-mlflow), ``aiwarden promote``, ``aiwarden rollback`` and ``aiwarden rollback-policy``:
all through the server's API via the SDK."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from aiwarden.commands._common import (
    add_client_options,
    add_output_options,
    emit,
    exit_code,
    explain,
    fail,
    print_fields,
)

__all__ = ["register"]


def _sub(parent: Any, name: str, help: str, func: Any,
         output: str | None = None) -> argparse.ArgumentParser:
    """A subcommand with the client options; ``output``: its default -o format, if any."""
    p = parent.add_parser(name, help=help)
    add_client_options(p)
    if output:
        add_output_options(p, default=output)
    p.set_defaults(func=func)
    return p


def register(sub: Any) -> None:
    p = sub.add_parser("registry", help="model versions, artifacts and aliases")
    rs = p.add_subparsers(dest="registry_command", required=True)
    rg = _sub(rs, "register", "upload an artifact as the model's next version", _register)
    rg.add_argument("name")
    rg.add_argument("file", nargs="?", help=".skops, .onnx, .pkl/.joblib (admin + --trust), "
                    "or any file an --entry-point reads")
    rg.add_argument("--format", help="skops, onnx, python, pickle or joblib (default: from the "
                    "file's extension)")
    rg.add_argument("--entry-point", help="module:function returning a model (python format)")
    rg.add_argument("--version", help="a label instead of the next number")
    rg.add_argument("--metric", action="append", default=[], help="NAME=NUMBER (repeatable)")
    rg.add_argument("--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    rg.add_argument("--tag", action="append", default=[], help="NAME=VALUE (repeatable)")
    rg.add_argument("--source-commit", help="a commit id, or 'git' for this folder's HEAD")
    rg.add_argument("--description")
    rg.add_argument("--inputs", help="feature columns in the model's order, comma separated")
    rg.add_argument("--metadata", help="a JSON file with more metadata (training_profile, ...)")
    rg.add_argument("--task", choices=("binary", "multiclass", "regression", "none"))
    rg.add_argument("--trust", action="store_true", help="admin only: vouch for an artifact "
                    "whose loading may run code (pickle, joblib, entry points) or skops types "
                    "beyond the defaults, e.g. sklearn.tree._tree.Tree of tree models. A server "
                    "without keys accepts it only for scikit-learn's own classes unless started "
                    "with --allow-code-artifacts; os.*, subprocess.*, eval... are never trusted")
    ls = _sub(rs, "list", "models in the registry, or one model's versions", _list, "table")
    ls.add_argument("name", nargs="?")
    sh = _sub(rs, "show", "one version as JSON (VERSION may be @alias; default: the latest)",
              _show, "json")
    sh.add_argument("name")
    sh.add_argument("version", nargs="?")
    al = _sub(rs, "alias", "point an alias at a version (or --delete it), with a reason",
              _alias)
    al.add_argument("name")
    al.add_argument("alias")
    al.add_argument("version", nargs="?")
    al.add_argument("--reason", required=True)
    al.add_argument("--expect", help="move only if the alias points at this version now")
    al.add_argument("--delete", action="store_true")
    hi = _sub(rs, "history", "who moved which alias, when and why (newest first)", _history,
              "table")
    hi.add_argument("name")
    hi.add_argument("alias", nargs="?")
    hi.add_argument("--limit", type=int, default=50)
    pv = _sub(rs, "previous", "the version an alias pointed at before its latest move",
              _previous, "table")
    pv.add_argument("name")
    pv.add_argument("alias", nargs="?", default="champion")
    dl = _sub(rs, "download", "save a version's verified artifact", _download)
    dl.add_argument("name")
    dl.add_argument("version")
    dl.add_argument("--out", help="file to write (default: the registered file name)")
    im = _sub(rs, "import-mlflow", "copy registered models, versions and aliases from MLflow "
              "(needs mlflow: pip install 'aiwarden[mlflow]')", _import_mlflow)
    im.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    im.add_argument("--registry-uri", help="MLflow registry URI (default: the tracking URI)")
    im.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    im.add_argument("--trust", action="store_true", help="admin only: import pickled models")
    rb = _sub(sub, "rollback", "move an alias (default champion) back to its previous "
              "version now", _rollback)
    rb.add_argument("name")
    rb.add_argument("--alias", default="champion")
    rb.add_argument("--to", help="a version instead of the previous one")
    rb.add_argument("--reason", required=True)
    rp = _sub(sub, "rollback-policy", "when alerts roll a freshly promoted version back "
              "automatically (shows the policy without options)", _rollback_policy, "json")
    rp.add_argument("name")
    rp.add_argument("--alias")
    rp.add_argument("--severity", choices=("warning", "critical"))
    rp.add_argument("--rules", help="only these rules, comma separated (default: any)")
    rp.add_argument("--lookback", help="blame only versions promoted this recently (e.g. 1h)")
    rp.add_argument("--verify-for", help="check the metric again after this long (e.g. 15m)")
    rp.add_argument("--disable", action="store_true")
    pr = _sub(sub, "promote", "move an alias (default champion) forward to a version", _promote)
    pr.add_argument("name")
    pr.add_argument("version")
    pr.add_argument("--alias", default="champion")
    pr.add_argument("--reason", required=True)


def _run(command: str, args: argparse.Namespace, fn: Any) -> tuple[int, Any]:
    """Call ``fn(client)``; any failure is one line on stderr and its exit code."""
    from aiwarden.errors import AiwardenError
    from aiwarden.sdk import ApiError, Client

    try:
        with Client(args.url, api_key=args.api_key) as client:
            return 0, fn(client)
    except (ApiError, AiwardenError, OSError, ValueError, TypeError) as exc:
        return fail(command, explain(exc), exit_code(exc)), None


def _pairs(items: list[str], what: str, number: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--{what} expects NAME=VALUE; got {item!r}")
        if number:
            try:
                out[key] = float(value)
            except ValueError:
                raise ValueError(f"--{what} {key}: expected a number; got {value!r}") from None
        else:
            out[key] = value
    return out


def _commit(value: str | None) -> str | None:
    if value != "git":
        return value
    res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    if res.returncode:
        raise ValueError("--source-commit git: this folder is not a git checkout")
    return res.stdout.strip()


def _register(args: argparse.Namespace) -> int:
    def go(client: Any) -> Any:
        meta: dict[str, Any] = json.loads(Path(args.metadata).read_text()) \
            if args.metadata else {}
        meta.setdefault("metrics", {}).update(_pairs(args.metric, "metric", number=True))
        meta.setdefault("params", {}).update(_pairs(args.param, "param"))
        meta.setdefault("tags", {}).update(_pairs(args.tag, "tag"))
        for key, value in (("source_commit", _commit(args.source_commit)),
                           ("description", args.description),
                           ("inputs", args.inputs and [c.strip() for c in args.inputs.split(",")
                                                       if c.strip()])):
            if value:
                meta[key] = value
        artifact: Any = Path(args.file) if args.file else b""
        return client.register_version(args.name, artifact, format=args.format,
                                       entry_point=args.entry_point, version=args.version,
                                       metadata=meta, task=args.task, trust=args.trust)

    code, v = _run("registry register", args, go)
    if not code:
        print(f"registered {v['model']} version {v['version']} ({v['format']}, "
              f"sha256 {v['sha256'][:12]}, {v['size']} bytes)")
    return code


def _when(t: float) -> str:
    from aiwarden.monitoring.windows import to_iso

    return to_iso(t)[:19]


def _list(args: argparse.Namespace) -> int:
    if args.name is None:
        code, models = _run("registry list", args, lambda c: c.registry_models())
        return code or emit(args, models, _models_table)
    code, versions = _run("registry list", args, lambda c: c.registered_versions(args.name))
    return code or emit(args, versions, _versions_table)


def _models_table(models: list[dict[str, Any]]) -> None:
    print(f"{'model':<32}{'versions':>9}  {'latest':<10}aliases")
    for m in models:
        aliases = ", ".join(f"{a}={v}" for a, v in m["aliases"].items())
        print(f"{m['name'][:31]:<32}{m['versions']:>9}  {m['latest']:<10}{aliases}")


def _versions_table(versions: list[dict[str, Any]]) -> None:
    print(f"{'version':<10}{'format':<8}{'created (UTC)':<21}{'by':<16}{'sha256':<14}aliases")
    for v in versions:
        print(f"{v['version'][:9]:<10}{v['format']:<8}{_when(v['created_at']):<21}"
              f"{v['registered_by'][:15]:<16}{v['sha256'][:12]:<14}{','.join(v['aliases'])}")


def _show(args: argparse.Namespace) -> int:
    def go(client: Any) -> Any:
        if args.version is None:  # the latest: what `registry list` shows last
            versions = client.registered_versions(args.name)
            if not versions:
                from aiwarden.errors import ParameterError

                raise ParameterError(f"{args.name} has no registered version yet.", "version")
            return versions[-1]
        if args.version.startswith("@"):
            return client.resolve_alias(args.name, args.version[1:])
        return client.registered_version(args.name, args.version)

    code, v = _run("registry show", args, go)
    return code or emit(args, v, print_fields)


def _moved(out: dict[str, Any]) -> None:
    if not out["changed"]:
        print(f"{out['model']}@{out['alias']} already points at version {out['version']}")
    else:
        print(f"{out['model']}@{out['alias']}: {out['previous'] or '(unset)'} -> "
              f"{out['version']}")


def _alias(args: argparse.Namespace) -> int:
    if args.delete:
        code, ev = _run("registry alias", args, lambda c: c.delete_alias(
            args.name, args.alias, args.reason))
        if not code:
            print(f"{args.name}@{args.alias}: {ev['from_version']} -> (removed)")
        return code
    if not args.version:
        return fail("registry alias", "give the VERSION to point the alias at, or --delete")
    kw = {} if args.expect is None else {"expected_version": args.expect}
    code, out = _run("registry alias", args, lambda c: c.set_alias(
        args.name, args.alias, args.version, args.reason, **kw))
    if not code:
        _moved(out)
    return code


def _promote(args: argparse.Namespace) -> int:
    code, out = _run("promote", args, lambda c: c.promote(args.name, args.version, args.reason,
                                                          alias=args.alias))
    if not code:
        _moved(out)
    return code


def _rollback(args: argparse.Namespace) -> int:
    code, out = _run("rollback", args, lambda c: c.rollback(args.name, args.reason,
                                                            alias=args.alias, to=args.to))
    if not code:
        print(f"{out['model']}@{out['alias']}: {out['from_version']} -> {out['to_version']} "
              "(rollback)")
    return code


def _rollback_policy(args: argparse.Namespace) -> int:
    given = {"alias": args.alias, "severity": args.severity, "lookback": args.lookback,
             "verify_for": args.verify_for,
             "rules": [r for r in args.rules.split(",") if r] if args.rules else None}
    given = {k: v for k, v in given.items() if v is not None}
    if args.disable:
        given["enabled"] = False

    def go(client: Any) -> Any:
        from aiwarden.sdk import ApiError

        if not given:
            return client.rollback_policy(args.name)
        try:  # options given change only those fields
            current = client.rollback_policy(args.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            current = {}
        current.pop("model", None)
        return client.set_rollback_policy(args.name, **(current | given))

    code, out = _run("rollback-policy", args, go)
    return code or emit(args, out, print_fields)


def _history(args: argparse.Namespace) -> int:
    code, events = _run("registry history", args, lambda c: c.alias_history(
        args.name, args.alias, args.limit))
    return code or emit(args, events, _history_table)


def _history_table(events: list[dict[str, Any]]) -> None:
    print(f"{'when (UTC)':<21}{'alias':<14}{'from':>6} -> {'to':<6}{'kind':<10}{'by':<16}why")
    for e in events:
        print(f"{_when(e['at']):<21}{e['alias'][:13]:<14}{e['from_version'] or '-':>6} -> "
              f"{e['to_version'] or '-':<6}{e['kind']:<10}{e['actor'][:15]:<16}{e['reason']}")


def _previous(args: argparse.Namespace) -> int:
    code, v = _run("registry previous", args, lambda c: c.previous_version(args.name,
                                                                           args.alias))
    return code or emit(args, v, lambda d: print(d["version"]))


def _download(args: argparse.Namespace) -> int:
    def go(client: Any) -> Any:
        info = client.registered_version(args.name, args.version)
        out = Path(args.out or info.get("filename") or f"{args.name}-{info['version']}")
        client.download_artifact(args.name, args.version, to=out)
        return out

    code, out = _run("registry download", args, go)
    if not code:
        print(f"wrote {out}")
    return code


def _import_mlflow(args: argparse.Namespace) -> int:
    from aiwarden.commands._progress import Progress
    from aiwarden.registry.mlflow_import import import_mlflow

    with Progress("import-mlflow", None, unit="versions") as bar:
        def say(line: str) -> None:  # one line per version: the count goes up
            bar.close()
            print(line)
            bar.update(bar.done + 1, force=True)

        code, report = _run("registry import-mlflow", args, lambda c: import_mlflow(
            c, tracking_uri=args.tracking_uri, registry_uri=args.registry_uri,
            models=args.model or None, trust=args.trust, say=say))
    if not code:
        print(f"imported {len(report.imported)} version(s), {len(report.unchanged)} unchanged, "
              f"{len(report.skipped)} skipped, {len(report.aliases)} alias(es) set")
    return code
