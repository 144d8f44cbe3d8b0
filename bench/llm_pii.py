"""PII and secrets evaluators: accuracy on the labelled set, and speed on 1 kB texts.

Accuracy, on tests/data/llm_eval/pii.jsonl per split (``dev`` was looked at while writing the
detector, ``heldout`` was written before tuning): recall and precision per category (a labelled
span is recalled by a finding of its category that overlaps it), the share of invalid-checksum
texts with any PII finding (target < 1 %) and the share of lookalike texts (order ids, ISBNs,
timestamps, versions, prices) with any finding.

Speed: PII + secrets together on 1 kB texts, two workloads (labelled PII texts padded with
support-chat prose; plain prose with no PII), one core, events per second by wall clock and per
CPU-second (target >= 2,000), medians of interleaved runs, with the CPU model and the load
average, and ratios to two baselines timed in the same loop: a floor (one ``re.findall(r"\\w+")``
pass, the least any text evaluator does) and a naive scanner (every candidate pattern of both
evaluators over the whole text, without the pre-checks).

Usage::

    .venv/bin/python bench/llm_pii.py
    .venv/bin/python bench/llm_pii.py --events 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

import pii_blind
from _machine import machine_line

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


def blind(seeds: list[int], lines: int) -> None:
    """Scores fresh blind sets of bench/pii_blind.py (own templates and formats, a new seed
    draws new values): recall, and the share of invalid and lookalike lines flagged."""
    for seed in seeds:
        res = pii_blind.score(pii_blind.generate(seed, lines))
        per = " ".join(f"{c} {h / g:.3f}" for c, (h, g) in res["recall"].items())
        print(f"\nblind set seed {seed}, {lines} lines: recall {res['overall_recall']:.3f} "
              f"({per}); invalid checksums flagged {res['invalid_fp_share']:.1%}, "
              f"lookalikes flagged {res['lookalike_fp_share']:.1%}")


def _naive_patterns() -> list[re.Pattern[str]]:
    """Every candidate pattern of both evaluators, as a scanner without gates would run them."""
    from aiwarden.llm.evaluators import pii as p
    from aiwarden.llm.evaluators import secrets as s

    return [p._EMAIL, p._IBAN_HEAD, p._CARD, p._SSN, p._BARE_SSN, p._IPV4, p._IPV6, p._PHONE,
            p._BARE_PHONE, *(r.pattern for r in s._SHAPE_RULES), s._AWS_SECRET, s._ASSIGN]


def speed(rows: list[dict], n: int, repeats: int) -> None:
    """Events per second of PII + secrets on 1 kB texts, medians of ``repeats`` interleaved
    runs, against two baselines timed in the same loop: a floor (one ``\\w+`` pass, the least
    any text evaluator does) and a naive scanner (every candidate regex over the whole text,
    no pre-checks, no validation: what the markers, digit runs and gates save)."""
    r = random.Random(13)
    dense = []
    for _ in range(n):
        t = " ".join(r.choice(rows)["text"] for _ in range(2))
        dense.append((PROSE * 4)[: 1024 - len(t) - 1] + " " + t)
    words = PROSE.split()
    plain = []
    for _ in range(n):  # a typical answer: 1 kB of prose, no PII, no secret
        r.shuffle(words)
        plain.append((" ".join(words) * 5)[:1024])
    pii, sec = PiiEvaluator(), SecretsEvaluator()
    word = re.compile(r"\w+")
    naive_patterns = _naive_patterns()

    def ours(texts: list[str]) -> None:
        pii.evaluate(texts)
        sec.evaluate(texts)

    def floor(texts: list[str]) -> None:
        for t in texts:
            word.findall(t)

    def naive(texts: list[str]) -> None:
        for t in texts:
            for pat in naive_patterns:
                for _ in pat.finditer(t):
                    pass

    print(f"\nspeed: {machine_line()} (1 min) at start; one process, one thread")
    print(f"  medians of {repeats} interleaved runs; events/s by wall clock and per CPU-second "
          f"(process time: what one core does when the machine is shared)")
    for label, texts in (("1 kB with PII (2 labelled rows each)", dense),
                         ("1 kB prose, no PII", plain)):
        wall: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        base_texts = texts[: max(1, len(texts) // 10)]  # the naive scanner is slow
        for _ in range(repeats):
            for name, fn, ts in (("ours", ours, texts), ("floor", floor, texts),
                                 ("naive", naive, base_texts)):
                w0, c0 = time.perf_counter(), time.process_time()
                fn(ts)
                wall[name].append(len(ts) / (time.perf_counter() - w0))
                cpu[name].append(len(ts) / max(1e-9, time.process_time() - c0))
        med = {k: statistics.median(v) for k, v in wall.items()}
        medc = {k: statistics.median(v) for k, v in cpu.items()}
        avg = sum(map(len, texts)) / len(texts)
        print(f"\n  {label}: {len(texts)} texts of {avg:.0f} characters")
        print(f"  {'':<34} {'events/s wall':>14} {'per CPU-s':>10}")
        for name, what in (("ours", "pii + secrets"), ("floor", "floor: one \\w+ pass"),
                           ("naive", "naive: every regex, no pre-check")):
            print(f"  {what:<34} {med[name]:>14,.0f} {medc[name]:>10,.0f}")
        print(f"  pii + secrets per CPU-s {medc['ours']:,.0f} (target >= 2,000 per core); "
              f"time vs floor x{medc['floor'] / medc['ours']:.1f}, "
              f"naive vs ours x{medc['ours'] / medc['naive']:.1f} slower")
    load1 = os.getloadavg()
    print(f"\n  load average {load1[0]:.2f} (1 min) at the end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--blind-seeds", type=int, nargs="*", default=[11, 12, 13],
                    help="seeds of fresh blind sets (bench/pii_blind.py) to score")
    ap.add_argument("--blind-lines", type=int, default=2000)
    args = ap.parse_args()
    rows = load()
    print("PII targets met" if accuracy(rows) else "PII targets NOT met")
    blind(args.blind_seeds, args.blind_lines)
    speed(rows, args.events, args.repeats)


if __name__ == "__main__":
    main()
