"""The evaluator stage of LLM ingest: events per second per core on ~1 kB responses.

What ``aiwarden.monitoring.llm_ingest.ingest_llm_events`` does to a batch before the database:
check the rows (``parse_events``), run every installed evaluator on the texts it reads
(``evaluate``: findings and descriptor columns), and turn the findings into the stored JSON
(``Finding.to_dict``). Timed with process CPU time (one core), median and best of
``--repeats``, next to a floor in the same run: one precompiled keyword regex over the same
outputs. The evaluators run in this process (``AIWARDEN_LLM_EVAL_WORKERS=0`` unless set: a
worker's CPU is not this process's), and each run starts with no sentence remembered by the
safety scorer, as a new server; ``--no-memo`` turns that memory off (``memo=0``: the figure
for text in which no sentence repeats, while these responses share their filler sentences).

The events are the labelled set's responses padded to ~1 kB (bench/llm_eval.py); half carry
a short user prompt, none retrieved context (the common chatbot case).

Usage::

    .venv/bin/python bench/llm_ingest.py
    .venv/bin/python bench/llm_ingest.py --events 3000 --repeats 3 --profile
    .venv/bin/python bench/llm_ingest.py --distinct   # no sentence repeats, memo off
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import llm_eval  # bench/llm_eval.py: the labelled set and its 1 kB responses

PROMPTS = ("Where is my order?", "How do I change my plan?", "I feel awful today.",
           "Can you help me with my invoice, my email is jane.doe@example.com?")


def rows(n: int, seed: int = 11) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i, text in enumerate(llm_eval.responses_1kb(llm_eval.load(), n)):
        row = {"request_id": f"r{i}", "output": text, "tokens_out": len(text) // 4,
               "provider": "openai", "model": "gpt-4o-mini", "tags": {"locale": "fr"}}
        if i % 2:
            row["input"] = [{"role": "system", "content": "You are a support assistant."},
                            {"role": "user", "content": rnd.choice(PROMPTS)}]
        out.append(row)
    return out


def stage(batch: list[dict]) -> int:
    from aiwarden.llm.events import parse_events
    from aiwarden.monitoring.llm_ingest import evaluate

    good, _ = parse_events(batch)
    events = [e for _, e in good]
    findings, _, _, _ = evaluate(events)
    return sum(len([f.to_dict() for f in fs]) for fs in findings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000, help="events per ingest call")
    ap.add_argument("--no-memo", action="store_true",
                    help="the safety scorer remembers no sentence (memo=0)")
    ap.add_argument("--distinct", action="store_true",
                    help="number every sentence of every output (nothing repeats; implies "
                         "--no-memo): the figure for answers that share no sentence")
    ap.add_argument("--profile", action="store_true",
                    help="print a profile (pyinstrument when installed, else cProfile)")
    args = ap.parse_args()

    os.environ.setdefault("AIWARDEN_LLM_EVAL_WORKERS", "0")
    from aiwarden.monitoring.llm_ingest import _evaluators

    data = rows(args.events)
    if args.distinct:
        args.no_memo = True
        for r, text in zip(data, llm_eval.distinct([r["output"] for r in data]), strict=True):
            r["output"] = text
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    stage(batches[0][:10])  # load the evaluators (and the safety model) untimed
    floor_rx = re.compile(r"\b(?:kill|die|suicide|hate|sex)\w*", re.IGNORECASE)

    evs = _evaluators()[0]
    for ev in evs:
        if ev.name == "safety" and args.no_memo:
            ev.memo = 0

    def cpu(fn) -> tuple[float, float]:
        runs = []
        for _ in range(args.repeats):
            for ev in evs:
                getattr(ev, "forget", lambda: None)()
            t0 = time.process_time()
            fn()
            runs.append(max(time.process_time() - t0, 1e-9))
        return statistics.median(runs), min(runs)

    floor = len(data) / cpu(lambda: [floor_rx.findall(r["output"]) for r in data])[0]
    med, best = cpu(lambda: [stage(b) for b in batches])
    rate, top = len(data) / med, len(data) / best
    mean = sum(len(r["output"]) for r in data) / len(data)
    print(f"{len(data)} events, outputs of {mean:.0f} characters, batches of {args.batch}, "
          f"process CPU time, median (best) of {args.repeats}"
          f"{', every sentence distinct' if args.distinct else ''}"
          f"{', safety memo off' if args.no_memo else ''}")
    print(f"cpu: {llm_eval._cpu_model()}, {os.cpu_count()} logical cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  floor (one keyword regex)          {floor:>10,.0f} events/s/core")
    print(f"  ingest evaluator stage             {rate:>10,.0f} events/s/core "
          f"({rate / floor:.4f} x floor; best {top:,.0f})")
    print(f"  target >= 2,000 events/s/core: {'met' if rate >= 2000 else 'NOT met'}")
    if args.profile:
        try:
            from pyinstrument import Profiler
        except ImportError:  # not in the dev extra: the standard library's profiler
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(lambda: [stage(b) for b in batches])
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
            return
        pi = Profiler(interval=0.0005)
        with pi:
            for b in batches:
                stage(b)
        print(pi.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
