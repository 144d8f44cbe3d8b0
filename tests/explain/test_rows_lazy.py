"""Row explanations are built on first read (rows.py ``_Rows``): each row holds what the
attribution matrix, the model's output and the frame say, and behaves like the tuple it
stands for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

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
