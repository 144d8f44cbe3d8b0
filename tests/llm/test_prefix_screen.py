"""The literal-prefix screen finds exactly the matches ``finditer`` finds; the batched gate
scores exactly what the per-sentence gate scores.

Checked on every safety rule (lower-case form, as the evaluator runs it on ASCII text), on
hand-made patterns with the constructs the prefix derivation walks (groups, optional and
repeated parts, character sets, lookarounds), and on random texts built from the rules' own
words, so that matches, near misses and overlapping candidates all occur.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from aiwarden.llm.evaluators import _safety_patterns as P
from aiwarden.llm.evaluators._prefix import Screened, have_automaton, literal_prefixes
from aiwarden.llm.evaluators._safety_model import load_default
from aiwarden.llm.evaluators.safety import _screened

DATA = Path(__file__).resolve().parents[1] / "data" / "llm_eval" / "safety.jsonl"


def _texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    words = sorted({w for r in P.RULES for w in r.anchors} | {
        "you", "should", "just", "kill", "yourself", "the", "and", "'d", "'s", "be", "better",
        "off", "dead", "don't", "a", "of", "is", "to", "die", "it", "end", "pills", "all",
        "at", "once", "him", "her", "i'll", "self-harm", "about", "x", "-", "'", "\n"})
    seps = [" ", " ", " ", ", ", ". ", "! ", "? ", "\n", "'", "-", ""]
    return ["".join(rnd.choice(words) + rnd.choice(seps) for _ in range(rnd.randint(1, 40)))
            for _ in range(n)]


@pytest.mark.parametrize("automaton", [False, True])
def test_every_rule_screened_finds_what_finditer_finds(automaton: bool) -> None:
    """Prefixes found by str.find, and by the fast extra's Aho-Corasick automaton."""
    if automaton and not have_automaton():
        pytest.skip("the fast extra (pyahocorasick) is not installed")
    # random word soup, the patterns as text, and the labelled responses (lower-cased, as the
    # evaluator reads ASCII text): matches, near misses and overlapping candidates
    labelled = [json.loads(line)["text"].lower() for line in
                DATA.read_text(encoding="utf-8").splitlines() if line]
    texts = _texts(1500, 1) + [r.pattern.lower() for r in P.RULES] + labelled
    screened = 0
    hits = 0
    for rx in P.COMPILED_LOWER:
        s = Screened(rx, k=6, min_len=2, automaton=automaton)
        assert (s._automaton is not None) == (automaton and s.prefixes is not None)
        assert s.prefixes == _screened(rx).prefixes
        screened += s.prefixes is not None
        for t in texts:
            want = [m.span() for m in rx.finditer(t)]
            hits += len(want)
            assert [m.span() for m in s.finditer(t)] == want, (rx.pattern[:60], t)
            # a window, as the evaluator runs a rule on one sentence
            a, b = len(t) // 4, 3 * len(t) // 4
            assert ([m.span() for m in s.finditer(t, a, b)]
                    == [m.span() for m in rx.finditer(t, a, b)])
    assert screened >= len(P.RULES) // 2  # most rules are screened
    assert hits > 300  # the texts hold matches


@pytest.mark.parametrize("pattern, text", [
    (r"\b(?:ab|cd)e", "abe cde xabe ab e cdcde"),
    (r"\bx(?:yz)?w", "xw xyzw axw xyw"),
    (r"(?<!no\s)\bgo\b", "go no go ago go"),
    (r"\b[ab]c+d", "acd bccd ccd abcd"),
    (r"\b(?:a|b){2,3}z", "abz bbbz az aaaaz"),
    (r"(?:x\s)*yz", "x x yz yz xyz"),
    (r"\bone|\bon(?=e)", "one onion on one"),
])
def test_constructs(pattern: str, text: str) -> None:
    rx = re.compile(pattern)
    for automaton in (False, None):
        s = Screened(rx, k=6, min_len=1, automaton=automaton)
        assert [m.span() for m in s.finditer(text)] == [m.span() for m in rx.finditer(text)]
        assert ([m.span() for m in s.finditer("\U0001f600é " + text, 3)]
                == [m.span() for m in rx.finditer("\U0001f600é " + text, 3)])


def test_the_fast_extra_gives_the_same_safety_analysis(monkeypatch) -> None:
    """With the automaton (rule prefixes, the push-word screen) and without it: the same
    findings and the same dropped candidates, on the labelled responses and word soup."""
    if not have_automaton():
        pytest.skip("the fast extra (pyahocorasick) is not installed")
    from aiwarden.llm.evaluators import safety

    texts = [json.loads(line)["text"] for line in
             DATA.read_text(encoding="utf-8").splitlines() if line] + _texts(1500, 4)
    texts += [t.upper() for t in texts[:300]] + [" ".join(safety._PUSH_WORDS)]
    fast = safety.SafetyEvaluator(memo=0, model=None)
    assert safety._PUSH_AUTOMATON is not None
    assert any(s._automaton is not None for s in fast._rules_screened)
    want = [fast._analyse(t, True)[:2] for t in texts]
    plain = safety.SafetyEvaluator(memo=0, model=None)
    plain._rules_screened = [Screened(rx, k=6, min_len=2, automaton=False)
                             for rx in plain._rules_lower]
    monkeypatch.setattr(safety, "_PUSH_AUTOMATON", None)
    got = [plain._analyse(t, True)[:2] for t in texts]
    assert got == want
    assert sum(bool(f) for f, _ in want) > 300 and sum(bool(d) for _, d in want) > 100


def test_prefix_derivation() -> None:
    assert literal_prefixes(r"\b(?:kill|stab)\s+him") == ["kill", "stab"]
    assert literal_prefixes(r"\b(?:most\s+)?best\s+way") == ["best ", "most"]  \
        or literal_prefixes(r"\b(?:most\s+)?best\s+way") == ["best", "most"]
    assert literal_prefixes(r"\w+ing") is None  # may start anywhere: no screen
    assert literal_prefixes(r"(?i)kill") is None
    assert literal_prefixes("kill", re.IGNORECASE) is None


def test_batched_gate_equals_the_sentence_gate() -> None:
    m = load_default()
    rnd = random.Random(5)
    alphabet = [*"abcdefghij klmnop ", "the ", "you ", "kill ", "die ", "\u03a3", "\u0130",
                "\u00df", ".", "'", "\n", "_"]
    sents = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 80)))
             for _ in range(4000)]
    sents += ["", "a", "the the the the", "Kill kill yourself", "nul\0inside"]
    a, b = m.gate_proba_words(sents), m.gate_proba_batch(sents)
    assert np.allclose(a, b, rtol=0, atol=1e-12)
    assert ((a >= m.gate_threshold) == (b >= m.gate_threshold)).all()
