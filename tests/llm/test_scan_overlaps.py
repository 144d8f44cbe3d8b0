"""Overlap resolution of the span evaluators (aiwarden.llm.evaluators._scan.keep_first):
the same answer as the definition (checked pairwise, quadratic) on random spans, and a
prompt of 40,000 e-mail addresses resolved to 40,000 spans (the timing is in
bench/guardrail_big_prompt.py, not here)."""

from __future__ import annotations

import random

from aiwarden.llm.evaluators._scan import keep_first
from aiwarden.llm.evaluators.pii import PiiEvaluator


def _by_definition(found, order):
    rank = {c: i for i, c in enumerate(order)}
    inner = {f for f in found for g in found
             if g[0] <= f[0] and f[1] <= g[1] and (g[0], g[1]) != (f[0], f[1])}
    kept = []
    for s, e, c in sorted(found, key=lambda f: (f in inner, rank[f[2]], f[0])):
        if not any(ks < e and s < ke for ks, ke, _ in kept):
            kept.append((s, e, c))
    return sorted(kept)


def test_keep_first_matches_the_pairwise_definition_on_random_spans() -> None:
    rng = random.Random(7)
    order = ["a", "b", "c"]
    for _ in range(2000):
        n = rng.randint(0, 12)
        found = []
        for _ in range(n):
            s = rng.randint(0, 30)
            found.append((s, s + rng.randint(1, 8), rng.choice(order)))
        assert keep_first(list(found), order) == (
            _by_definition(found, order) if len(found) >= 2 else found), found


def test_forty_thousand_emails_are_forty_thousand_spans() -> None:
    text = "Please contact me at someone@example.com about ticket 12345. " * 40_000
    found = PiiEvaluator(field="input").find(text)
    assert len(found) == 40_000
    assert {f.category for f in found} == {"email"}
    assert text[found[-1].start:found[-1].end] == "someone@example.com"
