"""Groundedness: lexical support computed by hand, embedding support vs scikit-learn."""

from __future__ import annotations

import math
import random
import re
from itertools import pairwise

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from aiwarden.errors import DataError, ParameterError
from aiwarden.llm.descriptors import descriptors, run_evaluators
from aiwarden.llm.evaluators import groundedness
from aiwarden.llm.evaluators.groundedness import STOP_WORDS, GroundednessEvaluator, split_sentences
from aiwarden.llm.events import LLMEvent

CONTEXT = ["The warranty covers battery defects for two years from purchase.",
           "Refunds are issued within 14 days to the original payment method."]
ANSWER = ("The warranty covers battery defects for two years. "
          "Refunds go to the original payment method within 14 days. "
          "You also get a free phone every month!")


def test_lexical_support_matches_hand_computation() -> None:
    r = GroundednessEvaluator().score(ANSWER, CONTEXT)
    s1, s2, s3 = r.sentences
    # s1 content words: warranty covers battery defects two years -> all 6 in chunk 0,
    # 5 bigrams all in chunk 0 -> (1 + 1) / 2
    assert (s1.support, s1.chunk, s1.supported) == (1.0, 0, True)
    # s2: refunds go original payment method within 14 days -> 7 of 8 words in chunk 1
    # ("go" not); its 7 bigrams (refunds,go) (go,original) (original,payment)
    # (payment,method) (method,within) (within,14) (14,days): chunk 1 has original-payment,
    # payment-method, within-14, 14-days -> 4/7
    assert s2.support == pytest.approx((7 / 8 + 4 / 7) / 2) and s2.chunk == 1
    # s3: get free phone every month -> none in the context
    assert s3.support == 0.0 and not s3.supported
    assert r.score == pytest.approx(2 / 3) and r.method == "lexical"
    assert ANSWER[s3.start:s3.end] == "You also get a free phone every month!"


def test_findings_per_unsupported_sentence_and_the_flag_threshold() -> None:
    g = GroundednessEvaluator()
    [found] = g.evaluate([(ANSWER, CONTEXT)])
    assert [(f.category, ANSWER[f.start:f.end]) for f in found] == [
        ("ungrounded", "You also get a free phone every month!")]
    assert found[0].severity == pytest.approx(1 / 3) and found[0].field == "output"
    # flagged only when the score is below flag_below
    assert GroundednessEvaluator(flag_below=0.5).evaluate([(ANSWER, CONTEXT)]) == [[]]
    # context as one text with blank-line separated chunks, as run on ingest; none -> nothing
    assert g.evaluate([(ANSWER, "\n\n".join(CONTEXT)), (ANSWER, ""), (ANSWER, [])]) == \
        [found, [], []]


def test_descriptor_column_equals_the_score() -> None:
    events = [LLMEvent("a", ANSWER, context=CONTEXT), LLMEvent("b", "Hello.", context=[]),
              LLMEvent("c", CONTEXT[0], context=CONTEXT)]
    findings, ran, failed = run_evaluators(events, [GroundednessEvaluator()])
    assert ran == {"groundedness"} and not failed
    col = descriptors(events, findings, ran=ran)["llm_groundedness"]
    assert col[0] == pytest.approx(2 / 3) and math.isnan(col[1]) and col[2] == 1.0


def test_embedding_support_is_sklearns_cosine_similarity() -> None:
    rng = np.random.default_rng(3)
    answer = "First claim here. Second claim there. Third claim anywhere."
    sent = rng.normal(size=(3, 8))
    chunks = rng.normal(size=(4, 8))
    chunks[1] = sent[0] * 2.0  # the first sentence is exactly chunk 1 (cosine 1)
    g = GroundednessEvaluator(cosine_threshold=0.6)
    r = g.score(answer, ["a", "b", "c", "d"], sentence_embeddings=sent, chunk_embeddings=chunks)
    ref = cosine_similarity(sent, chunks)
    assert [s.support for s in r.sentences] == pytest.approx(ref.max(axis=1).tolist())
    assert [s.chunk for s in r.sentences] == ref.argmax(axis=1).tolist()
    assert r.method == "embedding" and r.sentences[0].supported
    assert r.score == pytest.approx(float(np.mean(ref.max(axis=1) >= 0.6)))


def test_cannot_judge_says_why_and_bad_input_names_the_field() -> None:
    g = GroundednessEvaluator()
    assert g.score("Sure! Ok.", CONTEXT).score == 0.0  # content words, none supported
    r = g.score("It is. So it was.", CONTEXT)
    assert math.isnan(r.score) and "no sentence with content words" in r.reason
    assert math.isnan(g.score(ANSWER, []).score)
    with pytest.raises(DataError, match="one row per answer sentence"):
        g.score(ANSWER, CONTEXT, sentence_embeddings=np.ones((2, 4)),
                chunk_embeddings=np.ones((2, 4)))
    with pytest.raises(DataError, match="finite and non-zero"):
        g.score(ANSWER, CONTEXT, sentence_embeddings=np.zeros((3, 4)),
                chunk_embeddings=np.ones((2, 4)))
    with pytest.raises(ParameterError, match="'flag_below' parameter of GroundednessEvaluator"):
        GroundednessEvaluator(flag_below=2)
    assert len(split_sentences(ANSWER)) == 3


# The lexical scoring as it was before the ASCII fast path (commit 4b50d88), kept verbatim as
# the reference the fast and the general path must both reproduce exactly.
_REF_SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?]+(?=\s|$)|(?=\n)|$)")
_REF_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _ref_split(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _REF_SENTENCE.finditer(text):
        s, e = m.span()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def _ref_content(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in _REF_WORD.finditer(text))
            if w not in STOP_WORDS]


def _ref_support(answer: str, chunks: list[str]) -> list[tuple[int, int, float, int]]:
    chunk_sets = [(set(w), set(pairwise(w))) for w in map(_ref_content, chunks)]
    out = []
    for s, e in _ref_split(answer):
        words = _ref_content(answer[s:e])
        if not words:
            continue
        uni, bi = set(words), set(pairwise(words))
        best, best_i = -1.0, -1
        for i, (cu, cb) in enumerate(chunk_sets):
            u = len(uni & cu) / len(uni)
            sup = u if not bi else (u + len(bi & cb) / len(bi)) / 2
            if sup > best:
                best, best_i = sup, i
        out.append((s, e, best, best_i))
    return out


def test_ascii_fast_path_equals_the_general_path_on_mixed_text() -> None:
    """ASCII texts take one regex pass over the lower-cased text; others the Unicode path.
    Both, and any mix of them in one event, give what the original code gave, to the bit."""
    pieces = ["Refund", "refunds", "ORDER", "order", "ships", "tomorrow", "don't", "it's",
              "the", "and", "not", "a", "x_y", "3.5", "14", "e.g.", "café", "CAFÉ", "naïve",
              "Straße", "STRASSE", "İstanbul", "istanbul", "\u212aelvin", "kelvin", "ﬁle",
              "file", "東京", "配送", "😀", "ok👍", "x\u0301y", "١٢٣", "Ωmega", "ΣΊΣΥΦΟΣ",
              "l'été", "o’clock", "_", "'", "-"]
    seps = [" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", ".\n", "\t", "\u00a0", "\u2028",
            "\x1c", ", ", "... ", "  "]
    rnd = random.Random(5)

    def text(ascii_only: bool, n: int) -> str:
        words, gaps = pieces, seps
        if ascii_only:
            words, gaps = [p for p in pieces if p.isascii()], [p for p in seps if p.isascii()]
        return "".join(rnd.choice(words) + rnd.choice(gaps) for _ in range(n)).strip(" ")

    g = GroundednessEvaluator()
    n_uni = n_ascii = supported = 0
    for _ in range(1500):
        answer = text(rnd.random() < 0.5, rnd.randint(1, 40))
        chunks = [text(rnd.random() < 0.5, rnd.randint(1, 30)) for _ in range(rnd.randint(1, 4))]
        want = _ref_support(answer, chunks)
        spans = split_sentences(answer)
        assert spans == _ref_split(answer)
        fast = g._lexical(answer, spans, chunks, groundedness._content)
        general = g._lexical(answer, spans, chunks, groundedness._content_general)
        assert [(x.start, x.end, x.support, x.chunk) for x in fast] == want, (answer, chunks)
        assert fast == general
        got = g.score(answer, chunks)
        assert got.sentences == fast
        for t in (answer, *chunks):
            assert groundedness._content(t) == groundedness._content_general(t) \
                == _ref_content(t)
            n_ascii += t.isascii()
            n_uni += not t.isascii()
        supported += sum(x.supported for x in fast)
    # both paths ran, and the sentences are not all trivially unsupported
    assert n_ascii > 1000 and n_uni > 1000 and supported > 300
    # Unicode case rules the general path keeps: lower-casing first would split these words
    assert groundedness._content("İstanbul \u212aelvin ﬁle") == ["i̇stanbul", "kelvin", "ﬁle"]
