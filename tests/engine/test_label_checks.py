"""Label sanity before training: leaking features and a shifted class balance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiwarden.engine.label_checks import check_labels
from aiwarden.errors import SchemaError


def _training(n: int, seed: int, positive_share: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_share).astype(int)
    return pd.DataFrame({"amount": rng.lognormal(3, 1, n) + 5 * y,  # informative, not leaking
                         "country": rng.choice(["US", "BR", "DE"], n),
                         "txn_id": [f"t{i}" for i in range(n)],
                         "label": y})


def test_honest_features_do_not_leak() -> None:
    out = check_labels(_training(3000, 1), "label")
    assert out.ok and out.leaking == ()


def test_a_copy_a_proxy_and_a_pure_category_of_the_label_leak() -> None:
    data = _training(3000, 2)
    rng = np.random.default_rng(0)
    data["chargeback"] = data["label"]  # the outcome itself, joined by mistake
    data["review_score"] = data["label"] * 10 + rng.random(len(data))  # separates perfectly
    data["case_status"] = np.where(data["label"] == 1, "escalated", "closed")
    found = {x["feature"]: x for x in check_labels(data, "label").leaking}
    assert set(found) == {"chargeback", "review_score", "case_status"}
    assert found["chargeback"]["how"] == "equals the label"
    assert found["review_score"]["roc_auc"] == pytest.approx(1.0)
    assert found["case_status"]["purity"] == pytest.approx(1.0)


def test_class_balance_shift_is_the_chi_square_test_with_an_effect_size() -> None:
    reference = {"0": 5000, "1": 5000}
    shifted = _training(4000, 3, positive_share=0.2)
    out = check_labels(shifted, "label", reference_counts=reference)
    counts = shifted["label"].value_counts().sort_index().to_numpy()
    expected = stats.chisquare(counts, np.full(2, counts.sum() / 2)).pvalue
    assert out.balance["p_value"] == pytest.approx(expected, rel=1e-6)
    assert out.balance["shifted"] and not out.ok
    assert out.balance["total_variation"] == pytest.approx(abs(counts[1] / counts.sum() - 0.5),
                                                           abs=1e-4)
    # a small, if significant, wobble on a big window is no shift
    same = check_labels(_training(200_000, 4, positive_share=0.52), "label",
                        reference_counts=reference)
    assert same.balance["p_value"] < 0.001 and not same.balance["shifted"]


def test_a_missing_target_is_named() -> None:
    with pytest.raises(SchemaError, match="'is_fraud'"):
        check_labels(_training(100, 5), "is_fraud")
