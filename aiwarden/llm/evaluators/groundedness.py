"""Groundedness of a retrieval-augmented answer: the share of its sentences the retrieved
context supports.

Lexical support of one answer sentence against one context chunk is the mean of its unigram
containment (share of the sentence's content words, stop-words removed, found in the chunk)
and its bigram containment (share of its adjacent content-word pairs found as pairs in the
chunk; the unigram share alone for a one-word sentence). A sentence's support is its best
chunk's; it is *supported* when that reaches ``sentence_threshold`` (default 0.5: half its
content words, and the pairs they form, come from one chunk). When embeddings of the answer
sentences and of the chunks are given, support is instead the best cosine similarity,
supported from ``cosine_threshold`` (default 0.75).

The answer's score is the supported share of its sentences that carry content words. Each
unsupported sentence becomes an ``ungrounded`` finding (its span) of severity ``1 - score``
when the score is below ``flag_below``. The default 1.0 reports any unsupported sentence, so
the ``llm_groundedness`` descriptor (1 - the worst severity) equals the score; a lower
``flag_below`` (e.g. 0.5) reports only badly grounded answers, and the descriptor then reads
1.0 for answers above it.

Examples
--------
>>> g = GroundednessEvaluator()
>>> r = g.score("Paris is the capital of France. It has ten moons.",
...             ["Paris is the capital and largest city of France."])
>>> r.score, [round(s.support, 2) for s in r.sentences]
(0.5, [0.75, 0.0])
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from aiwarden.errors import DataError, check_param
from aiwarden.llm.findings import Finding

__all__ = ["STOP_WORDS", "GroundednessEvaluator", "GroundednessResult", "SentenceSupport",
           "split_sentences"]

_STOP_TEXT = """
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he he'd
he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into
is isn't it it's its itself let's me more most mustn't my myself no nor not of off on once only
or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's
these they they'd they'll they're they've this those through to too under until up very was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while
who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
yourself yourselves also just may might must shall s t
"""
#: English function words that say nothing about support.
STOP_WORDS = frozenset(_STOP_TEXT.split())

# A sentence ends at . ! ? followed by white space (not inside 3.5 or e.g.x), or at a line end.
# Written without a lazy scan (5x faster): runs of [.!?] followed by a non-space are inside a
# sentence; the first run followed by white space or the end closes it. The same spans as
# r"\S[^\n]*?(?:[.!?]+(?=\s|$)|(?=\n)|$)" (tests/llm/test_groundedness.py checks).
_SENTENCE = re.compile(r"\S[^\n.!?]*+(?:[.!?]++(?=[^\s.!?])[^\n.!?]*+)*+[.!?]*")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# The same words in lower-cased ASCII text: there [^\W_] is exactly [A-Za-z0-9], and lowering
# the whole text first neither moves nor splits a word (it can in Unicode: "İ" -> "i̇").
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the sentences of ``text`` (ends at ``.!?`` or a line break),
    whitespace trimmed; the order the embeddings of answer sentences must follow.

    >>> t = "One. Two!\\nThree"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['One.', 'Two!', 'Three']
    """
    spans = []
    for m in _SENTENCE.finditer(text):
        s, e = m.span()  # s is at a \S: only the end may need trimming
        if text[e - 1].isspace():  # str.rstrip drops what str.isspace calls space
            e = s + len(text[s:e].rstrip())
        spans.append((s, e))
    return spans


def _content_general(text: str) -> list[str]:
    """Content words of any text: words found first, then each lower-cased (Unicode path)."""
    return [w for w in map(str.lower, _WORD.findall(text)) if w not in STOP_WORDS]


def _content(text: str) -> list[str]:
    """Content words, lower-cased, stop-words removed. ASCII text (``isascii`` is O(1)) takes
    one regex pass over the lower-cased text: the same words, ~2x faster than the general
    path (tests/llm/test_groundedness.py compares both on mixed text)."""
    if text.isascii():
        return [w for w in _ASCII_WORD.findall(text.lower()) if w not in STOP_WORDS]
    return _content_general(text)


@dataclass(frozen=True)
class SentenceSupport:
    """One answer sentence: its span, best support (0..1), best chunk index, verdict."""

    start: int
    end: int
    support: float
    chunk: int
    supported: bool


@dataclass(frozen=True)
class GroundednessResult:
    """The answer's score (NaN with a ``reason`` when it cannot be judged) and its sentences."""

    score: float
    method: str  # "lexical" or "embedding"
    sentences: list[SentenceSupport] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict:
        return {"score": None if math.isnan(self.score) else self.score, "method": self.method,
                "reason": self.reason,
                "sentences": [s.__dict__ for s in self.sentences]}


class GroundednessEvaluator:
    """Scores how much of an answer its retrieved context supports; flags unsupported sentences.

    Parameters
    ----------
    sentence_threshold : float
        Lexical support a sentence needs to count as supported (0..1, default 0.5).
    cosine_threshold : float
        Cosine similarity a sentence embedding needs (-1..1, default 0.75).
    flag_below : float
        Findings are reported when the answer's score is below this (0..1], default 1.0.
    """

    name = "groundedness"
    fields = ("output", "context")

    def __init__(self, sentence_threshold: float = 0.5, cosine_threshold: float = 0.75,
                 flag_below: float = 1.0) -> None:
        for pname, v, lo, hi in (("sentence_threshold", sentence_threshold, 0.0, 1.0),
                                 ("cosine_threshold", cosine_threshold, -1.0, 1.0),
                                 ("flag_below", flag_below, 0.0, 1.0)):
            check_param(isinstance(v, int | float) and lo <= v <= hi, pname,
                        "GroundednessEvaluator", f"a number in [{lo}, {hi}]", v)
        self.sentence_threshold = float(sentence_threshold)
        self.cosine_threshold = float(cosine_threshold)
        self.flag_below = float(flag_below)

    def evaluate(self, texts: Sequence[tuple[str, str | Sequence[str]]]) -> list[list[Finding]]:
        """Findings per ``(answer, context)`` pair; the context is a list of chunks or one text
        with chunks separated by blank lines. No context: no findings."""
        out = []
        for answer, context in texts:
            chunks = (context.split("\n\n") if isinstance(context, str) else list(context))
            chunks = [c for c in chunks if c and c.strip()]
            out.append(self.findings(self.score(answer, chunks)) if chunks else [])
        return out

    def findings(self, result: GroundednessResult) -> list[Finding]:
        """The ``ungrounded`` findings of a result (none when its score is high enough)."""
        if math.isnan(result.score) or result.score >= self.flag_below:
            return []
        sev = 1.0 - result.score
        return [Finding("groundedness", "ungrounded", "output", s.start, s.end, sev,
                        f"{result.method} support {s.support:.2f}; answer score "
                        f"{result.score:.2f}")
                for s in result.sentences if not s.supported]

    def score(self, answer: str, chunks: Sequence[str],
              sentence_embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
              chunk_embeddings: np.ndarray | Sequence[Sequence[float]] | None = None
              ) -> GroundednessResult:
        """Support of each sentence of ``answer`` by ``chunks``; embeddings when both given
        (one row per :func:`split_sentences` span, one per chunk)."""
        spans = split_sentences(answer)
        if sentence_embeddings is not None and chunk_embeddings is not None:
            return self._by_embedding(spans, sentence_embeddings, chunk_embeddings, len(chunks))
        if not chunks:
            return GroundednessResult(math.nan, "lexical", reason="no retrieved context")
        return self._result(self._lexical(answer, spans, chunks, _content), "lexical")

    def _lexical(self, answer: str, spans: list[tuple[int, int]], chunks: Sequence[str],
                 content: Callable[[str], list[str]]) -> list[SentenceSupport]:
        """Lexical support of each span with content words; ``content`` is the tokeniser
        (:func:`_content`, or :func:`_content_general` to check the fast path against)."""
        chunk_sets = []
        seen: set[str] = set()
        for c in chunks:
            words = content(c)
            seen.update(words)
            chunk_sets.append((set(words), set(pairwise(words))))
        if content is _content and answer.isascii():  # lower-case once, no slices
            low, find, stop = answer.lower(), _ASCII_WORD.findall, STOP_WORDS
            per_span = [[w for w in find(low, s, e) if w not in stop] for s, e in spans]
        else:
            per_span = [content(answer[s:e]) for s, e in spans]
        result = []
        threshold = self.sentence_threshold
        for (s, e), words in zip(spans, per_span, strict=True):
            if not words:
                continue
            uni = set(words)
            if uni.isdisjoint(seen):  # no word (so no pair) in any chunk: 0.0, chunk 0
                result.append(SentenceSupport(s, e, 0.0, 0, threshold <= 0.0))
                continue
            bi = set(pairwise(words))
            n_uni, n_bi = len(uni), len(bi)
            best, best_i = -1.0, -1
            for i, (cu, cb) in enumerate(chunk_sets):
                u = len(uni & cu) / n_uni
                sup = u if not n_bi else (u + len(bi & cb) / n_bi) / 2
                if sup > best:
                    best, best_i = sup, i
            result.append(SentenceSupport(s, e, best, best_i, best >= threshold))
        return result

    def _by_embedding(self, spans: list[tuple[int, int]], sent: object, chunk: object,
                      n_chunks: int) -> GroundednessResult:
        a = np.asarray(sent, dtype=float)
        b = np.asarray(chunk, dtype=float)
        if a.ndim != 2 or a.shape[0] != len(spans):
            raise DataError(f"sentence_embeddings must have one row per answer sentence "
                            f"({len(spans)}); got shape {a.shape}.", "sentence_embeddings")
        if b.ndim != 2 or b.shape[0] == 0 or b.shape[1] != a.shape[1]:
            raise DataError(f"chunk_embeddings must be a non-empty matrix with {a.shape[1]} "
                            f"columns; got shape {b.shape}.", "chunk_embeddings")
        if n_chunks and b.shape[0] != n_chunks:
            raise DataError(f"chunk_embeddings has {b.shape[0]} rows for {n_chunks} chunks.",
                            "chunk_embeddings")
        na = np.linalg.norm(a, axis=1, keepdims=True)
        nb = np.linalg.norm(b, axis=1, keepdims=True)
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)) or (na == 0).any() \
                or (nb == 0).any():
            raise DataError("embeddings must be finite and non-zero.", "embedding")
        sims = (a / na) @ (b / nb).T
        best_i = sims.argmax(axis=1)
        best = sims[np.arange(len(spans)), best_i]
        result = [SentenceSupport(s, e, float(v), int(i), bool(v >= self.cosine_threshold))
                  for (s, e), v, i in zip(spans, best, best_i, strict=True)]
        return self._result(result, "embedding")

    @staticmethod
    def _result(sentences: list[SentenceSupport], method: str) -> GroundednessResult:
        if not sentences:
            return GroundednessResult(math.nan, method, [],
                                      "the answer has no sentence with content words")
        return GroundednessResult(sum(s.supported for s in sentences) / len(sentences), method,
                                  sentences)
