"""Attribution drift (Clarify's nDCG, per-feature shift) and drift weighed by importance."""

from __future__ import annotations

import math

import pytest
from scipy import stats
from sklearn.ensemble import RandomForestClassifier

from aiwarden.engine.reference import Reference
from aiwarden.errors import ParameterError
from aiwarden.explain import attribution_drift, global_importance, ndcg, weigh_drift
from tests.explain.conftest import data


def _clarify(ref: dict[str, float], live: dict[str, float]) -> float:
    """The definition written out by hand, for four features without ties."""
    live_order = sorted(live, key=lambda f: -live[f])
    ideal_order = sorted(ref, key=lambda f: -ref[f])
    dcg = sum(ref[f] / math.log2(i + 2) for i, f in enumerate(live_order))
    idcg = sum(ref[f] / math.log2(i + 2) for i, f in enumerate(ideal_order))
    return dcg / idcg


def test_ndcg_matches_the_definition() -> None:
    ref = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    live = {"a": 0.1, "b": 0.4, "c": 0.2, "d": 0.3}
    # by hand: live order b, d, c, a -> DCG = .3/1 + .05/log2(3) + .15/2 + .5/log2(5)
    dcg = 0.3 + 0.05 / math.log2(3) + 0.15 / 2 + 0.5 / math.log2(5)
    idcg = 0.5 + 0.3 / math.log2(3) + 0.15 / 2 + 0.05 / math.log2(5)
    assert ndcg(ref, live) == pytest.approx(dcg / idcg, abs=1e-12)
    assert ndcg(ref, live) == pytest.approx(_clarify(ref, live), abs=1e-12)
    assert ndcg(ref, ref) == 1.0
    top2 = (0.3 + 0.05 / math.log2(3)) / (0.5 + 0.3 / math.log2(3))
    assert ndcg(ref, live, top_k=2) == pytest.approx(top2, abs=1e-12)
    with pytest.raises(ParameterError, match="'top_k' parameter of ndcg"):
        ndcg(ref, live, top_k=0)


def test_attribution_drift_alarms_when_the_model_leans_elsewhere() -> None:
    x, y, _ = data(3000)
    model = RandomForestClassifier(20, max_depth=6, random_state=0).fit(x, y)
    ref = global_importance(model, x, x, sample_size=300, n_boot=100)
    same = global_importance(model, data(3000, seed=7)[0], x, sample_size=300, n_boot=100)
    calm = attribution_drift(ref, same)
    assert not calm.alarm and calm.ndcg > 0.95 and calm.shifted_features == ()
    moved = data(3000, seed=8)[0]
    moved["amount"] = moved["amount"] * 0.05  # amount stops varying: the model sees
    moved["hour"] = moved["hour"] * 3               # hour instead
    win = global_importance(model, moved, x, sample_size=300, n_boot=100)
    d = attribution_drift(ref, win)
    assert d.alarm and d.ndcg < 0.9
    assert {"amount", "hour"} <= set(d.shifted_features)
    f = next(s for s in d.features if s.feature == "amount")
    a = ref.values[:, ref.feature_order.index("amount")]
    b = win.values[:, win.feature_order.index("amount")]
    assert f.ks_statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert f.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-12)
    assert d.to_dict()["alarm"] is True


def test_attribution_drift_refuses_mixed_methods() -> None:
    x, y, _ = data(400)
    model = RandomForestClassifier(5, random_state=0).fit(x, y)
    tree = global_importance(model, x, x, sample_size=20, n_boot=10)
    perm = global_importance(model, x, x, sample_size=5, n_boot=10, method="permutation",
                             background_size=10, max_evals=50)
    with pytest.raises(ParameterError, match="same method"):
        attribution_drift(tree, perm)


def test_a_drifted_important_feature_outranks_a_drifted_ignored_one() -> None:
    importance = {"amount": 0.6, "age": 0.3, "noise": 0.01, "hour": 0.09}
    ranked = weigh_drift({"amount": 1.5, "noise": 4.0, "age": 0.5}, importance)
    assert [r.feature for r in ranked] == ["amount", "age", "noise"]
    assert ranked[0].importance_share == pytest.approx(0.6)
    assert ranked[0].impact == pytest.approx(1.5 * 0.6)
    unknown = weigh_drift({"amount": 1.0, "new_col": 9.0}, importance)
    assert unknown[-1].feature == "new_col" and unknown[-1].impact is None


def test_weigh_drift_reads_a_drift_report() -> None:
    x, y, _ = data(3000)
    model = RandomForestClassifier(20, max_depth=6, random_state=0).fit(x, y)
    imp = global_importance(model, x, x, sample_size=200, n_boot=50)
    cur = data(3000, seed=9)[0]
    cur["amount"] += 1.0   # the model leans on amount
    cur["noise"] += 3.0    # the model ignores noise, which drifts far more
    report = Reference.fit(x).compare(cur)
    assert report["noise"].severity > report["amount"].severity
    ranked = weigh_drift(report, imp, only_drifted=True)
    assert [r.feature for r in ranked][:2] == ["amount", "noise"]
    assert all(r.drifted for r in ranked)
