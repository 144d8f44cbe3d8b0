"""Row explanations are built on first read (rows.py ``_Rows``): each row holds what the
attribution matrix, the model's output and the frame say, and behaves like the tuple it
stands for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from aiwarden.errors import DataError
from aiwarden.explain import explain_rows


def test_each_row_is_read_from_the_matrix_and_the_frame(xy) -> None:
    x, y, _ = xy
    model = RandomForestClassifier(10, max_depth=4, random_state=0).fit(x, y)
    rows = x.iloc[:40]
    r = explain_rows(model, rows, x, background_size=30)
    assert len(r.explanations) == 40
    out = model.predict_proba(rows)[:, 1]
    for i in (0, 17, 39, -1):
        e = r.explanations[i]
        k = i % 40
        assert e.row == k
        by_name = {c.feature: c for c in e.contributions}
        for j, f in enumerate(r.features):
            assert by_name[f].contribution == r.values[k, j]
            assert by_name[f].value == rows[f].iloc[k]
        sizes = [abs(c.contribution) for c in e.contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert e.output == pytest.approx(out[k], abs=1e-12)
        assert e.residual == pytest.approx(e.output - e.base_value - r.values[k].sum(),
                                           abs=1e-12)
    with pytest.raises(IndexError):
        r.explanations[40]
    assert r.explanations[-1] is r.explanations[39]  # built once
    assert r.explanations[2:5] == tuple(r.explanations)[2:5]
    assert r.max_abs_residual == max(abs(e.residual) for e in r.explanations)
    again = explain_rows(model, rows, x, background_size=30)
    assert again.explanations == r.explanations and again == r
    assert [e.to_dict() for e in again.explanations] == r.to_dict()["explanations"]


def test_categorical_values_are_the_raw_categories() -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"amount": rng.normal(size=200),
                      "shop": rng.choice(["web", "store"], 200)})
    y = (x.amount + (x.shop == "web") > 0.5).astype(int)
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["shop"]),
                                                 remainder="passthrough"),
                         LogisticRegression()).fit(x, y)
    r = explain_rows(pipe, x.iloc[:3], x, background_size=20, max_evals=50)
    for i, e in enumerate(r.explanations):
        values = {c.feature: c.value for c in e.contributions}
        assert values == {"amount": x.amount.iloc[i], "shop": x.shop.iloc[i]}
        assert isinstance(values["shop"], str)


class _Scorer:
    """A black box over mixed columns: NaN, nullable integers, booleans and text."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        amount = pd.to_numeric(frame["amount"]).fillna(0.0)
        count = pd.to_numeric(frame["count"]).fillna(0.0)
        return (2.0 * amount + count + frame["flag"].astype(float)
                + (frame["shop"] == "web").astype(float)).to_numpy()


@pytest.mark.parametrize("method", ["permutation", "lime"])
def test_json_of_the_arrays_equals_json_of_the_objects(method) -> None:
    """``to_dict`` is built from the arrays (rows.py ``dicts``), not from the objects: it
    must say exactly what each object's ``to_dict`` says, NaN as null, rules included."""
    import json

    rng = np.random.default_rng(1)
    n = 60
    x = pd.DataFrame({
        "amount": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "count": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 5, n)),
                          dtype="Int64"),
        "flag": rng.random(n) < 0.5,
        "shop": rng.choice(["web", "store"], n),
        "age": rng.integers(18, 90, n)})
    if method == "lime":  # LIME cannot draw around a missing value: it says so
        with pytest.raises(DataError, match=r"LIME cannot explain missing values.*'amount'"):
            explain_rows(_Scorer(), x.iloc[:8], x, method="lime", task="regression")
        x["amount"] = x["amount"].fillna(0.5)
        x["count"] = x["count"].fillna(1)
    r = explain_rows(_Scorer(), x.iloc[:8], x, method=method, background_size=20,
                     max_evals=50, lime_samples=200, lime_background=60, task="regression")
    fast = r.to_dict()["explanations"]
    slow = [e.to_dict() for e in r.explanations]
    assert json.dumps(fast, allow_nan=False) == json.dumps(slow, allow_nan=False)
    assert (method == "permutation") == any(  # a NaN input is null, not NaN
        c["value"] is None for e in fast for c in e["contributions"] if c["feature"] == "amount")
    assert all(isinstance(c["value"], bool) for e in fast for c in e["contributions"]
               if c["feature"] == "flag")
    assert (method == "lime") == all("rule" in c for e in fast for c in e["contributions"])


def test_json_of_a_multiclass_tree_names_each_rows_class(xy) -> None:
    from sklearn.datasets import make_classification

    x, y = make_classification(300, 5, n_informative=3, n_classes=3, random_state=0)
    x = pd.DataFrame(x, columns=list("abcde"))
    labels = np.array(["low", "mid", "high"])[y]
    model = RandomForestClassifier(10, random_state=0).fit(x, labels)
    r = explain_rows(model, x.iloc[:30], x, background_size=20)
    fast = r.to_dict()["explanations"]
    assert fast == [e.to_dict() for e in r.explanations]
    assert [e["explained_class"] for e in fast] == model.predict(x.iloc[:30]).tolist()
