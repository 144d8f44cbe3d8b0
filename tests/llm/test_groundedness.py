"""Groundedness: lexical support computed by hand, embedding support vs scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from aiwarden.errors import DataError, ParameterError
from aiwarden.llm.descriptors import descriptors, run_evaluators
from aiwarden.llm.evaluators.groundedness import GroundednessEvaluator, split_sentences
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
