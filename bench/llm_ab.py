"""A/B of the LLM evaluators: this tree against an older commit, runs interleaved.

On a shared machine CPU time per run moves by +-20 % from one run to the next (other
processes evict the caches), so two benchmarks run one after the other compare the load more
than the code. Here two worker processes (the old code from ``git archive`` of ``--base``, and
this tree) each load the evaluators once, then take turns: old run, new run, old run, ... each
timed with its own process CPU time on the same texts. Medians and the median of the per-pair
ratios are printed; the ratio of a pair is measured under nearly the same load.

    .venv/bin/python bench/llm_ab.py --base 4dd85d6 [--pairs 9] [--events 1000] [--distinct]
    .venv/bin/python bench/llm_ab.py --base 4dd85d6 --what ingest
    .venv/bin/python bench/llm_ab.py --base 4dd85d6 --what ingest --distinct --without-fast
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import cpu_model  # bench/_machine.py

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import sys, time
root, what, events, distinct = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
sys.path[:0] = [root, root + "/bench"]
if sys.argv[5] == "1":  # --without-fast: the fast extra's import fails, as when not installed
    sys.modules["ahocorasick"] = None
import llm_eval, llm_ingest
texts = llm_eval.responses_1kb(llm_eval.load(), events)
if distinct:
    texts = llm_eval.distinct(texts)
if what == "safety":
    from aiwarden.llm.evaluators.safety import SafetyEvaluator
    ev = SafetyEvaluator(memo=0 if distinct else 20_000)
    def once():
        ev.forget()
        ev.evaluate(texts)
elif what == "all":
    evs = llm_eval._evaluators()
    evs = [e for e in evs if not (e.name == "safety" and e.model is None)]
    for e in evs:
        if e.name == "safety" and distinct:
            e.memo = 0
    def once():
        for e in evs:
            getattr(e, "forget", lambda: None)()
            e.evaluate(texts)
else:  # the ingest evaluator stage
    import os
    os.environ.setdefault("AIWARDEN_LLM_EVAL_WORKERS", "0")
    from aiwarden.monitoring.llm_ingest import _evaluators
    batch = llm_ingest.rows(events)
    if distinct:
        for r, t in zip(batch, texts):
            r["output"] = t
    llm_ingest.stage(batch[:10])
    evs = _evaluators()[0]
    for e in evs:
        if e.name == "safety" and distinct:
            e.memo = 0
    def once():
        for e in evs:
            getattr(e, "forget", lambda: None)()
        llm_ingest.stage(batch)
once()  # warm: imports, compiled patterns, the scorer's weights
print("ready", flush=True)
for line in sys.stdin:
    t = time.process_time()
    once()
    print(time.process_time() - t, flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="commit of the old code")
    ap.add_argument("--what", choices=["safety", "all", "ingest"], default="all")
    ap.add_argument("--pairs", type=int, default=9)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--distinct", action="store_true",
                    help="every sentence numbered (no sentence repeats; scorer memo off)")
    ap.add_argument("--without-fast", action="store_true",
                    help="both sides without the fast extra (pyahocorasick), as pip install "
                         "aiwarden has it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(f"git archive {args.base} aiwarden bench tests/data | tar -x -C {tmp}",
                       shell=True, check=True, cwd=ROOT)
        procs = {}
        for name, root in (("old", tmp), ("new", str(ROOT))):
            env = dict(os.environ, PYTHONPATH=root, OPENBLAS_NUM_THREADS="1")
            p = subprocess.Popen([sys.executable, "-c", WORKER, root, args.what,
                                  str(args.events), "1" if args.distinct else "0",
                                  "1" if args.without_fast else "0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=env, cwd=tmp)
            assert p.stdout.readline().strip() == "ready", name
            procs[name] = p
        times: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.pairs):
            for name in (("old", "new") if i % 2 == 0 else ("new", "old")):
                p = procs[name]
                p.stdin.write("go\n")
                p.stdin.flush()
                times[name].append(float(p.stdout.readline()))
        for p in procs.values():
            p.stdin.close()
            p.wait()
    n = args.events
    ratios = [o / w for o, w in zip(times["old"], times["new"], strict=True)]
    kind = ", every sentence distinct" if args.distinct else ""
    kind += ", without the fast extra" if args.without_fast else ""
    print(f"{args.what}: {n} responses of ~1 kB{kind}"
          f", {args.pairs} interleaved pairs, process CPU time; base {args.base}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cpus, "
          f"{cpu_model()}")
    for name in ("old", "new"):
        ts = times[name]
        print(f"  {name}: median {n / statistics.median(ts):7,.0f} events/s, best "
              f"{n / min(ts):7,.0f}")
    print(f"  new / old speed: median of pair ratios x{statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
