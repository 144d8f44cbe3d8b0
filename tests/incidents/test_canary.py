"""The canary comparison against scipy: the one-sided z-test is the square root of the
uncorrected 2x2 chi-square, halved p-value when the challenger is worse."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aiwarden.incidents.canary import compare_rates


@pytest.mark.parametrize(("champion", "challenger"), [
    ((30, 1000), (55, 1000)), ((5, 200), (6, 180)), ((120, 5000), (40, 1200)),
    ((0, 300), (9, 300)), ((50, 400), (20, 400)),
])
def test_matches_the_chi_square_test_of_scipy(champion, challenger) -> None:
    got = compare_rates(champion, challenger, alpha=0.01)
    table = np.array([[champion[0], champion[1] - champion[0]],
                      [challenger[0], challenger[1] - challenger[0]]])
    chi2, p_two, _, _ = stats.chi2_contingency(table, correction=False)
    assert got.z ** 2 == pytest.approx(chi2, rel=1e-9)
    worse = challenger[0] / challenger[1] > champion[0] / champion[1]
    assert got.p_value == pytest.approx(p_two / 2 if worse else 1 - p_two / 2, rel=1e-9)
    assert got.worse == (worse and p_two / 2 < 0.01)


def test_min_effect_and_min_samples_hold_back_a_verdict() -> None:
    assert compare_rates((30, 1000), (55, 1000), alpha=0.01).worse
    assert not compare_rates((30, 1000), (55, 1000), alpha=0.01, min_effect=0.03).worse
    assert compare_rates((3, 50), (20, 50), alpha=0.01, min_samples=100) is None
    same = compare_rates((0, 500), (0, 500), alpha=0.01)
    assert same is not None and not same.worse and same.p_value == 0.5
