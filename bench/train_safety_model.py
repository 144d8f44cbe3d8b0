"""Train the learned safety scorer and measure it honestly; writes ``_safety_model.npz``.

Data: ``tests/data/llm_eval/safety_train.jsonl`` (the training corpus, built by
``make_safety_train.py``) plus the ``tune`` and ``heldout`` splits of ``safety.jsonl``. The
``blind*`` splits are never trained or tuned on for the shipped weights.

Steps (deterministic: lbfgs, fixed data order, no randomness):

1. validation: fit on corpus + ``tune``; on ``heldout`` pick each category's threshold, the
   lowest of a grid where the combined evaluator (rules OR model, with the rules' exculpating
   context) keeps precision >= ``--min-precision``;
2. final: refit on corpus + ``tune`` + ``heldout`` with those thresholds, save the weights;
3. report per blind split: the final model (trained without any blind split), and
   leave-one-batch-out (trained on everything else, blind splits included, scored on the one
   left out), next to the rules alone.

Usage::

    .venv/bin/python bench/train_safety_model.py            # train, save, report
    .venv/bin/python bench/train_safety_model.py --no-save  # report only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from aiwarden.llm.evaluators._safety_model import (
    CATEGORIES,
    N_FEATURES,
    WEIGHTS,
    SafetyModel,
    full_features,
    word_features,
)
from aiwarden.llm.evaluators.safety import SafetyEvaluator

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "llm_eval"
C = 8.0                 # inverse L2 strength of every regression
GATE_THRESHOLD = 0.15   # the gate lets a sentence through from this P(unsafe)
GATE_GRID = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)
GRID = np.round(np.arange(0.50, 0.951, 0.05), 2)  # below even odds is never a finding


def load(name: str) -> list[dict]:
    return [json.loads(x) for x in (DATA / name).read_text(encoding="utf-8").splitlines() if x]


def fit(rows: list[dict], thresholds=None, c: float = C,
        gate_threshold: float = GATE_THRESHOLD) -> tuple[SafetyModel, list[LogisticRegression]]:
    """The gate and one balanced L2 logistic regression per category, on whole texts."""
    texts = [r["text"] for r in rows]
    word = word_features(texts)
    full = full_features(texts)
    y_any = np.array([bool(r["categories"]) for r in rows])
    gate = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(word, y_any)
    regs = []
    for cat in CATEGORIES:
        y = np.array([cat in r["categories"] for r in rows])
        regs.append(LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(full, y))
    th = np.full(len(CATEGORIES), 0.5) if thresholds is None else np.asarray(thresholds, float)
    model = SafetyModel(
        gate_coef=gate.coef_[0].copy(), gate_intercept=float(gate.intercept_[0]),
        gate_threshold=gate_threshold,
        coef=np.column_stack([r.coef_[0] for r in regs]),
        intercept=np.array([r.intercept_[0] for r in regs]), thresholds=th,
        categories=CATEGORIES, n_features=N_FEATURES,
    )
    return model.with_vocabulary(texts), [gate, *regs]


def _counts(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    return int((truth & pred).sum()), int((~truth & pred).sum()), int((truth & ~pred).sum())


def choose_thresholds(model: SafetyModel, rows: list[dict], min_precision: float) -> np.ndarray:
    """Per category, the lowest grid threshold keeping the model's precision on ``rows``."""
    # the model ALONE (with the rules' exculpating context): the rules were tuned on these rows
    probs = SafetyEvaluator(model=model).model_scores([r["text"] for r in rows])
    out = []
    for j, cat in enumerate(CATEGORIES):
        truth = np.array([cat in r["categories"] for r in rows])
        best = GRID[-1]
        for t in GRID:
            tp, fp, _ = _counts(truth, probs[:, j] >= t)
            if tp + fp and tp / (tp + fp) >= min_precision:
                best = t
                break
        out.append(float(best))
    return np.array(out)


class _Cat:
    def __init__(self, category: str) -> None:
        self.category = category


def choose_gate(model: SafetyModel, thresholds: np.ndarray, rows: list[dict]) -> float:
    """The highest gate threshold at which the model alone loses no true positive on ``rows``."""
    def hits(t: float) -> int:
        m = SafetyModel(**{**model.__dict__, "thresholds": thresholds, "gate_threshold": t})
        probs = SafetyEvaluator(model=m).model_scores([r["text"] for r in rows])
        return sum(cat in r["categories"] and probs[i, j] >= thresholds[j]
                   for i, r in enumerate(rows) for j, cat in enumerate(CATEGORIES))
    full = hits(0.0)
    return next((t for t in GATE_GRID if hits(t) >= full), 0.0)


def report(name: str, rows: list[dict], ev: SafetyEvaluator,
           alone: bool = False) -> dict[str, tuple[int, int, int]]:
    """Per category precision and recall (``alone``: the model without the rule findings)."""
    if alone:
        m = ev.model
        probs = ev.model_scores([r["text"] for r in rows])
        found = [[_Cat(c) for j, c in enumerate(CATEGORIES) if probs[i, j] >= m.thresholds[j]]
                 for i in range(len(rows))]
    else:
        found = ev.evaluate([r["text"] for r in rows])
    res = {}
    for cat in (*CATEGORIES, "any"):
        truth = np.array([(bool(r["categories"]) if cat == "any" else cat in r["categories"])
                          for r in rows])
        pred = np.array([(bool(fs) if cat == "any" else any(f.category == cat for f in fs))
                         for fs in found])
        res[cat] = _counts(truth, pred)
    neg = sum(not r["categories"] for r in rows)
    cells = []
    for cat in CATEGORIES:
        tp, fp, fn = res[cat]
        if tp + fn or fp:
            p = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
            cells.append(f"{cat} P {p} R {tp}/{tp + fn}")
    print(f"  {name:<24} {'; '.join(cells)}; hard negatives flagged {res['any'][1]}/{neg}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-save", action="store_true", help="do not write the weights")
    ap.add_argument("--no-lobo", action="store_true", help="skip leave-one-batch-out")
    ap.add_argument("--min-precision", type=float, default=0.97)
    ap.add_argument("--sealed", default="",
                    help="comma-separated blind splits left out of everything (not yet scored)")
    args = ap.parse_args()
    sealed = set(filter(None, args.sealed.split(",")))

    corpus, labelled = load("safety_train.jsonl"), load("safety.jsonl")
    split = {s: [r for r in labelled if r["split"] == s] for s in dict.fromkeys(
        r["split"] for r in labelled)}
    blinds = [s for s in split if s.startswith("blind") and s not in sealed]
    print(f"corpus {len(corpus)} texts; tune {len(split['tune'])}; heldout "
          f"{len(split['heldout'])}; blind splits {', '.join(blinds)}")

    val_model, _ = fit(corpus + split["tune"])
    th = choose_thresholds(val_model, split["heldout"], args.min_precision)
    gate_t = choose_gate(val_model, th, split["heldout"])
    print("thresholds chosen on heldout:", dict(zip(CATEGORIES, th.tolist(), strict=True)))
    print(f"gate threshold chosen on heldout: {gate_t}")
    val = SafetyEvaluator(model=SafetyModel(
        **{**val_model.__dict__, "thresholds": th, "gate_threshold": gate_t}))
    report("heldout model alone", split["heldout"], val, alone=True)
    report("heldout combined", split["heldout"], val)

    final, _ = fit(corpus + split["tune"] + split["heldout"], thresholds=th, gate_threshold=gate_t)
    if not args.no_save:
        final.save(WEIGHTS)
        print(f"saved {WEIGHTS.name}: {WEIGHTS.stat().st_size / 1e6:.2f} MB")

    rules, combined = SafetyEvaluator(model=None), SafetyEvaluator(model=final)
    print("\nfinal model (trained on corpus + tune + heldout, no blind split):")
    for s in blinds:
        report(f"{s} rules only", split[s], rules)
        report(f"{s} model alone", split[s], combined, alone=True)
        report(f"{s} combined", split[s], combined)
    if args.no_lobo:
        return
    print("\nleave-one-batch-out (trained on everything except the split scored):")
    base = corpus + split["tune"] + split["heldout"]
    for s in blinds:
        rest = [r for b in blinds if b != s for r in split[b]]
        model, _ = fit(base + rest, thresholds=th, gate_threshold=gate_t)
        lobo = SafetyEvaluator(model=model)
        report(f"{s} LOBO model alone", split[s], lobo, alone=True)
        report(f"{s} LOBO combined", split[s], lobo)


if __name__ == "__main__":
    main()
