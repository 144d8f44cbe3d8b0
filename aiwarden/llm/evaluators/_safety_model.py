"""The learned sentence scorer of the safety evaluator: hashed n-grams and logistic regressions.

Patterns do not generalise to paraphrase ("ur better off six feet under"); a linear model over
hashed word 1-2-grams and character 3-5-grams (``char_wb``) does better on wording it has not
seen, and misspellings share most of their character n-grams with the right spelling. The
weights ship as plain arrays in ``_safety_model.npz`` (no pickle): scoring is one
``HashingVectorizer.transform`` per batch and a sparse dot product, so it equals
scikit-learn's ``LogisticRegression.predict_proba`` on the same features.

Two stages keep it fast: a ``gate`` regression on the words (unigrams) alone scores every
sentence; only sentences above ``gate_threshold`` (set low, so the gate misses almost no
positive) get the character n-grams and the four category regressions. The weights are built
by ``bench/train_safety_model.py``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

__all__ = [
    "CATEGORIES",
    "SafetyModel",
    "char_features",
    "full_features",
    "load_default",
    "vectorizers",
    "word_features",
]

CATEGORIES = ("self_harm", "violence", "hate", "sexual")
N_FEATURES = 2**18
WEIGHTS = Path(__file__).with_name("_safety_model.npz")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # HashingVectorizer's default token_pattern
# The same tokens: findall of either gives every maximal run of two or more word characters
# (a run is entered at its first character, greedy to its end), but without the leading
# ``\b`` sre can skip to the next word character in C instead of trying every position.
_TOKEN_FAST = re.compile(r"\w\w+")
# The same tokens plus NUL, the separator of the sentences of one batch (gate_proba_batch).
_TOKEN_SEP = re.compile(r"\w\w+|\0")
_SEP_HASH = hash("\0")


# ASCII bytes -> themselves for word characters ([0-9A-Za-z_]) and NUL, else a space: on an
# ASCII text, the tokens of ``\w\w+`` are the space-split pieces of two or more characters.
_WORD_BYTES = bytes(c if c == 0 or c == 95 or (c < 128 and chr(c).isalnum()) else 32
                    for c in range(256))


def _batch_tokens(lowered: Sequence[str]
                  ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
    r"""Every ``\w\w+`` token of each text in order, with NUL separators between texts:
    ``(tokens, their hashes, separator mask, index of each token's text)``.

    ASCII texts are tokenised together by ``bytes.translate`` and ``str.split`` (C passes,
    no regex work per position); the others by ``_TOKEN_SEP`` (Unicode word characters).
    None when a text holds NUL itself or a token's hash equals NUL's (the caller then
    reads each text alone).
    """
    ascii_, other = [], []
    for i, t in enumerate(lowered):
        (ascii_ if t.isascii() else other).append(i)
    toks: list[str] = []
    arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for idx, fast in ((ascii_, True), (other, False)):
        if not idx:
            continue
        group = [lowered[i] for i in idx]
        joined = (" \0 " if fast else "\0").join(group)
        if joined.count("\0") != len(group) - 1:
            return None
        part = ([t for t in joined.encode("ascii").translate(_WORD_BYTES).decode("ascii")
                 .split() if len(t) > 1 or t == "\0"] if fast else _TOKEN_SEP.findall(joined))
        hs = np.fromiter(map(hash, part), dtype=np.int64, count=len(part))
        sep = hs == _SEP_HASH
        if int(sep.sum()) != len(group) - 1:
            return None
        toks += part
        # a separator counts for the next text (it is masked out)
        arrays.append((hs, sep, np.asarray(idx, dtype=np.int64)[np.cumsum(sep)]))
    if not arrays:
        return [], np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64)
    hs, sep, sid = (np.concatenate(a) for a in zip(*arrays, strict=True))
    return toks, hs, sep, sid


@lru_cache(maxsize=4)
def vectorizers(n_features: int = N_FEATURES
                ) -> tuple[HashingVectorizer, HashingVectorizer, HashingVectorizer]:
    """The word 1-gram (gate), word 1-2-gram and char_wb 3-5-gram hashers (stateless)."""
    kw = {"n_features": n_features, "alternate_sign": False, "norm": "l2", "dtype": np.float64}
    return (HashingVectorizer(analyzer="word", ngram_range=(1, 1), **kw),
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), **kw),
            HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **kw))


def word_features(texts: Sequence[str], n_features: int = N_FEATURES) -> sparse.csr_matrix:
    """Features of the gate: words (unigrams, the cheapest pass over every sentence)."""
    return vectorizers(n_features)[0].transform(texts)


def full_features(texts: Sequence[str], n_features: int = N_FEATURES) -> sparse.csr_matrix:
    """Features of the category regressions: word 1-2-gram block then char_wb 3-5-gram block,
    each l2-normalised."""
    w = vectorizers(n_features)[1]
    return sparse.hstack([w.transform(texts), char_features(texts, n_features)], format="csr")


_CHAR_CACHE: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
_CHAR_CACHE_MAX = 100_000  # words; past it the cache starts afresh


def char_features(texts: Sequence[str], n_features: int = N_FEATURES) -> sparse.csr_matrix:
    """``vectorizers(n_features)[2].transform(texts)``, the same matrix bit for bit, with each
    word's hashed n-grams computed once per process.

    ``char_wb`` n-grams never cross a word (a whitespace-split token, padded with one space),
    so a sentence's counts are the sums of its words' counts: each word's row (hashed by
    scikit-learn itself, duplicates summed) is remembered, a sentence's rows are concatenated,
    summed per column (``sum_duplicates``: whole numbers, exact in any order) and
    l2-normalised as scikit-learn does. Python-level n-gram slicing and hashing was most of
    the scorer's time; words repeat across sentences far more than sentences do.
    """
    c = vectorizers(n_features)[2]
    if not texts:
        return c.transform(texts)
    cache = _CHAR_CACHE.setdefault(n_features, {})
    pre, ws = c.build_preprocessor(), c._white_spaces
    docs = [ws.sub(" ", pre(t)).split() for t in texts]
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # this call's words: read from here only
    missing: list[str] = []
    for d in docs:
        for word in d:
            if word not in rows:
                got = cache.get(word)
                if got is None:
                    missing.append(word)
                    rows[word] = _EMPTY_ROW
                else:
                    rows[word] = got
    if missing:
        x = c._get_hasher().transform(c._char_wb_ngrams(word) for word in missing)
        ind, val, ptr = x.indices, x.data, x.indptr
        if len(cache) + len(missing) > _CHAR_CACHE_MAX:
            cache.clear()
        for k, word in enumerate(missing):
            a, z = ptr[k], ptr[k + 1]
            rows[word] = cache[word] = (ind[a:z].copy(), val[a:z].copy())
    parts = [rows[word] for d in docs for word in d] or [_EMPTY_ROW]
    # row i holds the words docs[:i] did not: word k's entries end at ends[k + 1]
    ends = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(ix) for ix, _ in parts], out=ends[1:])
    words_before = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=words_before[1:])
    x = sparse.csr_matrix((np.concatenate([v for _, v in parts]),
                           np.concatenate([ix for ix, _ in parts]), ends[words_before]),
                          shape=(len(docs), n_features), dtype=np.float64)
    x.sum_duplicates()  # also sorts the indices, as scikit-learn's hasher does
    return normalize(x, norm=c.norm, copy=False)


_EMPTY_ROW = (np.zeros(0, np.int32), np.zeros(0, np.float64))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class SafetyModel:
    """Weights of the gate and of one binary regression per category, as plain arrays."""

    gate_coef: np.ndarray          # (n_features,)
    gate_intercept: float
    gate_threshold: float
    coef: np.ndarray               # (2 * n_features, n_categories)
    intercept: np.ndarray          # (n_categories,)
    thresholds: np.ndarray         # (n_categories,) probability above which a unit is flagged
    categories: tuple[str, ...] = CATEGORIES
    n_features: int = N_FEATURES
    # the gate's weight of each word seen in training: the gate without hashing (fast path)
    gate_words: dict[str, float] = field(default_factory=dict, compare=False)

    def gate_proba_words(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`gate_proba` of :func:`word_features`, from the ``gate_words`` dictionary.

        Equal to it except where an unseen word's hash collides with a training word's.
        """
        get, b = self.gate_words.get, float(self.gate_intercept)
        findall = _TOKEN_FAST.findall
        z = []
        for t in texts:
            toks = findall(t.lower())
            if not toks:
                z.append(b)
                continue
            # a repeated word adds its weight once per occurrence: sum over tokens = counts x w;
            # the l2 norm is sqrt(sum of squared counts) = sqrt(sum over tokens of its count),
            # n when no word repeats (half the sentences; list.count in C beats building a
            # Counter for a sentence's few words)
            n = len(toks)
            sq = n if len(set(toks)) == n else sum(map(toks.count, toks)) if n <= 64 else sum(
                k * k for k in Counter(toks).values())
            z.append(b + math.fsum(map(get, toks, repeat(0.0))) / math.sqrt(sq))
        return _sigmoid(np.array(z, dtype=np.float64))

    def gate_proba_batch(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`gate_proba_words` of many sentences with one tokenising pass and numpy sums.

        The tokens of every sentence (:func:`_batch_tokens`) are looked up in one pass;
        each token's weight is one dict lookup, summed per sentence with ``np.bincount`` in
        token order, and the l2 norm counts repeats per sentence from the tokens' hashes
        (sorted by sentence, then hash). Equal to :meth:`gate_proba_words` up to the order of
        the float additions (``fsum`` there): the last bit of a probability, which decides
        nothing unless it sits exactly on the gate threshold.
        """
        return self._gate_batch(texts, decide=False)

    def gate_pass_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``gate_proba_batch(texts) >= gate_threshold``: the same decisions, with the l2 norm
        counted only for the sentences that need it.

        A sentence of ``k`` words has ``sqrt(k) <= norm <= k``, so its probability lies between
        the two it would have at those bounds; when both are on one side of the threshold
        (by more than 1e-9, far above rounding) that side is the decision. The norm (a sort
        of the words by sentence and hash) is computed for the rest only: a few per cent.
        """
        return self._gate_batch(texts, decide=True)

    def _gate_batch(self, texts: Sequence[str], decide: bool) -> np.ndarray:
        n = len(texts)
        thr = float(self.gate_threshold)
        if n == 0:
            return np.zeros(0, dtype=bool) if decide else np.zeros(0)
        b = float(self.gate_intercept)
        found = _batch_tokens([t.lower() for t in texts])
        if found is None:  # a NUL in a text, or a token hashing like it
            p = self.gate_proba_words(texts)
            return p >= thr if decide else p
        toks, hs, sep, sid = found
        w = np.fromiter(map(self.gate_words.get, toks, repeat(0.0)), dtype=np.float64,
                        count=len(toks))
        word = ~sep
        sid_w, hs_w = sid[word], hs[word]
        sums = np.bincount(sid_w, weights=w[word], minlength=n)
        p = _sigmoid(np.full(n, b))  # a sentence without a word
        words = np.bincount(sid_w, minlength=n)
        todo = words > 0
        if decide:
            k = words[todo].astype(np.float64)
            at_root, at_k = (_sigmoid(b + sums[todo] / d) for d in (np.sqrt(k), k))
            low, high = np.minimum(at_root, at_k), np.maximum(at_root, at_k)
            unsure = (low < thr + 1e-9) & (high >= thr - 1e-9)
            p[todo] = np.where(high < thr, 0.0, 1.0)  # decided by the bounds
            todo[todo] = unsure
            keep = todo[sid_w]
            sid_w, hs_w = sid_w[keep], hs_w[keep]
        if todo.any():
            order = np.lexsort((hs_w, sid_w))
            s_sorted, h_sorted = sid_w[order], hs_w[order]
            new_run = np.ones(len(order), dtype=bool)
            new_run[1:] = (s_sorted[1:] != s_sorted[:-1]) | (h_sorted[1:] != h_sorted[:-1])
            starts = np.flatnonzero(new_run)
            counts = np.diff(np.append(starts, len(order))).astype(np.float64)
            sq = np.bincount(s_sorted[starts], weights=counts * counts, minlength=n)
            p[todo] = _sigmoid(b + sums[todo] / np.sqrt(sq[todo]))
        return p >= thr if decide else p

    def with_vocabulary(self, texts: Sequence[str]) -> SafetyModel:
        """A copy whose ``gate_words`` hold every word of ``texts`` (the training texts)."""
        vocab = sorted({tok for t in texts for tok in _TOKEN.findall(t.lower())})
        idx = word_features(vocab, self.n_features).indices  # one feature per word
        words = dict(zip(vocab, self.gate_coef[idx].tolist(), strict=True))
        return SafetyModel(**{**self.__dict__, "gate_words": words})

    def gate_proba(self, word: sparse.csr_matrix) -> np.ndarray:
        """P(unsafe) from :func:`word_features` (the gate), one per row."""
        return _sigmoid(word @ self.gate_coef + self.gate_intercept)

    def proba(self, full: sparse.csr_matrix) -> np.ndarray:
        """P(category) per row and category, from :func:`full_features`."""
        return _sigmoid(full @ self.coef + self.intercept)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Category probabilities of each text; rows the gate rejects are 0."""
        out = np.zeros((len(texts), len(self.categories)))
        if not texts:
            return out
        word = word_features(texts, self.n_features)
        keep = np.flatnonzero(self.gate_proba(word) >= self.gate_threshold)
        if keep.size:
            sub = [texts[i] for i in keep]
            out[keep] = self.proba(full_features(sub, self.n_features))
        return out

    # -- plain-array storage (np.savez, loaded with allow_pickle=False)
    def save(self, path: Path) -> None:
        gi = np.flatnonzero(self.gate_coef)
        ci = np.flatnonzero(np.any(self.coef != 0, axis=1))
        np.savez_compressed(
            path, n_features=np.int64(self.n_features), categories=np.array(self.categories),
            gate_index=gi.astype(np.int32), gate_values=self.gate_coef[gi],
            gate_intercept=np.float64(self.gate_intercept),
            gate_threshold=np.float64(self.gate_threshold),
            coef_index=ci.astype(np.int32), coef_values=self.coef[ci],
            intercept=self.intercept, thresholds=self.thresholds,
            gate_vocab=np.array(list(self.gate_words), dtype=str),
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> SafetyModel:
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n_features"])
            cats = tuple(str(c) for c in z["categories"])
            gate = np.zeros(n)
            gate[z["gate_index"]] = z["gate_values"]
            coef = np.zeros((2 * n, len(cats)))
            coef[z["coef_index"]] = z["coef_values"]
            vocab = [str(v) for v in z["gate_vocab"]]
            head = (float(z["gate_intercept"]), float(z["gate_threshold"]))
            intercept = np.asarray(z["intercept"], dtype=np.float64)
            thresholds = np.asarray(z["thresholds"], dtype=np.float64)
        idx = word_features(vocab, n).indices if vocab else np.zeros(0, int)
        return cls(gate, *head, coef, intercept, thresholds, cats, n,
                   dict(zip(vocab, gate[idx].tolist(), strict=True)))


@lru_cache(maxsize=1)
def load_default() -> SafetyModel:
    """The shipped model, loaded once on first use (not at import)."""
    return SafetyModel.load(WEIGHTS)
