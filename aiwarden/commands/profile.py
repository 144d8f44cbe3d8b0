"""``aiwarden profile``: a batch profile (or a reference) of a Parquet dataset, on an engine.

The server has no route that takes a pre-built profile or reference (``PUT .../reference``
takes the rows and fits them itself), so the result is written to ``-o FILE`` as JSON:
``{"model", "engine", "profile"}`` for a profile, ``Reference.to_dict()`` for ``--fit``.
The engines need their extras, ``aiwarden[dask]`` or ``aiwarden[spark]``: without one the
command says so in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiwarden.commands._common import Exit, fail

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
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="where to write the JSON result (its folder must exist)")
    p.add_argument("--model", help="the model the result is for (recorded in the file)")
    p.add_argument("--server", "--url", dest="url", help="not used yet: the server takes no "
                   "pre-built profile or reference (see docs/cli.md)")
    p.add_argument("--scheduler", help="dask: a scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="dask LocalCluster worker processes")
    p.add_argument("--master", default="local[*]", help="spark: the master URL")
    p.add_argument("--batch-rows", type=int, default=262_144)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiwarden.engine import Reference

    if args.fit == bool(args.reference):
        return fail("profile", "pass --reference REF.json to profile, or --fit to fit one",
                    Exit.USAGE)
    if args.workers < 1:  # a LocalCluster of 0 workers waits for one forever
        return fail("profile", f"--workers must be at least 1 (got {args.workers})",
                    Exit.USAGE)
    unwritable = _unwritable(args.out)
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
        if args.scores:
            hints["scores"] = [s for s in args.scores.split(",") if s]
        ref = Reference.fit(args.data, batch_rows=args.batch_rows, **hints)
        out: dict[str, Any] = ref.to_dict()
        rows = ref.profile_.n_rows
    else:
        try:
            ref = Reference.from_dict(json.loads(Path(args.reference).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            return fail("profile", f"cannot read the reference {args.reference!r}: {exc}",
                        Exit.USAGE)
        prof = _profile(args, ref)
        out = {"model": args.model, "engine": args.engine, "profile": prof.to_dict()}
        rows = prof.n_rows
    try:
        Path(args.out).write_text(json.dumps(out))
    except OSError as exc:  # changed since the check (or a full disk)
        return fail("profile", f"-o/--output {args.out!r}: cannot write: {exc.strerror or exc}",
                    Exit.USAGE)
    print(f"{'reference' if args.fit else 'profile'} of {rows} rows ({args.engine}, "
          f"{time.monotonic() - started:.1f} s) written to {args.out}")
    if args.url or args.model:
        print("not sent: the server has no route taking a pre-built profile or reference "
              "(PUT /models/{name}/versions/{version}/reference takes the rows)",
              file=sys.stderr)
    return Exit.OK


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
