"""``should_stop`` stops an explanation between chunks of work (Cancelled), and the chunks
a stoppable Tree call is cut into give the same values as one call."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from aiwarden.errors import Cancelled
from aiwarden.explain import explain_rows, global_importance
from tests.explain.conftest import data


class Countdown:
    """Answers False ``n`` times, then True; counts the questions."""

    def __init__(self, n: int) -> None:
        self.n, self.asked = n, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked > self.n


@pytest.mark.parametrize("model", [RandomForestClassifier(8, max_depth=4, random_state=0),
                                   RandomForestRegressor(8, max_depth=4, random_state=0)],
                         ids=lambda m: type(m).__name__)
def test_tree_in_chunks_equals_one_call(model) -> None:
    x, y, t = data(2600)
    model.fit(x, y if hasattr(model, "predict_proba") else t)
    whole = explain_rows(model, x, x, background_size=20)
    asked = Countdown(10**6)
    chunked = explain_rows(model, x, x, background_size=20, should_stop=asked)
    assert asked.asked >= 3  # 2,600 rows: three chunks of at most 1,000
    np.testing.assert_array_equal(chunked.values, whole.values)
    assert chunked.explanations[2599] == whole.explanations[2599]


def test_tree_stops_between_chunks() -> None:
    x, y, _ = data(2600)
    model = RandomForestClassifier(8, max_depth=4, random_state=0).fit(x, y)
    stop = Countdown(2)
    with pytest.raises(Cancelled, match="should_stop"):
        explain_rows(model, x, x, background_size=20, should_stop=stop)
    assert stop.asked == 3


def test_lime_and_importance_stop_at_the_next_model_call() -> None:
    x, y, _ = data(300)
    model = LogisticRegression().fit(x, y)
    stop = Countdown(3)
    with pytest.raises(Cancelled):
        explain_rows(model, x.iloc[:20], x, method="lime", lime_samples=200,
                     should_stop=stop)
    assert stop.asked == 4  # one question per model call: it stopped at the first True
    stop = Countdown(1)
    with pytest.raises(Cancelled):
        global_importance(model, x, x, sample_size=50, method="lime", lime_samples=200,
                          should_stop=stop)
    assert stop.asked == 2
    never = Countdown(10**6)
    got = explain_rows(model, x.iloc[:3], x, method="lime", lime_samples=200,
                       should_stop=never)
    plain = explain_rows(model, x.iloc[:3], x, method="lime", lime_samples=200)
    assert got.explanations == plain.explanations and never.asked >= 4
