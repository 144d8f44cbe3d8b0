"""A prompt full of e-mail addresses through the PII evaluator: the overlap resolution
(``keep_first``) is O(n log n) now; the pairwise resolution it replaced is run in the same
process on the same spans as the baseline (it is quadratic: 5,000 addresses only).

    .venv/bin/python bench/guardrail_big_prompt.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _machine import machine_line

from aiwarden.llm.evaluators._scan import keep_first
from aiwarden.llm.evaluators.pii import CATEGORIES as ORDER
from aiwarden.llm.evaluators.pii import PiiEvaluator
from tests.llm.test_scan_overlaps import _by_definition  # the resolution it replaced

LINE = "Please contact me at someone@example.com about ticket 12345. "


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    print(machine_line(), "(1 min) at start; one process, one thread")
    ev = PiiEvaluator(field="input")
    for n in (5_000, 40_000):
        text = LINE * n
        spans = [(f.start, f.end, f.category) for f in ev.find(text)]
        new = median_s(lambda s=spans: keep_first(list(s), ORDER), 5)
        whole = median_s(lambda t=text: ev.find(t), 3)
        line = (f"{n:>6} addresses ({len(text) / 1e6:.1f} MB): find {whole:.3f} s, "
                f"keep_first {new * 1000:.1f} ms")
        if n <= 5_000:
            old = median_s(lambda s=spans: _by_definition(list(s), ORDER), 1)
            assert _by_definition(list(spans), ORDER) == keep_first(list(spans), ORDER)
            line += f", pairwise (before) {old:.2f} s: x{old / new:.0f}"
        print(line)


if __name__ == "__main__":
    main()
