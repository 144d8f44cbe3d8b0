"""LLM evaluators: precision/recall on the labelled set, and events per second per core.

Quality: ``tests/data/llm_eval/safety.jsonl`` holds labelled responses in splits. ``tune`` is
the half the patterns were tuned on; ``heldout`` was written before the evaluator (but read
while designing it); ``blind`` to ``blind9`` were written after the code, with
new wording, and scored once before any change (first-run numbers: docs/llm-evaluators.md).
The safety evaluator is the rules combined with the learned scorer (``_safety_model.py``,
trained by ``bench/train_safety_model.py`` without any blind split); its speed is printed
with and without the scorer.
Precision and recall per safety category are printed for every split; the targets
(self-harm recall >= 0.90 at precision >= 0.90) are checked on the held-out splits.

Speed: every rule-based evaluator on ~1 kB responses (dataset sentences padded with ordinary
support-chat prose), timed with process CPU time (one core: evaluators are single-threaded),
median and best of the repeats, next to a floor in the same run: one precompiled keyword regex
scanned over the same texts. "all evaluators" sums each evaluator once as ingest runs them (the
safety evaluator with its learned scorer; its rules-only line is for comparison). Each run
starts with the safety scorer's sentence memory empty (as a new server); the responses share
their filler sentences, which it scores once, so ``--no-memo`` (``memo=0``) gives the figure
for text in which no sentence repeats; ``--distinct`` also numbers every sentence of every
response (" 17." before its full stop), so no rule, gate or scorer work repeats either: the
figure for answers that share no sentence.

Usage::

    .venv/bin/python bench/llm_eval.py
    .venv/bin/python bench/llm_eval.py --events 5000 --repeats 3
    .venv/bin/python bench/llm_eval.py --speed-only --no-memo
    .venv/bin/python bench/llm_eval.py --speed-only --no-memo --distinct
    .venv/bin/python bench/llm_eval.py --groundedness [COMMIT] --repeats 9
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import re
import statistics
import time
from pathlib import Path

from _machine import cpu_model  # bench/_machine.py

_cpu_model = cpu_model  # the name bench/llm_ingest.py imports

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "llm_eval" / "safety.jsonl"
# Blind batches kept in their own file (never read by the training script nor tuned on):
# blind10 and blind11 written before the 2026-12-05 rule changes (then read while making them),
# blind12 written after them and scored once, blind13 after the retrained scorer, scored once;
# blind14 (blind_2026-12-06.jsonl) written before the 2026-12-06 means/intent families and
# scored once before them (self-harm P 1.000 R 0.725), blind10-13 read while writing them;
# blind15 (blind_2026-12-06-selfharm.jsonl) written before the intent families, scored, then
# seen (P 0.900 R 0.750); blind16 (blind_2026-12-06-late.jsonl) written after them, scored once.
BLIND_FILES = sorted(DATA.parent.glob("blind_*.jsonl"))
CATEGORIES = ("self_harm", "violence", "hate", "sexual")
HELD_OUT = ("heldout", "blind", "blind2", "blind3", "blind4", "blind5", "blind6", "blind7",
            "blind8", "blind9")
TARGET_EVENTS_PER_CORE = 2000.0
FILLER = (
    "Thanks for reaching out to our support team. I checked your account and the last invoice "
    "was issued on the 3rd; the payment went through and the receipt is in your billing page. "
    "If you want to change the plan, open Settings, choose Subscription and pick the new tier. "
    "The change applies from the next cycle and the difference is prorated automatically. "
    "Let me know if anything else looks off and I will be happy to take another look for you. "
)


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def scores(rows: list[dict], evaluator) -> dict[str, dict[str, float]]:
    """Per category (and "any" unsafe): tp, fp, fn, precision, recall on ``rows``."""
    found = evaluator.evaluate([r["text"] for r in rows])
    out = {}
    for cat in (*CATEGORIES, "any"):
        tp = fp = fn = 0
        for r, fs in zip(rows, found, strict=True):
            truth = bool(r["categories"]) if cat == "any" else cat in r["categories"]
            pred = bool(fs) if cat == "any" else any(f.category == cat for f in fs)
            tp += truth and pred
            fp += pred and not truth
            fn += truth and not pred
        out[cat] = {"tp": tp, "fp": fp, "fn": fn, "n_true": tp + fn,
                    "precision": tp / (tp + fp) if tp + fp else float("nan"),
                    "recall": tp / (tp + fn) if tp + fn else float("nan")}
    return out


def responses_1kb(rows: list[dict], n: int, seed: int = 7) -> list[str]:
    """``n`` responses of ~1,000 characters: filler prose around one or two dataset sentences."""
    rnd = random.Random(seed)
    texts = []
    for _ in range(n):
        core = " ".join(rnd.choice(rows)["text"] for _ in range(rnd.choice((1, 2))))
        pad = FILLER * 3
        cut = max(0, 1000 - len(core))
        head = rnd.randint(0, cut)
        texts.append(pad[:head] + core + " " + pad[head: head + cut - head])
    return texts


UNICODE_WORDS = ("café", "naïve", "Straße", "Ärger", "İstanbul", "ﬁle", "東京の倉庫",
                 "配送", "😀", "ok👍", "Ωmega", "résumé", "ΣΊΣΥΦΟΣ", "x\u0301y", "١٢٣")


def rag_events(rows: list[dict], n: int, seed: int = 11, unicode_share: float = 0.0
               ) -> list[tuple[str, list[str]]]:
    """``n`` retrieval-augmented events ``(answer, chunks)``: a ~1 kB answer and 2-5 chunks of
    ~300-700 characters. The chunks are labelled-set and support-prose sentences; about half
    the answer's sentences come from them (some with a word dropped or changed), the rest
    from elsewhere, so scores spread over 0..1. ``unicode_share`` of the events get accented,
    CJK and emoji words in answer and context (the Unicode path)."""
    rnd = random.Random(seed)
    pool = [s for r in rows for s in re.split(r"(?<=[.!?])\s+", r["text"]) if len(s) > 15]
    pool += re.split(r"(?<=[.!?])\s+", FILLER.strip())
    out = []
    for _ in range(n):
        uni = rnd.random() < unicode_share

        def sent(uni: bool = uni) -> str:
            s = rnd.choice(pool)
            if uni:
                w = s.split()
                for _ in range(rnd.randint(1, 3)):
                    w.insert(rnd.randrange(len(w) + 1), rnd.choice(UNICODE_WORDS))
                s = " ".join(w)
            return s

        chunks = []
        for _ in range(rnd.randint(2, 5)):
            size, parts = rnd.randint(300, 700), []
            while sum(map(len, parts)) < size:
                parts.append(sent())
            chunks.append(" ".join(parts))
        ctx_sents = [s for c in chunks for s in re.split(r"(?<=[.!?])\s+", c)]
        answer: list[str] = []
        while sum(len(a) + 1 for a in answer) < 1000:
            r = rnd.random()
            if r < 0.5:
                answer.append(rnd.choice(ctx_sents))
            elif r < 0.7:
                w = rnd.choice(ctx_sents).split()
                w[rnd.randrange(len(w))] = rnd.choice(("maybe", "never", "refund", "tomorrow"))
                answer.append(" ".join(w))
            else:
                answer.append(sent())
        out.append((" ".join(answer), chunks))
    return out


def distinct(texts: list[str]) -> list[str]:
    """The texts with a different number before every sentence's closing mark."""
    n = iter(range(10**9))
    return [re.sub(r"([.!?])(\s|$)", lambda m: f" {next(n)}{m.group(1)}{m.group(2)}", t)
            for t in texts]


def _evaluators() -> list:
    evs = []
    for module, cls, kw in (("safety", "SafetyEvaluator", {}),
                            ("safety", "SafetyEvaluator", {"model": None}),
                            ("refusal", "RefusalEvaluator", {}),
                            ("output", "OutputEvaluator", {}),
                            ("injection", "InjectionEvaluator", {}),
                            ("pii", None, {}), ("secrets", None, {})):
        try:
            mod = importlib.import_module(f"aiwarden.llm.evaluators.{module}")
        except ImportError as exc:
            print(f"  ({module}: not available: {exc})")
            continue
        if cls is None:  # another engineer's module: take its evaluator class by name
            cls = next((k for k, v in vars(mod).items() if isinstance(v, type)
                        and getattr(v, "name", None) == module and hasattr(v, "evaluate")), None)
            if cls is None:
                continue
        evs.append(getattr(mod, cls)(**kw))
    return evs


def speed(texts: list[str], repeats: int, memo: bool = True) -> list[tuple[str, float, float]]:
    """(label, events/s from the median run, events/s from the best run) per evaluator.

    ``memo=False``: the safety scorer remembers no sentence (``memo=0``), the figure for
    text in which no sentence repeats (the responses here share their filler sentences)."""
    floor_rx = re.compile(r"\b(?:kill|die|suicide|hate|sex)\w*", re.IGNORECASE)

    evs = _evaluators()
    for ev in evs:
        if ev.name == "safety" and not memo:
            ev.memo = 0

    def cpu(fn) -> tuple[float, float]:
        runs = []
        for _ in range(repeats):
            for ev in evs:  # every run starts with no sentence remembered, as a new server
                getattr(ev, "forget", lambda: None)()
            t0 = time.process_time()
            fn()
            runs.append(max(time.process_time() - t0, 1e-9))
        return statistics.median(runs), min(runs)

    n = len(texts)
    med, best = cpu(lambda: [floor_rx.findall(t) for t in texts])
    rows = [("floor: one keyword regex", n / med, n / best)]
    total_med = total_best = 0.0
    for ev in evs:
        med, best = cpu(lambda ev=ev: ev.evaluate(texts))
        rules_only = ev.name == "safety" and ev.model is None
        if not rules_only:
            total_med, total_best = total_med + med, total_best + best
        label = f"{ev.name}{' rules only' if rules_only else ''} ({','.join(ev.fields)})"
        rows.append((label, n / med, n / best))
    rows.append(("all evaluators (safety with its scorer)", n / total_med, n / total_best))
    return rows


def _module_at(commit: str, path: str = "aiwarden/llm/evaluators/groundedness.py"):
    """``path`` as it was at ``commit`` (``git show``), loaded as a module: the old code timed
    in this process next to the new, so both share the machine's load."""
    import subprocess
    import sys
    import types

    src = subprocess.run(["git", "show", f"{commit}:{path}"], check=True, capture_output=True,
                         text=True, cwd=DATA.parents[3]).stdout
    mod = types.ModuleType(f"baseline_{commit}")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(src, f"{commit}:{path}", "exec"), mod.__dict__)  # our own file, from git
    return mod


def groundedness_speed(rows: list[dict], n: int, rounds: int, baseline: str) -> None:
    """CPU µs per event of the groundedness evaluator now and at ``baseline``, alternated
    round by round on the same events (ASCII, and a quarter with Unicode words); findings
    and supports are checked equal first."""
    from aiwarden.llm.evaluators.groundedness import GroundednessEvaluator

    old_mod = _module_at(baseline)
    new, old = GroundednessEvaluator(), old_mod.GroundednessEvaluator()
    print(f"\ngroundedness: now vs {baseline}, {n} events per set, {rounds} alternated rounds, "
          f"process CPU time")
    print(f"  cpu: {cpu_model()}, {os.cpu_count()} logical cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, share in (("ASCII", 0.0), ("25% Unicode", 0.25)):
        events = rag_events(rows, n, unicode_share=share)
        for (a, c), f_new, f_old in zip(events, new.evaluate(events), old.evaluate(events),
                                        strict=True):
            assert [x.__dict__ for x in f_new] == [x.__dict__ for x in f_old], a
            assert [x.__dict__ for x in new.score(a, c).sentences] == \
                [x.__dict__ for x in old.score(a, c).sentences], a
        runs: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(rounds):
            order = (("before", old), ("after", new)) if r % 2 == 0 else \
                (("after", new), ("before", old))
            for name, ev in order:
                t0 = time.process_time()
                ev.evaluate(events)
                runs[name].append((time.process_time() - t0) / n * 1e6)
        b, a = statistics.median(runs["before"]), statistics.median(runs["after"])
        mean_a = sum(len(x) for x, _ in events) / n
        mean_c = sum(sum(map(len, c)) for _, c in events) / n
        print(f"  {label:<12} answer {mean_a:.0f} chars, context {mean_c:.0f} chars: "
              f"before {b:.0f} µs/event, after {a:.0f} µs/event (medians), "
              f"{b / a:.2f}x, identical findings and supports")


def quality(rows: list[dict]) -> bool:
    """Precision and recall per split and file; True when the quality targets are met."""
    from aiwarden.llm.evaluators.safety import SafetyEvaluator

    ev = SafetyEvaluator()
    ok = True
    print(f"labelled set: {DATA.relative_to(DATA.parents[3])}: {len(rows)} responses, "
          f"{sum(bool(r['categories']) for r in rows)} unsafe")
    for split in ("tune", *HELD_OUT):
        part = [r for r in rows if r["split"] == split]
        sc = scores(part, ev)
        tag = "tuned on" if split == "tune" else "held out"
        print(f"\n[{split}] {len(part)} responses ({tag})")
        print(f"  {'category':<10} {'n':>4} {'precision':>10} {'recall':>8} {'fp':>4} {'fn':>4}")
        for cat, s in sc.items():
            print(f"  {cat:<10} {s['n_true']:>4} {s['precision']:>10.3f} {s['recall']:>8.3f} "
                  f"{s['fp']:>4} {s['fn']:>4}")
    for path in BLIND_FILES:
        extra = load(path)
        for split in [*sorted({r["split"] for r in extra}), "all"]:
            part = [r for r in extra if split in ("all", r["split"])]
            sc = scores(part, ev)
            print(f"\n[{path.name}: {split}] {len(part)} responses (blind, own file)")
            print(f"  {'category':<10} {'n':>4} {'precision':>10} {'recall':>8} {'fp':>4} "
                  f"{'fn':>4}")
            for cat, s in sc.items():
                print(f"  {cat:<10} {s['n_true']:>4} {s['precision']:>10.3f} {s['recall']:>8.3f} "
                      f"{s['fp']:>4} {s['fn']:>4}")
    held = [r for r in rows if r["split"] in HELD_OUT]
    sh = scores(held, ev)["self_harm"]
    hit = sh["precision"] >= 0.90 and sh["recall"] >= 0.90
    ok &= hit
    print(f"\nself-harm on all held-out splits ({len(held)} responses): precision "
          f"{sh['precision']:.3f}, recall {sh['recall']:.3f} -> target >= 0.90 / 0.90: "
          f"{'met' if hit else 'NOT met'}")

    import llm_pii  # bench/llm_pii.py: PII recall and invalid-checksum false positives

    print(f"\nPII: {llm_pii.DATA.relative_to(DATA.parents[3])}")
    ok &= llm_pii.accuracy(llm_pii.load())

    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000, help="1 kB responses timed per evaluator")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (median and best)")
    ap.add_argument("--no-memo", action="store_true",
                    help="the safety scorer remembers no sentence (memo=0)")
    ap.add_argument("--distinct", action="store_true",
                    help="number every sentence, so that no sentence repeats")
    ap.add_argument("--speed-only", action="store_true", help="skip precision and recall")
    ap.add_argument("--groundedness", metavar="COMMIT", nargs="?", const="4b50d88",
                    help="only time the groundedness evaluator against its code at COMMIT "
                         "(default 4b50d88, before the ASCII fast path), alternated")
    args = ap.parse_args()
    if args.groundedness:
        groundedness_speed(load(), min(args.events, 3000), max(args.repeats, 5),
                           args.groundedness)
        return

    rows = load()
    ok = True if args.speed_only else quality(rows)

    texts = responses_1kb(rows, args.events)
    if args.distinct:
        texts = distinct(texts)
    mean = sum(map(len, texts)) / len(texts)
    print(f"\nspeed: {len(texts)} responses of {mean:.0f} characters"
          f"{', every sentence distinct' if args.distinct else ''}"
          f"{', scorer memo off' if args.no_memo else ''}, process CPU time, "
          f"median and best of {args.repeats}")
    print(f"  cpu: {cpu_model()}, {os.cpu_count()} logical cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    res = speed(texts, args.repeats, memo=not args.no_memo)
    floor = res[0][1]  # median
    print(f"  {'evaluator':<42} {'median ev/s':>12} {'best ev/s':>10} {'median x floor':>15}")
    for name, rate, top in res:
        print(f"  {name:<42} {rate:>12,.0f} {top:>10,.0f} {rate / floor:>15.4f}")
    slow = [n for n, r, _ in res[1:] if r < TARGET_EVENTS_PER_CORE]
    ok &= not slow
    print(f"  target >= {TARGET_EVENTS_PER_CORE:,.0f} events/s/core (median), each and all: "
          f"{'met' if not slow else 'NOT met by ' + ', '.join(slow)}")
    print("\nall targets met" if ok else "\nsome targets NOT met")


if __name__ == "__main__":
    main()
