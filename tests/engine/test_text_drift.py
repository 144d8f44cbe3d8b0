"""Text drift: the hashed char n-gram domain classifier (topic and language switches fire, a
control from the same distribution is silent, named n-grams are real) and MMD on embeddings
against a direct computation on the raw vectors."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import roc_auc_score

from aiwarden.engine import text_drift
from aiwarden.engine._multivariate_classifier import _auc
from aiwarden.engine.text_drift import TextDomainClassifierDrift, mmd_rbf
from aiwarden.errors import DataError, NotFittedError, ParameterError

ORDERS = ["where is my order {}", "my parcel {} has not arrived", "track package {} please",
          "when will order {} ship", "the delivery of {} is late", "can I change the address "
          "of order {}"]
BILLING = ["why was I charged twice for invoice {}", "refund payment {} to my card",
           "my credit card was billed {} dollars", "cancel the subscription {} and refund me"]
GERMAN = ["wo ist meine Bestellung {}", "mein Paket {} ist nicht angekommen",
          "bitte Sendung {} verfolgen", "wann wird Bestellung {} verschickt"]


def prompts(templates: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [templates[rng.integers(len(templates))].format(rng.integers(10_000))
            for _ in range(n)]


def test_doctest() -> None:
    assert doctest.testmod(text_drift).failed == 0


def test_topic_and_language_switches_fire_and_a_control_is_silent() -> None:
    det = TextDomainClassifierDrift(random_state=0).fit(prompts(ORDERS, 400, 1))
    control = det.compare(prompts(ORDERS, 400, 2))
    assert not control.drift_detected and control.auc < control.threshold
    assert control.top_ngrams == {} and "no drift" in control.ngram_reason
    for other in (BILLING, GERMAN):
        mixed = prompts(ORDERS, 200, 3) + prompts(other, 200, 4)  # half the traffic moved
        res = det.compare(mixed)
        assert res.drift_detected and res.auc > 0.7, res.auc
        assert res.auc == pytest.approx(np.mean(res.fold_aucs))
        assert res.auc_ci[0] < res.auc < res.auc_ci[1]
        assert res.top_ngrams["current"] and res.top_ngrams["reference"]


def test_named_ngrams_are_in_the_texts_and_hash_to_their_feature() -> None:
    det = TextDomainClassifierDrift(top_ngrams=5, random_state=0).fit(prompts(ORDERS, 300, 1))
    cur = prompts(GERMAN, 300, 2)
    res = det.compare(cur)
    vec = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18,
                            alternate_sign=False, norm=None)
    cur_counts = np.asarray(vec.transform(cur).sum(axis=0)).ravel()
    ref_counts = np.asarray(vec.transform(det.reference_).sum(axis=0)).ravel()
    for gram, weight in res.top_ngrams["current"]:
        assert weight > 0 and any(gram.strip() in t.lower() for t in cur)
        # the n-gram's own hashed column (murmurhash, as HashingVectorizer) leans current
        own = np.flatnonzero(vec.transform([gram]).toarray().ravel())
        assert (cur_counts[own] > ref_counts[own]).any()
    for gram, weight in res.top_ngrams["reference"]:
        assert weight < 0 and any(gram.strip() in t.lower() for t in det.reference_)


def test_rank_auc_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    score = rng.normal(size=100) + y * 0.5
    score[:10] = score[60:70]  # ties
    assert _auc(y, score) == pytest.approx(roc_auc_score(y, score))


def _mmd2_by_hand(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    s = np.median(pdist(np.vstack([x, y])))

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / (2 * s * s)))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy, s


def test_mmd_matches_a_direct_computation_and_its_permutation_test_decides() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 8))
    y = rng.normal(size=(30, 8)) + np.r_[1.5, np.zeros(7)]
    res = mmd_rbf(x, y, n_permutations=200, random_state=0)
    mmd2, s = _mmd2_by_hand(x, y)
    assert res.mmd2 == pytest.approx(mmd2, rel=1e-9)
    assert res.bandwidth == pytest.approx(s, rel=1e-9)
    assert res.p_value == pytest.approx(1 / 201) and res.drift_detected
    same = mmd_rbf(x, rng.normal(size=(30, 8)), n_permutations=200, random_state=0)
    assert same.p_value > 0.05 and not same.drift_detected
    # the p-value counts permutations as often as the observed value or more, by hand
    perm = np.random.default_rng(0)
    z = np.vstack([x, y])
    hits = 0
    for _ in range(20):
        p = perm.permutation(len(z))
        hits += _mmd2_by_hand(z[p[:40]], z[p[40:]])[0] >= mmd2 - 1e-12
    assert hits == 0  # the shift is far outside what relabelling gives


def test_bad_input_names_the_parameter_or_sample() -> None:
    with pytest.raises(ParameterError, match="'n_splits' parameter of TextDomainClassifier"):
        TextDomainClassifierDrift(n_splits=1)
    with pytest.raises(NotFittedError):
        TextDomainClassifierDrift().compare(["a"] * 20)
    with pytest.raises(DataError, match="reference texts must be strings; item 1"):
        TextDomainClassifierDrift().fit(["a", 3])
    with pytest.raises(DataError, match="has 3 texts"):
        TextDomainClassifierDrift().fit(["a", "b", "c"])
    with pytest.raises(DataError, match="differ in width"):
        mmd_rbf(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ParameterError, match="'alpha' parameter of mmd_rbf"):
        mmd_rbf(np.zeros((5, 2)), np.zeros((5, 2)), alpha=0)
