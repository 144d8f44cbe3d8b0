"""What retraining costs beyond the training itself, and what the gates cost on a big holdout.

1. Scheduling overhead per run: the same training function (a scikit-learn logistic
   regression saved with skops, ``tests.training.pipelines:train_logreg``) on the same
   Parquet inputs, called directly in this process (the baseline), through the local executor
   cold (a fresh interpreter per run with its limits, context and result files) and warm
   (forked from the zygote that has the scientific stack imported, aiwarden/training/warm.py;
   a server's first run is timed twice: with the zygote prestarted in the background and
   ready, as a server with an entry-point pipeline does, and paying its start), through
   ``multiprocessing``'s forkserver with the same preload (the option the warm runner was
   measured against: no limits, no log, no peak memory, just a process per run) and through
   the Dask executor, warm and cold (a ``LocalCluster`` of worker processes started here;
   inputs shipped with the task, the worker runs the local executor, artifact and log shipped
   back). Overhead = median executor run minus the median direct call. Target: < 1 s per run.
   Also timed, each in a process of its own: a bare interpreter (``python -c pass``), one
   importing aiwarden's run child alone (``aiwarden.training.worker``) and one importing the
   pipeline's modules too, what every cold run (and a ``command`` that uses the same
   libraries) pays before training; then ``python -X importtime`` of each: the top-level
   packages by import time and the self time of aiwarden's own modules. CPU beside the
   wall time is this process's plus the children it reaped (a cold run's interpreter; not a
   zygote's forks or a Dask worker, whose CPU another process spends).
2. Gate evaluation on a 1,000,000-row holdout: ``data_gate`` (every row against the
   reference's checks), ``label_gate`` (leakage per feature, class balance against the
   reference), ``comparison_gate`` (DeLong on ROC AUC) and ``slice_gate`` (slice
   finder plus a paired test per candidate slice), on a challenger with a planted weak slice
   (``amount < 10``) that the slice gate must refuse, so a fast but wrong gate cannot pass.
   Baseline in the same run: scikit-learn's ``roc_auc_score`` of both models (the least any
   comparison has to compute). Target: the gates < 10 s. Timed in wall and CPU seconds (this
   process, all threads): on a shared machine the CPU time is the steadier figure. (The
   overfit gate is two metric values, the baseline's work; the infra gate times 50 rows,
   whatever the holdout's size.) The scheduling figures are wall time: their cost is spent
   in other processes (interpreters, a zygote's forks, Dask workers) that this one does not
   reap per run, so read them with the load average printed beside them.

Usage (from the repository root, so the workers can import the pipeline; on a machine
shared with other work, as root, ``nice -n -10`` keeps other load from starving it)::

    nice -n -10 .venv/bin/python bench/training.py           # 5 runs each, 1M-row holdout
    .venv/bin/python bench/training.py --runs 3 --holdout-rows 200000 --no-dask
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.training.pipelines

from _machine import machine_line

from aiwarden.egress import EgressPolicy
from aiwarden.training.contract import TrainingContext
from aiwarden.training.local_executor import Job, run_local
from aiwarden.training.warm import DEFAULT_PRELOAD, WarmRunner

ENTRY = "tests.training.pipelines:train_logreg"


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    c = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    return pd.DataFrame({"x": x, "c": c, "y": y})


def contexts(root: Path, rows: int, runs: int) -> list[TrainingContext]:
    frame(rows, 1).to_parquet(root / "train.parquet")
    frame(rows // 4, 2).to_parquet(root / "holdout.parquet")
    return [TrainingContext(i, "bench", "binary_classification", "y", ["x", "c"],
                            str(root / "train.parquet"), str(root / "holdout.parquet"),
                            str(root / f"run-{i}"), {"C": 1.0}) for i in range(runs)]


CPU: dict[str, list[float]] = {}  # entry -> CPU seconds per run (this process + reaped)


def _cpu_now() -> float:
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Wall seconds of ``fn()``; its CPU (this process and the children it reaped: a cold
    run's interpreter, not a zygote's fork or a Dask worker) is appended to ``cpu``."""
    c0, start = _cpu_now(), time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_cpu_now() - c0)
    return wall


def runs_of(name: str, fn: Callable[[], object], n: int) -> list[float]:
    """``n`` timed calls of ``fn``, their CPU kept under ``name``."""
    cpu = CPU.setdefault(name, [])
    return [timed(fn, cpu) for _ in range(n)]


# what a process of its own imports before any training, from the bare interpreter to the
# pipeline's libraries (a cold run, a ``command`` that uses them, a zygote's start)
START_STEPS = {
    "python -c pass": "pass",
    "python + aiwarden.training.worker": "import aiwarden.training.worker",
    "fresh python + imports": "import aiwarden.training.worker, tests.training.pipelines, "
                              "sklearn.linear_model, skops.io, pyarrow.parquet",
}


def import_breakdown(code: str) -> tuple[float, list[tuple[str, float]], float]:
    """``python -X importtime``: the total, the top-level packages by their import time,
    and the self time of aiwarden's own modules (what aiwarden itself adds to a start)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True).stderr
    by_top: dict[str, float] = {}
    own = total = 0.0
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line.split(":", 1)[1].split("|")
        module = name.strip()
        if module.startswith("aiwarden"):
            own += int(self_us) / 1e6
        if name[:2] != "  ":  # top level: its cumulative time holds everything under it
            top = module.split(".")[0]
            by_top[top] = by_top.get(top, 0.0) + int(cum_us) / 1e6
            total += int(cum_us) / 1e6
    return total, sorted(by_top.items(), key=lambda kv: -kv[1]), own


def _forkserver_run(c: TrainingContext) -> None:
    from tests.training.pipelines import train_logreg

    train_logreg(c)


def scheduling(rows: int, runs: int, dask: bool) -> dict[str, list[float]]:
    import multiprocessing

    from tests.training.pipelines import train_logreg

    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        ctxs = contexts(Path(tmp), rows, runs)
        for c in ctxs:
            Path(c.run_dir).mkdir()
        train_logreg(ctxs[0])  # warm: imports and caches are not what is measured
        direct = iter(ctxs)
        out["direct call"] = runs_of("direct call", lambda: train_logreg(next(direct)), runs)

        def local(c: TrainingContext, warm: WarmRunner | None = None) -> None:
            o = run_local(Job(c, entry=ENTRY, time_limit=600), warm=warm)
            assert o.state == "succeeded", o.reason

        # what any process of its own pays before training: the interpreter, aiwarden's run
        # child, the pipeline's imports (the floor of a process-isolated executor here)
        for name, code in START_STEPS.items():
            out[name] = runs_of(name, lambda code=code: subprocess.run(
                [sys.executable, "-c", code], check=True), runs)
        cold = iter(ctxs)
        out["local executor, cold"] = runs_of("local executor, cold",
                                              lambda: local(next(cold)), runs)
        # a server's first run: the zygote prestarted in the background (as a server does
        # when it finds or is given an entry-point pipeline), the run triggered once it is
        # ready; a fresh zygote each time, its imports untimed
        first = []
        for c in ctxs:
            fresh = WarmRunner()
            try:
                assert fresh.prestart() and fresh.wait_ready(600)
                first.append(timed(lambda c=c, fresh=fresh: local(c, fresh),
                                   CPU.setdefault("warm: 1st run, prestarted", [])))
            finally:
                fresh.close()
        out["warm: 1st run, prestarted"] = first
        runner = WarmRunner()
        try:
            out["warm: 1st run, lazy start"] = [timed(lambda: local(ctxs[0], runner))]
            out["local executor, warm"] = [timed(lambda c=c: local(c, runner), CPU.setdefault(
                "local executor, warm", [])) for c in ctxs]
        finally:
            runner.close()
        fs = multiprocessing.get_context("forkserver")
        fs.set_forkserver_preload([*DEFAULT_PRELOAD, "tests.training.pipelines"])

        def forkserver(c: TrainingContext) -> None:
            p = fs.Process(target=_forkserver_run, args=(c,))
            p.start()
            p.join()
            assert p.exitcode == 0

        forkserver(ctxs[0])  # starts the forkserver and its preload
        out["mp forkserver + preload"] = [timed(lambda c=c: forkserver(c), CPU.setdefault(
            "mp forkserver + preload", [])) for c in ctxs]
        if dask:
            from distributed import Client, LocalCluster

            from aiwarden.training.dask_executor import run_dask

            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                def remote(c: TrainingContext, warm: bool = True) -> None:
                    o = run_dask(Job(c, entry=ENTRY, time_limit=600), client, warm=warm)
                    assert o.state == "succeeded", o.reason

                remote(ctxs[0], warm=False)  # the worker's first task imports its modules
                out["dask executor, cold"] = [timed(lambda c=c: remote(c, False))
                                              for c in ctxs]
                out["dask: worker zygote start"] = [timed(lambda: remote(ctxs[0]))]
                out["dask executor, warm"] = [timed(lambda c=c: remote(c), CPU.setdefault(
                    "dask executor, warm", [])) for c in ctxs]
                # what a server does: a client per run, by scheduler address (checked by
                # the egress policy: the loopback cluster is on the allowlist)
                allow = EgressPolicy("127.0.0.1")

                def by_address(c: TrainingContext) -> None:
                    o = run_dask(Job(c, entry=ENTRY, time_limit=600),
                                 cluster.scheduler_address, egress=allow)
                    assert o.state == "succeeded", o.reason

                out["dask warm, new client per run"] = [timed(lambda c=c: by_address(c))
                                                        for c in ctxs]
    return out


def gates(rows: int, repeats: int
          ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, str]]:
    from sklearn.metrics import roc_auc_score

    from aiwarden.engine import Reference
    from aiwarden.training.gates import comparison_gate, data_gate, label_gate, slice_gate

    rng = np.random.default_rng(7)
    n = rows
    amount = np.round(rng.lognormal(3.3, 1.2, n), 2)
    hour = rng.integers(0, 24, n)
    country = np.array(["US", "BR", "DE", "FR", "IN"], dtype=object)[rng.integers(0, 5, n)]
    signal = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    holdout = pd.DataFrame({"amount": amount, "hour": hour, "country": country})
    champ = 1 / (1 + np.exp(-(2 * signal + rng.normal(0, 1, n))))
    cand = 1 / (1 + np.exp(-(2 * signal + rng.normal(0, 1, n))))
    small = amount < 10  # the planted defect: the challenger flags every small transaction
    cand[small] = np.maximum(cand[small], 0.9)
    window = holdout.assign(label=y)
    reference = Reference.fit(window.sample(min(n, 200_000), random_state=0))
    keys = ("baseline: 2x roc_auc_score", "data_gate", "label_gate", "comparison_gate",
            "slice_gate", "four gates")
    # wall and CPU (this process, all threads: the gates run in the server's process, so
    # its CPU time is what they cost on a machine shared with other work)
    timings: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    verdicts: dict[str, str] = {}

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    for _ in range(repeats):
        b0 = now()
        roc_auc_score(y, champ), roc_auc_score(y, cand)
        t0 = now()
        d, _kept = data_gate(reference, window)
        tl = now()
        lab = label_gate(window, "label", features=["amount", "hour", "country"],
                         reference_counts={"0": int((y == 0).sum()), "1": int(y.sum())})
        t1 = now()
        c = comparison_gate(y, champ, cand, metric="roc_auc")
        t2 = now()
        s = slice_gate(holdout, y, (champ > 0.5).astype(int), (cand > 0.5).astype(int))
        t3 = now()
        for key, (a, b) in zip(keys, ((b0, t0), (t0, tl), (tl, t1), (t1, t2), (t2, t3),
                                      (t0, t3)), strict=True):
            timings[key].append(b[0] - a[0])
            cpu[key].append(b[1] - a[1])
        verdicts = {g.gate: f"{'passed' if g.passed else 'refused'}: {g.reason}"
                    for g in (d, lab, c, s)}
    return timings, cpu, verdicts


def report(title: str, timings: dict[str, list[float]], baseline: str,
           cpu: dict[str, list[float]] | None = None) -> None:
    print(f"\n{title}")
    base = statistics.median(timings[baseline])
    for name, xs in timings.items():
        med = statistics.median(xs)
        extra = "" if name == baseline else (
            f"  x{med / base:6.2f} the baseline, {med - base:+.3f} s")
        used = (cpu or {}).get(name)
        spent = f"  CPU {statistics.median(used):7.3f} s" if used else ""
        print(f"  {name:<33} median {med:8.3f} s  (n={len(xs)}, min {min(xs):.3f}, "
              f"max {max(xs):.3f}){spent}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per executor")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--holdout-rows", type=int, default=1_000_000)
    parser.add_argument("--gate-repeats", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    print(machine_line())
    print(f"load average at the start (1/5/15 min): "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"python {sys.version.split()[0]}, cwd {os.getcwd()}")
    runs = scheduling(args.train_rows, args.runs, not args.no_dask)
    report(f"Scheduling ({args.train_rows:,} training rows, {args.runs} runs each; target: "
           "overhead < 1 s per run; CPU: this process and the children it reaped, a "
           "cold run's interpreter included, a zygote's forks and Dask workers not)", runs,
           "direct call", CPU)
    print(f"\nload average after scheduling: "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\nWhat a fresh interpreter imports (python -X importtime, one start each):")
    for name, code in START_STEPS.items():
        total, tops, own = import_breakdown(code)
        top = ", ".join(f"{k} {v:.2f}" for k, v in tops[:6])
        print(f"  {name:<33} imports {total:6.2f} s, aiwarden's own modules {own:.3f} s;"
              f" largest: {top}")
    floor = statistics.median(runs["direct call"]) + statistics.median(
        runs["fresh python + imports"])
    for name in ("local executor, cold", "dask executor, cold"):  # warm ones import nothing
        if name in runs:
            print(f"  {name} beyond a fresh process's imports plus the training: "
                  f"{statistics.median(runs[name]) - floor:+.3f} s per run")
    timings, cpu, verdicts = gates(args.holdout_rows, args.gate_repeats)
    report(f"Gates on a {args.holdout_rows:,}-row holdout, wall (target: the gates < 10 s)",
           timings, "baseline: 2x roc_auc_score")
    report(f"Gates on a {args.holdout_rows:,}-row holdout, CPU of this process (s of CPU)",
           cpu, "baseline: 2x roc_auc_score")
    for gate, verdict in verdicts.items():
        print(f"  {gate}: {verdict[:160]}")
    assert verdicts["slices"].startswith("refused") and "amount" in verdicts["slices"], \
        "the slice gate missed the planted weak slice"
    print(f"\nload average at the end (1/5/15 min): "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
