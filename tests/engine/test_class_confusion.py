"""ClassConfusion against scikit-learn on raw labels, merging, pair names."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from aiwarden.engine.class_confusion import ClassConfusion, class_index, split_pair
from aiwarden.errors import ParameterError

CLASSES = ["apple", "banana", "cucumber", "durian"]


def _labels(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES[:3], n, p=[0.5, 0.3, 0.2])  # durian: never true
    pred = np.where(rng.random(n) < 0.7, y, rng.choice(CLASSES, n))
    return y, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_match_sklearn(seed: int) -> None:
    y, pred = _labels(seed)
    cc = ClassConfusion.from_labels(y, pred, classes=CLASSES)
    np.testing.assert_array_equal(cc.matrix, confusion_matrix(y, pred, labels=CLASSES))
    kw = {"labels": CLASSES, "average": None, "zero_division": np.nan}
    a = cc.arrays()
    np.testing.assert_allclose(a["recall"], recall_score(y, pred, **kw), rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["precision"], precision_score(y, pred, **kw), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(a["f1"], f1_score(y, pred, **kw), rtol=0, atol=1e-12)
    assert np.isnan(a["recall"][3])  # no true durian: undefined, not 0
    assert cc.per_class()[3]["recall"] is None
    cm = confusion_matrix(y, pred, labels=CLASSES)
    pairs = cc.pairs()
    off = sorted((cm[i, j] for i in range(4) for j in range(4) if i != j and cm[i, j]),
                 reverse=True)
    assert [p["count"] for p in pairs] == off
    for p in pairs:
        i, j = CLASSES.index(p["true"]), CLASSES.index(p["pred"])
        assert p["rate"] == pytest.approx(cm[i, j] / cm[i].sum(), abs=1e-12)
    by_rate = [p["rate"] for p in cc.pairs(by="rate")]
    assert by_rate == sorted(by_rate, reverse=True)
    assert len(cc.pairs(top=3)) == 3


def test_buckets_sum_to_the_window() -> None:
    y, pred = _labels(5)
    parts = [ClassConfusion.from_labels(y[i:i + 300], pred[i:i + 300], classes=CLASSES)
             for i in range(0, len(y), 300)]
    whole = ClassConfusion.from_labels(y, pred, classes=CLASSES)
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    np.testing.assert_array_equal(merged.matrix, whole.matrix)
    with pytest.raises(ParameterError, match="classes"):
        _ = parts[0] + ClassConfusion.from_labels(y, pred, classes=CLASSES[:3])


def test_unknown_labels_count_nowhere() -> None:
    cc = ClassConfusion.from_labels(["apple", "kiwi", None], ["apple", "apple", "apple"],
                                    classes=CLASSES)
    assert cc.n == 1 and cc.arrays()["precision"][0] == 1.0


def test_pair_names() -> None:
    classes = ["a->b", "b", "c"]
    assert split_pair("a->b->c", classes) == (0, 2)
    assert split_pair("b->a->b", classes) == (1, 0)
    with pytest.raises(ParameterError, match="'kiwi' is not a class") as exc:
        split_pair("b->kiwi", classes)
    assert exc.value.field == "pair"
    with pytest.raises(ParameterError, match="two different"):
        split_pair("b->b", classes)
    with pytest.raises(ParameterError, match="true->predicted"):
        split_pair("banana", classes)
    with pytest.raises(ParameterError, match="'B' is not a class") as exc:
        class_index("B", classes)
    assert exc.value.field == "class"
