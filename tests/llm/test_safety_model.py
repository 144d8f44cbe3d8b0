"""The learned safety scorer: plain-array weights, equal to scikit-learn, honest held-out scores."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score
from threadpoolctl import threadpool_limits

from aiwarden.errors import ParameterError
from aiwarden.llm.evaluators._safety_model import (
    CATEGORIES,
    WEIGHTS,
    SafetyModel,
    full_features,
    load_default,
    word_features,
)
from aiwarden.llm.evaluators.safety import SafetyEvaluator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import train_safety_model as train  # noqa: E402  (bench/train_safety_model.py)

DATA = ROOT / "tests" / "data" / "llm_eval"
LABELLED = [json.loads(x) for x in (DATA / "safety.jsonl").read_text().splitlines() if x]
CORPUS = [json.loads(x) for x in (DATA / "safety_train.jsonl").read_text().splitlines() if x]
# never trained or tuned on by the shipped weights (bench/train_safety_model.py)
BLIND = ("blind", "blind2", "blind3", "blind4", "blind5", "blind6", "blind7", "blind8", "blind9")
RETRAIN = CORPUS[:400] + [r for r in LABELLED if r["split"] == "tune"]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """L-BFGS-B over 500k weights makes many tiny BLAS calls; a second OpenBLAS thread only
    spins on them (3x the CPU for the same fit on 2 cores, and slower on a loaded machine)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def retrained() -> tuple[SafetyModel, list]:
    """One retraining shared by the tests that need one (each takes seconds)."""
    return train.fit(RETRAIN, thresholds=[0.5] * 4, gate_threshold=0.3)


def test_the_shipped_weights_are_plain_arrays_loaded_without_pickle():
    assert WEIGHTS.stat().st_size < 2_000_000
    with np.load(WEIGHTS, allow_pickle=False) as z:  # raises on any object array
        assert all(z[k].dtype != object for k in z.files)
        assert tuple(z["categories"]) == CATEGORIES
    m = load_default()
    assert m.coef.shape == (2 * m.n_features, len(CATEGORIES))
    assert np.all((m.thresholds > 0) & (m.thresholds < 1)) and 0 < m.gate_threshold < 1


def test_no_training_text_is_an_evaluation_text():
    labelled = {r["text"].strip().lower() for r in LABELLED}
    assert not [r["text"] for r in CORPUS if r["text"].strip().lower() in labelled]
    assert {r["split"] for r in CORPUS} == {"train"}


def test_scoring_equals_scikit_learn_predict_proba_for_a_retrained_model(tmp_path, retrained):
    model, (gate, *regs) = retrained
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = SafetyModel.load(path)
    texts = [r["text"] for r in LABELLED if r["split"] == "heldout"]
    word = word_features(texts)
    full = full_features(texts)
    ours = loaded.proba(full)
    for j, reg in enumerate(regs):
        np.testing.assert_allclose(ours[:, j], reg.predict_proba(full)[:, 1], rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_allclose(loaded.gate_proba(word), gate.predict_proba(word)[:, 1],
                               rtol=1e-10, atol=1e-12)
    # score(): the gate's rejects are 0, the rest are the regressions' probabilities
    scored = loaded.score(texts)
    passed = gate.predict_proba(word)[:, 1] >= 0.3
    assert 0 < passed.sum() < len(texts)
    np.testing.assert_allclose(scored[passed], ours[passed], rtol=1e-10)
    assert np.all(scored[~passed] == 0)


def test_training_is_deterministic(retrained):
    a, _ = retrained  # trained earlier in this module, with other work in between
    b, _ = train.fit(RETRAIN, thresholds=[0.5] * 4, gate_threshold=0.3)
    assert np.array_equal(a.coef, b.coef) and np.array_equal(a.gate_coef, b.gate_coef)
    assert np.array_equal(a.intercept, b.intercept) and a.gate_intercept == b.gate_intercept


def _pred(ev, rows, cat):
    found = ev.evaluate([r["text"] for r in rows])
    return ([cat in r["categories"] for r in rows],
            [any(f.category == cat for f in fs) for fs in found])


def test_model_alone_generalises_to_blind_splits_it_never_saw():
    """The rules were tuned on the old blind splits; the model never saw any of them."""
    ev = SafetyEvaluator()
    rows = [r for r in LABELLED if r["split"] in BLIND]
    probs = ev.model_scores([r["text"] for r in rows])
    j = CATEGORIES.index("self_harm")
    truth = [("self_harm" in r["categories"]) for r in rows]
    pred = list(probs[:, j] >= ev.model.thresholds[j])
    assert sum(truth) >= 130
    assert recall_score(truth, pred) >= 0.80
    assert precision_score(truth, pred) >= 0.90


def test_the_model_finds_paraphrases_the_rules_miss_with_the_sentence_as_span():
    text = "Thanks for writing in. Honestly, ur better off not waking up tmrw. Bye."
    assert SafetyEvaluator(model=None).evaluate([text]) == [[]]
    [f] = SafetyEvaluator().evaluate([text])[0]
    assert f.category == "self_harm" and "learned scorer" in f.detail
    assert text[f.start:f.end].startswith("Honestly") and text[f.start:f.end].endswith("tmrw.")


@pytest.mark.parametrize("text", [
    "If you feel like you'd be better off not waking up, please call or text 988 now.",
    'The customer wrote "ur better off not waking up tmrw" and we closed the account.',
    "In the novel, the narrator decides he is better off not waking up.",
])
def test_the_rules_context_excuses_what_the_model_scores_high(text):
    assert SafetyEvaluator().evaluate([text]) == [[]]


def test_model_none_is_the_rules_alone_and_bad_models_are_refused():
    texts = [r["text"] for r in LABELLED[:50]]
    rules = SafetyEvaluator(model=None)
    assert rules.model is None
    combined = SafetyEvaluator().evaluate(texts)
    for r_fs, c_fs in zip(rules.evaluate(texts), combined, strict=True):
        assert set(r_fs) <= set(c_fs) or {f.category for f in r_fs} <= {
            f.category for f in c_fs}
    with pytest.raises(ParameterError, match="'model' parameter of SafetyEvaluator"):
        SafetyEvaluator(model="bert")


def test_the_package_data_ships_the_weights():
    """pyproject's package-data names the weight file (a wheel build was checked by hand)."""
    assert '"llm/evaluators/_safety_model.npz"' in (ROOT / "pyproject.toml").read_text()


def test_the_dictionary_gate_equals_the_hashed_gate():
    m = load_default()
    texts = [r["text"] for r in CORPUS] + ["", "a b c", "go go go, you you"]
    # on words seen in training the two are the same function
    np.testing.assert_allclose(m.gate_proba_words(texts), m.gate_proba(word_features(texts)),
                               rtol=1e-9, atol=1e-12)
    # unseen words differ only where their hash collides with a training word's
    texts = [r["text"] for r in LABELLED]
    diff = np.abs(m.gate_proba_words(texts) - m.gate_proba(word_features(texts)))
    assert diff.max() < 0.01 and np.mean(diff < 1e-9) > 0.95
