"""What explanations cost: rows/s of Tree and Permutation SHAP via aiwarden against shap
called directly on the same model, rows and background, and a sampled 1M-row window.

Each figure is the median of ``--repeats`` runs; wall clock and this process's CPU seconds
are both printed (the host is shared: compare the aiwarden/shap ratio measured in the same
run, not absolutes between runs). The first Permutation call of a process also pays
numba's compilation of shap's masking code (tens of seconds on a loaded host): it is timed
once, separately, as "warm-up". Tree SHAP is timed both interventional (aiwarden's default:
against the background, cost ~ trees x leaves x background rows) and path-dependent (the
trees' own covers, no background). shap's C code draws a progress bar on stderr for long
interventional runs. Needs the explain extra and lightgbm.

The headline is the 10,000-row section (issue 15: "10,000 rows through TreeExplainer via
aiwarden within 1.1x of shap called directly"): the same model, background and rows, aiwarden
and shap run alternately (``--pairs`` times, shap first in odd pairs, aiwarden first in even
ones) and the ratio is the median of the per-pair CPU ratios, so load that changes during
the run hits both sides; the range of the pairs' ratios is printed beside it. On a host
shared with other jobs one shap call's CPU time moves by +-10 % (cache and memory-bandwidth
contention), so the paired ratio alone wanders around 1.0; the line under it measures what
aiwarden adds around shap on its own (both sides with shap's computation answered from a
stored result: reading the frame, the seeded background, the model's own output for the
residual, the answer's arrays), milliseconds whose noise is small, and states the ratio it
makes. Further lines add ``to_dict()`` (the REST answer, built from the arrays) and reading
every row's Explanation object (100,000 FeatureContribution objects; the count includes
the full garbage-collector pass that creating that many objects sets off, whose cost grows
with the whole process's heap).

The headline also runs trees of thousands of leaves (``_big_trees``: forests of unlimited
depth, LightGBM of 2,048 leaves; ``--only-big`` for them alone, ``--no-big`` without them),
interventional only: their ratio is the paired one, without the ``to_dict()`` and reading
lines (what aiwarden adds around the values does not grow with the trees).

LIME (``--only-lime`` for that section alone): CPU seconds per explained row with the
sample count fixed at 10,000 (before the adaptive count) and left to aiwarden (it grows to
at most 80,000 until rank 5 against 6 is 3 seed SDs apart), on tests/explain/
test_lime_stability.py's data and models; medians over rows x seeds, and the counts used.

    .venv/bin/python bench/explain.py [--tree-rows 10000] [--pairs 7] [--rows 300]
                                      [--perm-rows 10] [--repeats 3] [--only-10k]
                                      [--only-big] [--no-big] [--only-lime]
                                      [--lime-rows 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.explain import explain_rows, global_importance
from aiwarden.explain._codec import summarise_background
from bench._machine import machine_line


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def _paired(ours: Callable[[], object], theirs: Callable[[], object], pairs: int
            ) -> tuple[float, float, float, list[float]]:
    """Median CPU seconds of each side, the median per-pair CPU ratio (ours / theirs) and
    every pair's ratio (sorted), alternating which side runs first."""
    a, b, r = [], [], []
    for i in range(pairs):
        order = ((theirs, b), (ours, a)) if i % 2 == 0 else ((ours, a), (theirs, b))
        for fn, into in order:
            c = time.process_time()
            fn()
            into.append(time.process_time() - c)
        r.append(a[-1] / max(b[-1], 1e-9))
    return statistics.median(a), statistics.median(b), statistics.median(r), sorted(r)


def _cpu(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of ``repeats`` calls."""
    return _timed(fn, repeats)[1]


def _added(shap: object, arr: np.ndarray, ours: Callable[[], object],
           theirs: Callable[[], object], repeats: int) -> float:
    """CPU seconds aiwarden adds around shap, measured without shap's own work: both sides
    run with ``TreeExplainer.shap_values`` answering the values it computed once for these
    rows, so what is left is each side's own Python and numpy (reading the frame, the
    background, the model's output for the residual, assembling the answer). Its noise is
    that of a few milliseconds, not of the seconds shap's C code takes on a shared host."""
    from unittest import mock

    stored: list[object] = []  # one model and one set of rows per call

    def answer(self: object, x: object, **kw: object) -> object:
        if not stored:
            stored.append(real(self, x, **kw))
        return stored[0]

    real = shap.TreeExplainer.shap_values  # type: ignore[attr-defined]
    with mock.patch.object(shap.TreeExplainer, "shap_values", answer):  # type: ignore
        theirs(), ours()  # fills the stored answer (the same rows on both sides)
        return _cpu(ours, repeats) - _cpu(theirs, repeats)


def _ratios(r: list[float]) -> str:
    return f"pairs {r[0]:.3f}..{r[-1]:.3f}"


def _ten_thousand(args: argparse.Namespace, x: pd.DataFrame, y: np.ndarray) -> bool:
    """The issue's target: 10,000 rows through TreeExplainer, aiwarden against shap.
    True when every case is within 1.1x both ways it is measured."""
    import lightgbm as lgb
    import shap
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    rows = _data(args.tree_rows, args.features, seed=1)[0]
    arr = rows.to_numpy()
    cases = [] if args.only_big else [
        ("RandomForest(20, depth 6)", RandomForestClassifier(
            20, max_depth=6, random_state=0, n_jobs=1).fit(x, y), "tree_path_dependent", 0),
        ("LightGBM(100 trees)", lgb.LGBMClassifier(
            n_estimators=100, verbose=-1, n_jobs=1).fit(x, y), "tree_path_dependent", 0),
        ("LightGBM(20 trees, 15 leaves)", lgb.LGBMClassifier(
            n_estimators=20, num_leaves=15, verbose=-1, n_jobs=1).fit(x, y),
         "interventional", 50),
        ("XGBoost(50 trees, depth 4)", xgb.XGBClassifier(
            n_estimators=50, max_depth=4, n_jobs=1, random_state=0).fit(x, y),
         "interventional", 50),
    ]
    big = [] if args.no_big else _big_trees(args)
    cases += big
    big_names = {case[0] for case in big}
    print(f"{args.tree_rows:,} rows through TreeExplainer, process CPU seconds, median of "
          f"{args.pairs} alternating aiwarden/shap pairs (single-threaded on both sides: the "
          "models have n_jobs=1 and aiwarden adds no threads):")
    met = True
    for name, model, perturbation, n_bg in cases:
        bg = summarise_background(x, n_bg, 0).to_numpy() if n_bg else None

        def theirs(model=model, bg=bg, perturbation=perturbation) -> None:
            e = shap.TreeExplainer(model, data=bg, feature_perturbation=perturbation)
            e.shap_values(arr, check_additivity=False)

        def ours(model=model, perturbation=perturbation, n_bg=n_bg) -> object:
            return explain_rows(model, rows, x, tree_perturbation=perturbation,
                                background_size=max(n_bg, 1))

        def ours_json(ours=ours) -> None:
            ours().to_dict()

        def ours_read(ours=ours) -> None:
            for e in ours().explanations:
                e.contributions  # noqa: B018 - built on first read

        theirs()  # untimed: first-call costs on both sides' shared code paths
        label = f"{name}, {'background ' + str(n_bg) if n_bg else 'path-dependent'}"
        mine, shaps, ratio, each = _paired(ours, theirs, args.pairs)
        print(f"  {label:<52} aiwarden {mine:6.2f} s  shap {shaps:6.2f} s  ratio {ratio:.3f}"
              f"  ({_ratios(each)})")
        if perturbation == "interventional":
            # aiwarden computes these values itself (float64, _indep64): nothing of shap's
            # to answer from a stored result; the paired ratio is the whole comparison
            met &= ratio <= 1.1
            print(f"  {'  float64 values, max |residual|':<52} "
                  f"{ours().max_abs_residual:.1e}")
        else:
            added = _added(shap, arr, ours, theirs, args.repeats)
            isolated = (shaps + added) / shaps
            met &= ratio <= 1.1 and isolated <= 1.1
            print(f"  {'  added around shap, measured alone':<52} {added * 1000:8.1f} ms"
                  f"  -> ratio {isolated:.3f}")
        if name in big_names:
            continue  # what aiwarden adds around the values does not grow with the trees
        for what, fn in ((f"+ to_dict() of all {args.tree_rows:,} rows (the REST answer)",
                          ours_json),
                         (f"+ reading all {args.tree_rows:,} Explanation objects", ours_read)):
            mine, shaps, ratio, each = _paired(fn, theirs, max(3, args.pairs // 2))
            print(f"  {'  ' + what:<52} aiwarden {mine:6.2f} s  shap {shaps:6.2f} s  "
                  f"ratio {ratio:.3f}")
    print(f"  target (issue 15: within 1.1x of shap, paired and alone): "
          f"{'met' if met else 'NOT MET'}")
    return met


def _big_trees(args: argparse.Namespace) -> list[tuple[str, object, str, int]]:
    """Trees of thousands of leaves, interventional against a background of 50: forests of
    unlimited depth and a LightGBM of 2,048 leaves, fitted on 50,000 rows (the aiwarden and
    shap sides still summarise their background from the same 5,000-row reference). The
    regressor's leaves are capped by min_samples_leaf=3: shap 0.51's walk numbers nodes in
    a C ``short`` and crashes (SIGSEGV) on trees over 32,767 nodes, which an unlimited
    regressor on 50,000 rows has (~63,000). shap explains every output of a classifier at
    once (the forest classifier: both classes), aiwarden the explained class's only; the
    regressor and LightGBM have one output on both sides."""
    import lightgbm as lgb
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    bx, by = _data(50_000, args.features, seed=3)
    target = bx.to_numpy() @ np.linspace(2, 0, args.features)
    made = [
        ("RandomForestRegressor(10, unlimited depth, min leaf 3)", RandomForestRegressor(
            10, min_samples_leaf=3, random_state=0, n_jobs=1).fit(bx, target)),
        ("RandomForestClassifier(10, unlimited depth)", RandomForestClassifier(
            10, random_state=0, n_jobs=1).fit(bx, by)),
        ("LightGBM(10 trees, 2,048 leaves)", lgb.LGBMClassifier(
            n_estimators=10, num_leaves=2048, min_child_samples=5, verbose=-1,
            n_jobs=1).fit(bx, by)),
    ]
    return [(f"{name} [{_leaves(model)} leaves/tree]", model, "interventional", 50)
            for name, model in made]


def _leaves(model: object) -> str:
    """The range of leaves per tree."""
    est = getattr(model, "estimators_", None)
    if est is not None:
        n = [e.get_n_leaves() for e in est]
    else:  # LightGBM
        n = [t["num_leaves"] for t in model.booster_.dump_model()["tree_info"]]
    return f"{min(n):,}-{max(n):,}"


def _data(n: int, d: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"x{i}" for i in range(d)])
    w = np.linspace(2, 0, d)
    y = ((x.to_numpy() @ w + rng.normal(0, 1, n)) > 0).astype(int)
    return x, y


def _line(label: str, rows: int, ours: tuple[float, float], theirs: tuple[float, float]
          ) -> None:
    print(f"{label:<34} {rows / ours[0]:>10.0f} rows/s  shap {rows / theirs[0]:>10.0f} rows/s"
          f"  ratio wall {ours[0] / theirs[0]:.3f}  cpu {ours[1] / max(theirs[1], 1e-9):.3f}")


def _lime_cost(rows: int) -> None:
    """CPU per row, fixed 10,000 samples against the adaptive count, same rows and seeds."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 8)), columns=list("abcdeghi"))
    t = x.to_numpy() @ np.array([3, -2.2, 1.6, -1.1, 0.8, 0, 0, 0]) + rng.normal(0, 0.3, 2000)
    models = {"linear": LinearRegression().fit(x, t),
              "GradientBoosting(50)": GradientBoostingClassifier(n_estimators=50,
                                                                 random_state=0).fit(x, t > 0),
              "RandomForest(50)": RandomForestClassifier(50, random_state=0).fit(x, t > 0)}
    for name, model in models.items():
        fixed, grown, counts, ties = [], [], [], 0
        for row in range(rows):
            for seed in (0, 1):
                one = x.iloc[[row]]
                fixed.append(_cpu(lambda m=model, one=one, s=seed: explain_rows(
                    m, one, x, method="lime", seed=s, lime_samples=10_000), 1))
                c = time.process_time()
                e = explain_rows(model, one, x, method="lime", seed=seed).explanations[0]
                grown.append(time.process_time() - c)
                counts.append(e.samples)
                ties += any(t["ranks"] == [5, 6] for t in e.ties)
        f, g = statistics.median(fixed), statistics.median(grown)
        print(f"LIME {name:<29} fixed 10k {f:.3f} s/row, adaptive {g:.3f} s/row "
              f"(median {g / f:.1f}x, max {max(grown):.2f} s); samples used "
              f"{sorted(counts)}; rank 5/6 tie reported {ties}/{len(counts)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree-rows", type=int, default=10_000,
                    help="rows of the headline TreeExplainer comparison")
    ap.add_argument("--pairs", type=int, default=7, help="aiwarden/shap pairs per model")
    ap.add_argument("--only-10k", action="store_true", help="the headline section only")
    ap.add_argument("--only-big", action="store_true", help="the headline's big trees only "
                    "(implies --only-10k)")
    ap.add_argument("--no-big", action="store_true", help="the headline without big trees")
    ap.add_argument("--rows", type=int, default=300, help="rows through TreeExplainer "
                    "(interventional, background --background)")
    ap.add_argument("--perm-rows", type=int, default=10, help="rows through Permutation")
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--background", type=int, default=100)
    ap.add_argument("--window", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=500, help="window rows explained")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only-lime", action="store_true", help="the LIME section only")
    ap.add_argument("--lime-rows", type=int, default=6)
    args = ap.parse_args()
    if args.only_lime:
        print("start:", machine_line())
        _lime_cost(args.lime_rows)
        print("end:  ", machine_line())
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightgbm as lgb
        import shap
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    print("start:", machine_line())
    x, y = _data(5000, args.features)
    _ten_thousand(args, x, y)
    if args.only_10k or args.only_big:
        print("end:  ", machine_line())
        return
    rows = _data(args.rows, args.features, seed=1)[0]
    bg = summarise_background(x, args.background, 0)
    models = {
        "RandomForest(50, depth 8)": RandomForestClassifier(50, max_depth=8, random_state=0,
                                                            n_jobs=1).fit(x, y),
        "LightGBM(100 trees)": lgb.LGBMClassifier(n_estimators=100, verbose=-1,
                                                  n_jobs=1).fit(x, y),
    }
    for name, model in models.items():
        def ours(model=model) -> None:
            explain_rows(model, rows, x, background_size=args.background)

        def theirs(model=model) -> None:
            e = shap.TreeExplainer(model, data=bg.to_numpy(),
                                   feature_perturbation="interventional")
            e.shap_values(rows.to_numpy(), check_additivity=False)
        theirs()  # first call builds shap's tree structures' code paths; not timed
        _line(f"Tree {name}", args.rows, _timed(ours, args.repeats),
              _timed(theirs, args.repeats))

        def ours_pd(model=model) -> None:
            explain_rows(model, rows, x, tree_perturbation="tree_path_dependent")

        def theirs_pd(model=model) -> None:
            e = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
            e.shap_values(rows.to_numpy(), check_additivity=False)
        _line(f"  path-dependent {name.split('(')[0]}", args.rows,
              _timed(ours_pd, args.repeats), _timed(theirs_pd, args.repeats))

    gb = GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y)
    prow = rows.iloc[:args.perm_rows]
    w = time.perf_counter()
    explain_rows(gb, prow.iloc[:1], x, method="permutation", background_size=args.background)
    print(f"{'Permutation warm-up (numba)':<34} {time.perf_counter() - w:>10.1f} s, once "
          "per process")

    def perm_ours() -> None:
        explain_rows(gb, prow, x, method="permutation", background_size=args.background)

    def perm_theirs() -> None:
        masker = shap.maskers.Independent(bg.to_numpy(), max_samples=len(bg))
        f = lambda a: gb.predict_proba(pd.DataFrame(a, columns=x.columns))  # noqa: E731
        shap.PermutationExplainer(f, masker, seed=0)(prow.to_numpy(), max_evals=500,
                                                     silent=True)
    _line("Permutation GradientBoosting(50)", args.perm_rows, _timed(perm_ours, args.repeats),
          _timed(perm_theirs, args.repeats))

    big = pd.DataFrame(np.random.default_rng(2).normal(size=(args.window, args.features)),
                       columns=x.columns)
    rf = models["RandomForest(50, depth 8)"]
    wall, cpu = _timed(lambda: global_importance(rf, big, x, sample_size=args.sample),
                       args.repeats)
    print(f"{'Window importance (Tree)':<34} {args.window} rows, {args.sample} explained, "
          f"1000 bootstrap resamples: {wall:.2f} s wall, {cpu:.2f} s CPU")
    wall, cpu = _timed(lambda: global_importance(rf, big, x, sample_size=args.sample,
                                                 tree_perturbation="tree_path_dependent"),
                       args.repeats)
    print(f"{'  path-dependent':<34} {args.window} rows, {args.sample} explained, "
          f"1000 bootstrap resamples: {wall:.2f} s wall, {cpu:.2f} s CPU")
    _lime_cost(args.lime_rows)
    print("end:  ", machine_line())


if __name__ == "__main__":
    main()
