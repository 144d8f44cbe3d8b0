"""The default drift rule, measured: false alarms and detection on the issue's protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiwarden.demo.synthetic import calibration_reference, calibration_windows
from aiwarden.engine import Reference


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.fit(calibration_reference())


def _rates(ref: Reference, n_windows: int, rows: int, **shift: float) -> tuple[float, float]:
    fa = fa_n = hit = hit_n = 0
    for w in calibration_windows(n_windows, rows, seed=7, **shift):
        for col in ref.compare(ref.profile(w.data)).features:
            if col.column in w.shifted:
                hit, hit_n = hit + col.drifted, hit_n + 1
            else:
                fa, fa_n = fa + col.drifted, fa_n + 1
    return fa / max(fa_n, 1), hit / max(hit_n, 1)


@pytest.mark.slow
def test_unshifted_windows_rarely_flag(reference: Reference) -> None:
    false_alarms, _ = _rates(reference, 200, 10_000)
    assert false_alarms <= 0.01


@pytest.mark.slow
def test_quarter_sd_mean_shift_is_detected(reference: Reference) -> None:
    false_alarms, detected = _rates(reference, 200, 10_000, mean_shift=0.25)
    assert detected >= 0.95
    assert false_alarms <= 0.01  # the categorical column is unshifted here


@pytest.mark.slow
def test_category_share_move_is_detected(reference: Reference) -> None:
    false_alarms, detected = _rates(reference, 200, 10_000, share_shift=0.10)
    assert detected >= 0.95
    assert false_alarms <= 0.01


def test_tiny_windows_do_not_flag_sampling_noise(reference: Reference) -> None:
    false_alarms, _ = _rates(reference, 100, 200)
    assert false_alarms <= 0.01


def test_large_samples_do_not_flag_negligible_differences() -> None:
    """The p-value trap: a 0.02 sd shift is 'significant' at 1M rows and irrelevant."""
    rng = np.random.default_rng(11)
    ref_df = pd.DataFrame({"x": rng.normal(size=1_000_000)})
    cur_df = pd.DataFrame({"x": rng.normal(0.02, 1.0, size=1_000_000)})
    ref = Reference.fit(ref_df)
    col = ref.compare(ref.profile(cur_df))["x"]
    assert col.p_value < 1e-6  # a p-value rule would alarm
    assert not col.drifted
    assert col.severity < 0.5


def test_severity_grows_with_shift(reference: Reference) -> None:
    sev = []
    for shift in (0.0, 0.25, 0.5, 1.0):
        w = next(iter(calibration_windows(1, 10_000, mean_shift=shift, seed=3)))
        sev.append(reference.compare(reference.profile(w.data))["normal"].severity)
    assert sev == sorted(sev)
    assert sev[-1] >= 2.0


def test_unstable_reference_raises_the_threshold() -> None:
    """A feature that wanders over the reference's own time needs a bigger change to alert."""
    rng = np.random.default_rng(5)
    n = 100_000
    t = pd.date_range("2026-01-01", periods=n, freq="min")
    wander = np.repeat(rng.normal(0, 0.15, 10), n // 10)  # level moves chunk to chunk
    df = pd.DataFrame({"timestamp": t, "steady": rng.normal(size=n),
                       "wandering": rng.normal(size=n) + wander})
    rng.shuffle(wander)
    ref = Reference.fit(df)
    inst = ref.instability_
    assert inst["wandering"]["wasserstein"] > 0.05
    assert inst["steady"]["wasserstein"] == 0.0
    report = ref.compare(ref.profile(df.iloc[:10_000]))
    assert report["wandering"].threshold > report["steady"].threshold


def test_reference_sorted_by_a_feature_is_not_called_unstable() -> None:
    rng = np.random.default_rng(6)
    x = np.sort(rng.normal(size=50_000))
    ref = Reference.fit(pd.DataFrame({"x": x}))
    assert ref.instability_.get("x", {}).get("wasserstein", 0.0) == 0.0


def test_reference_sorted_by_a_category_still_detects_drift() -> None:
    """Validation sets exported ORDER BY some column must not hide drift."""
    rng = np.random.default_rng(8)
    n = 20_000
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    x = rng.normal(size=n) + (region == "north")
    ref_df = pd.DataFrame({"region": region, "x": x}).sort_values("region")
    cur_region = rng.choice(["north", "south", "east", "west"], 5_000, p=[0.1, 0.3, 0.2, 0.4])
    cur = pd.DataFrame({"region": cur_region,
                        "x": rng.normal(size=5_000) + (cur_region == "north")})
    report = Reference.fit(ref_df).compare(cur)
    assert {"region", "x"} <= set(report.drifted_features)
    assert report["region"].instability == 0.0


def test_sparse_high_cardinality_category_does_not_false_alarm() -> None:
    """A 1,000-category Zipf column sampled thinly: new samples hit values the reference
    never saw, which the noise model must expect (Good–Turing) rather than call drift."""
    rng = np.random.default_rng(9)
    shares = 1.0 / np.arange(1, 1001) ** 1.1
    shares /= shares.sum()
    cats = np.array([f"c{i}" for i in range(1000)])
    ref = Reference.fit(pd.DataFrame({"c": rng.choice(cats, 10_000, p=shares)}))
    flags = [ref.compare(pd.DataFrame({"c": rng.choice(cats, 10_000, p=shares)}))["c"].drifted
             for _ in range(60)]
    assert sum(flags) <= 1
    moved = shares.copy()
    moved[:5] = moved[:5][::-1]  # the top five categories swap shares
    assert ref.compare(pd.DataFrame({"c": rng.choice(cats, 10_000, p=moved)}))["c"].drifted
