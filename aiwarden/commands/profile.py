"""``aiwarden profile``: a batch profile (or a reference) of a Parquet dataset, on an engine.

The result is written to ``-o FILE`` as JSON (``{"model", "engine", "profile"}`` for a
profile, ``Reference.to_dict()`` for ``--fit``) and, with ``--model`` and ``--version``,
sent to the server: a reference to ``PUT .../reference-profile``, a batch profile to
``POST .../profiles`` (named ``--batch``, counted at ``--at``). Without ``--reference`` a
profile is counted on the server's reference of that version. The engines need their
extras, ``aiwarden[dask]`` or ``aiwarden[spark]``: without one the command says so in one
line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiwarden.commands._common import Exit, exit_code, explain, fail

__all__ = ["register"]

_EXTRA = {"dask": ("distributed", "dask"), "spark": ("pyspark", "spark")}


def register(sub: Any) -> None:
    p = sub.add_parser("profile", help="profile a Parquet dataset (local, Dask or Spark) "
                       "against a reference's bins, or fit a reference (--fit)")
    p.add_argument("data", help="a Parquet file or directory")
    p.add_argument("--engine", choices=("local", "dask", "spark"), default="local")
    p.add_argument("--reference", help="a reference JSON file (from --fit): its bins")
    p.add_argument("--fit", action="store_true", help="fit a reference instead of a profile")
    for hint in ("target", "prediction", "id", "timestamp", "task"):
        p.add_argument(f"--{hint}", help=f"--fit: the {hint} column" if hint != "task"
                       else "--fit: binary, multiclass or regression")
    p.add_argument("--scores", help="--fit: score columns, comma separated")
    p.add_argument("--segments", help="--fit: segment columns, comma separated (the "
                   "model's declared segments, when sent)")
    p.add_argument("-o", "--output", "--out", dest="out",
                   help="where to write the JSON result (its folder must exist); required "
                        "unless the result is sent (--model and --version)")
    p.add_argument("--model", help="the model the result is for (recorded in the file; "
                   "with --version, sent to the server)")
    p.add_argument("--version", help="send the result to this version of --model (and, "
                   "without --reference, profile on that version's reference)")
    p.add_argument("--batch", help="the batch's name on the server, counted once (default: "
                   "the data's file or folder name)")
    p.add_argument("--at", help="the instant the batch is counted at (ISO 8601 or epoch "
                   "seconds; default: now)")
    p.add_argument("--server", "--url", dest="url",
                   default=os.environ.get("AIWARDEN_URL", "http://127.0.0.1:8000"),
                   help="server URL (env AIWARDEN_URL)")
    p.add_argument("--api-key", default=os.environ.get("AIWARDEN_API_KEY"),
                   help="API key (env AIWARDEN_API_KEY)")
    p.add_argument("--scheduler", help="dask: a scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="dask LocalCluster worker processes")
    p.add_argument("--master", default="local[*]", help="spark: the master URL")
    p.add_argument("--batch-rows", type=int, default=262_144)
    p.add_argument("--sample-rows", type=int, default=10_000,
                   help="--fit sent to a server: a seeded sample of this many rows goes with "
                        "the reference (multivariate drift, explanations; 0: none)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.engine import Reference

    send = bool(args.version)
    if send and not args.model:
        return fail("profile", "--version needs --model: the result is sent to that model's "
                    "version", Exit.USAGE)
    if args.fit and args.reference:
        return fail("profile", "pass --reference REF.json to profile, or --fit to fit one",
                    Exit.USAGE)
    if not args.fit and not args.reference and not send:
        return fail("profile", "pass --reference REF.json (or --model and --version: the "
                    "server's reference) to profile, or --fit to fit one", Exit.USAGE)
    if not args.out and not send:
        return fail("profile", "-o/--output FILE is required unless the result is sent "
                    "(--model and --version)", Exit.USAGE)
    if args.sample_rows < 0:
        return fail("profile", f"--sample-rows must be 0 or more (got {args.sample_rows})",
                    Exit.USAGE)
    if args.workers < 1:  # a LocalCluster of 0 workers waits for one forever
        return fail("profile", f"--workers must be at least 1 (got {args.workers})",
                    Exit.USAGE)
    unwritable = _unwritable(args.out) if args.out else None
    if unwritable:  # checked before the work: a profile can take minutes
        return fail("profile", f"-o/--output {args.out!r}: {unwritable}", Exit.USAGE)
    if args.engine in _EXTRA:
        module, extra = _EXTRA[args.engine]
        try:
            __import__(module)
        except ImportError:
            return fail("profile", f"the {args.engine} engine needs the '{extra}' extra: "
                        f"pip install 'aiwarden[{extra}]'", Exit.USAGE)
    if not os.path.exists(args.data):
        return fail("profile", f"no Parquet file or directory at {args.data!r}", Exit.USAGE)
    started = time.monotonic()
    if args.fit:
        if args.engine != "local":  # one seeded sample of the stream: a local pass
            print(f"note: --fit runs on the local engine (streamed); --engine {args.engine} "
                  "profiles batches only", file=sys.stderr)
        hints = {k: getattr(args, k) for k in ("target", "prediction", "id", "timestamp",
                                               "task") if getattr(args, k)}
        for hint in ("scores", "segments"):
            if getattr(args, hint):
                hints[hint] = [s for s in getattr(args, hint).split(",") if s]
        ref = Reference.fit(args.data, batch_rows=args.batch_rows, **hints)
        out: dict[str, Any] = ref.to_dict()
        rows = ref.profile_.n_rows
    else:
        ref = _reference(args)
        if isinstance(ref, int):
            return ref
        prof = _profile(args, ref)
        out = {"model": args.model, "engine": args.engine, "profile": prof.to_dict()}
        rows = prof.n_rows
    what = "reference" if args.fit else "profile"
    took = f"{what} of {rows} rows ({args.engine}, {time.monotonic() - started:.1f} s)"
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(out))
        except OSError as exc:  # changed since the check (or a full disk)
            return fail("profile", f"-o/--output {args.out!r}: cannot write: "
                        f"{exc.strerror or exc}", Exit.USAGE)
        print(f"{took} written to {args.out}")
    if send:
        return _send(args, out, took)
    if args.model:
        print("not sent: give --version too to send it to the server", file=sys.stderr)
    return Exit.OK


def _reference(args: argparse.Namespace) -> Any:
    """The reference to count on: the file, else the server's (an exit code on failure)."""
    from aiwarden.engine import Reference

    if args.reference:
        try:
            return Reference.from_dict(json.loads(Path(args.reference).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            return fail("profile", f"cannot read the reference {args.reference!r}: {exc}",
                        Exit.USAGE)
    from aiwarden.sdk import ApiError, Client

    try:
        with Client(args.url, args.api_key) as client:
            return Reference.from_dict(client.get_reference(args.model, args.version))
    except ApiError as exc:
        return fail("profile", f"cannot get the reference of {args.model!r} version "
                    f"{args.version!r}: {explain(exc)}", exit_code(exc))


def _send(args: argparse.Namespace, out: dict[str, Any], took: str) -> int:
    from aiwarden.sdk import ApiError, Client

    batch = args.batch or Path(args.data.rstrip("/")).stem
    try:
        with Client(args.url, args.api_key) as client:
            if args.fit:
                if args.sample_rows > 0:
                    out = out | {"sample": _sample_rows(args)}
                got = client.upload_reference_profile(args.model, args.version, out)
                kept = got.get("sample")
                print(f"{took} stored as {args.model!r} version {args.version!r}'s reference "
                      f"(fingerprint {got['fingerprint']}; "
                      f"{f'a sample of {kept} rows' if kept else 'no sample of rows'})")
            else:
                at = args.at if args.at is not None else time.time()
                got = client.log_profile(args.model, args.version, out["profile"],
                                         batch=batch, at=at)
                print(f"{took} sent as batch {got['batch']!r} of {args.model!r} version "
                      f"{args.version!r}, counted at {got['at']}")
    except ApiError as exc:
        return fail("profile", f"not taken by the server: {explain(exc)}", exit_code(exc))
    return Exit.OK


def _sample_rows(args: argparse.Namespace) -> dict[str, list[Any]]:
    """A seeded uniform sample of the data, as columns (one more streamed read)."""
    from aiwarden.engine._streaming import open_source, sample

    table, _ = sample(open_source(args.data), args.sample_rows, batch_rows=args.batch_rows,
                      seed=0)
    return table.to_pydict()


def _unwritable(out: str) -> str | None:
    """Why ``out`` cannot be written, or None: the folder must exist and be writable."""
    path = Path(out)
    folder = path.parent
    if path.is_dir():
        return "is a folder; give a file name"
    if not folder.is_dir():
        return f"the folder {str(folder)!r} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        return "is not writable"
    return None


def _profile(args: argparse.Namespace, ref: Any) -> Any:
    if args.engine == "local":
        return ref.profile(args.data, batch_rows=args.batch_rows)
    if args.engine == "dask":
        from distributed import Client, LocalCluster

        from aiwarden.distributed import profile_dask

        if args.scheduler:
            with Client(args.scheduler) as client:
                return profile_dask(ref, args.data, client, batch_rows=args.batch_rows)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            return profile_dask(ref, args.data, client, batch_rows=args.batch_rows)
    from pyspark.sql import SparkSession

    from aiwarden.distributed import profile_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master(args.master).appName("aiwarden-profile")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        return profile_spark(ref, spark.read.parquet(args.data))
    finally:
        spark.stop()
