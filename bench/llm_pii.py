"""PII and secrets evaluators: accuracy on the labelled set, and speed on 1 kB texts.

Accuracy, on tests/data/llm_eval/pii.jsonl per split (``dev`` was looked at while writing the
detector, ``heldout`` was written before tuning): recall and precision per category (a labelled
span is recalled by a finding of its category that overlaps it), the share of invalid-checksum
texts with any PII finding (target < 1 %) and the share of lookalike texts (order ids, ISBNs,
timestamps, versions, prices) with any finding.

Speed: PII + secrets together on 1 kB texts (labelled texts padded with support-chat prose),
one core, events per second (target >= 2,000) and the ratio to a floor in the same run: one
``re.findall(r"\\w+")`` tokenising pass over the same texts, the least any text evaluator does.

Usage::

    .venv/bin/python bench/llm_pii.py
    .venv/bin/python bench/llm_pii.py --events 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from aiwarden.llm.evaluators.pii import CATEGORIES, PiiEvaluator
from aiwarden.llm.evaluators.secrets import SecretsEvaluator

DATA = Path(__file__).parents[1] / "tests" / "data" / "llm_eval" / "pii.jsonl"
PROSE = ("Thanks for reaching out to our support team. I checked your account and the last "
         "payment went through on Tuesday, so the subscription stays active until next month. "
         "If the app still shows an error after you update it to the latest release, clear the "
         "cache in the settings and sign in again. ")


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines()]


def accuracy(rows: list[dict]) -> bool:
    """Prints the table per split; True when both splits meet the issue's PII targets."""
    pii = PiiEvaluator()
    met = True
    for split in ("dev", "heldout"):
        part = [r for r in rows if r["split"] == split]
        tp: dict[str, int] = defaultdict(int)
        gold: dict[str, int] = defaultdict(int)
        pred: dict[str, int] = defaultdict(int)
        flagged = defaultdict(int)
        kinds = defaultdict(int)
        for r in part:
            found = pii.find(r["text"])
            kinds[r["kind"]] += 1
            flagged[r["kind"]] += bool(found)
            for s in r["spans"]:
                gold[s["category"]] += 1
                tp[s["category"]] += any(f.category == s["category"] and f.start < s["end"]
                                         and s["start"] < f.end for f in found)
            for f in found:
                pred[f.category] += 1
        print(f"\n{split}: {len(part)} texts")
        print(f"  {'category':<10} {'gold':>5} {'recall':>7} {'precision':>9}")
        for c in CATEGORIES:
            rec = tp[c] / gold[c] if gold[c] else float("nan")
            prec = tp[c] / pred[c] if pred[c] else float("nan")
            print(f"  {c:<10} {gold[c]:>5} {rec:>7.3f} {prec:>9.3f}")
        all_rec = sum(tp.values()) / max(1, sum(gold.values()))
        print(f"  formatted PII recall {all_rec:.3f} (target >= 0.98)")
        for k, target in (("invalid_checksum", "target < 1 %"), ("lookalike", "no target")):
            print(f"  {k} texts with a finding: {flagged[k]}/{kinds[k]} "
                  f"({flagged[k] / max(1, kinds[k]):.1%}; {target})")
        fp_invalid = flagged["invalid_checksum"] / max(1, kinds["invalid_checksum"])
        met &= all_rec >= 0.98 and fp_invalid < 0.01
    return met


def speed(rows: list[dict], n: int, repeats: int) -> None:
    r = random.Random(13)
    texts = []
    for _ in range(n):
        t = " ".join(r.choice(rows)["text"] for _ in range(2))
        t = (PROSE * 4)[: 1024 - len(t) - 1] + " " + t
        texts.append(t)
    pii, sec = PiiEvaluator(), SecretsEvaluator()
    word = re.compile(r"\w+")

    def ours() -> None:
        pii.evaluate(texts)
        sec.evaluate(texts)

    def floor() -> None:
        for t in texts:
            word.findall(t)

    best = {"ours": float("inf"), "floor": float("inf")}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("floor", floor)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    avg = sum(map(len, texts)) / len(texts)
    print(f"\nspeed: {n} texts of {avg:.0f} characters, best of {repeats}, one core")
    print(f"  pii + secrets: {n / best['ours']:,.0f} events/s (target >= 2,000)")
    print(f"  floor (one \\w+ pass): {n / best['floor']:,.0f} events/s; "
          f"ours / floor time ratio {best['ours'] / best['floor']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = load()
    print("PII targets met" if accuracy(rows) else "PII targets NOT met")
    speed(rows, args.events, args.repeats)


if __name__ == "__main__":
    main()
