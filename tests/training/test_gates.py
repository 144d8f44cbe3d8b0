"""Each gate blocks its planted defect and passes a clean candidate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine import Reference
from aiwarden.training.gates import (
    comparison_gate,
    data_gate,
    label_gate,
    overfit_gate,
    slice_gate,
)


def _window(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame({"amount": rng.lognormal(4, 1, n) + 3 * y,
                         "country": rng.choice(["US", "BR", "DE"], n), "label": y})


def test_the_data_gate_blocks_one_corrupted_record_and_names_it() -> None:
    ref = Reference.fit(_window(5000, 0))
    window = _window(4000, 1)
    clean, kept = data_gate(ref, window)
    assert clean.passed and kept.num_rows == 4000
    window.loc[2718, "amount"] = 9.9e12
    blocked, _ = data_gate(ref, window)
    assert not blocked.passed
    assert "row 2718" in blocked.reason and "'amount'" in blocked.reason
    assert blocked.evidence["problems"][0]["row"] == 2718
    quarantined, kept = data_gate(ref, window, policy="quarantine")
    assert quarantined.passed and kept.num_rows == 3999
    assert quarantined.evidence["quarantined_rows"] == [2718]
    assert 9.9e12 not in kept.column("amount").to_pylist()
    window.loc[:99, "amount"] = -1.0  # a broken source, not a stray row: 2.5 % of the window
    broken, _ = data_gate(ref, window, policy="quarantine")
    assert not broken.passed and "more than" in broken.reason


def test_the_label_gate_refuses_a_leaking_feature() -> None:
    window = _window(2000, 2)
    assert label_gate(window, "label").passed
    window["chargeback_flag"] = window["label"]
    out = label_gate(window, "label")
    assert not out.passed and "'chargeback_flag' equals the label" in out.reason


def test_the_overfit_gate_compares_train_and_holdout() -> None:
    assert overfit_gate({"roc_auc": 0.93}, {"roc_auc": 0.91}, metric="roc_auc",
                        max_gap=0.05).passed
    out = overfit_gate({"roc_auc": 1.0}, {"roc_auc": 0.78}, metric="roc_auc", max_gap=0.05)
    assert not out.passed and out.evidence["gap"] == 0.22
    # a loss: lower on the training data is the overfit direction
    assert not overfit_gate({"mae": 0.1}, {"mae": 0.9}, metric="mae", max_gap=0.2).passed
    missing = overfit_gate({}, {"roc_auc": 0.9}, metric="roc_auc", max_gap=0.05)
    assert not missing.passed and "training" in missing.reason


def _predictions(n: int, seed: int, challenger_noise: float):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    champion = y + shared * 0.5 + rng.normal(scale=0.5, size=n)
    challenger = y + shared * 0.5 + rng.normal(scale=challenger_noise, size=n)
    return y, champion, challenger


def test_the_comparison_gate_refuses_a_significantly_worse_challenger() -> None:
    y, a, b = _predictions(3000, 3, challenger_noise=0.5)
    assert comparison_gate(y, a, b, metric="roc_auc").passed
    y, a, b = _predictions(3000, 4, challenger_noise=1.5)
    out = comparison_gate(y, a, b, metric="roc_auc")
    assert not out.passed and "significantly worse" in out.reason
    assert out.evidence["method"] == "delong"
    floor = comparison_gate(y, a, a, metric="roc_auc", min_value=0.99)
    assert not floor.passed and "floor" in floor.reason
    labels = (a > 0.5).astype(int)
    assert not comparison_gate(y, labels, labels, metric="accuracy",
                               require_better=True).passed


@pytest.mark.parametrize(("metric", "method"), [("accuracy", "mcnemar-exact"),
                                                 ("mae", "paired-t")])
def test_each_metric_is_compared_with_its_own_paired_test(metric: str, method: str) -> None:
    """Labels by McNemar, absolute errors by a paired t-test: a challenger making twice the
    champion's errors is refused, one as good passes; a loss's absolute limit is a ceiling."""
    rng = np.random.default_rng(3)
    n = 3000
    if metric == "accuracy":
        y = rng.integers(0, 2, n)
        champion, same, worse = (np.where(rng.random(n) < p, 1 - y, y)
                                 for p in (0.1, 0.1, 0.2))
    else:
        y = rng.normal(0, 1, n)
        champion, same, worse = (y + rng.normal(0, s, n) for s in (0.3, 0.3, 0.6))
    out = comparison_gate(y, champion, worse, metric=metric)
    assert not out.passed and out.reason.endswith("significantly worse"), out.reason
    assert out.evidence["method"] == method and out.evidence["p_value"] < 1e-6
    fine = comparison_gate(y, champion, same, metric=metric)
    assert fine.passed and fine.evidence["method"] == method, fine.reason
    if metric == "mae":
        ceiling = comparison_gate(y, champion, same, metric="mae", min_value=0.1)
        assert not ceiling.passed and "above the ceiling of 0.1" in ceiling.reason


def test_the_slice_gate_refuses_the_small_amount_model() -> None:
    rng = np.random.default_rng(5)
    n = 6000
    data = pd.DataFrame({"amount": rng.lognormal(4, 1, n)})
    y = rng.integers(0, 2, n)
    champion = np.where(rng.random(n) < 0.1, 1 - y, y)
    bad = np.where((data["amount"] < 10) & (y == 0), 1, y)  # flags every small transaction
    clean = np.where(rng.random(n) < 0.08, 1 - y, y)
    assert slice_gate(data, y, champion, clean).passed
    out = slice_gate(data, y, champion, bad)
    assert not out.passed and out.reason.startswith("worse than the champion on amount <")
