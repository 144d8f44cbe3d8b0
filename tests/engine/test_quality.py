"""Data-quality findings: each check fires when it should, stays silent on clean data, and its
example rows really hold the bad values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.engine import QualitySettings, Reference
from aiwarden.errors import ParameterError

N_REF = 20_000
COLORS = ["red", "green", "blue", "black"]


def _sample(seed: int, n: int) -> pd.DataFrame:
    """x continuous, k discrete, m 5% missing, c four colours, b boolean."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=n)
    m[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "x": rng.normal(50.0, 10.0, n),
        "k": rng.integers(0, 10, n),
        "m": m,
        "c": rng.choice(COLORS, n, p=[0.4, 0.3, 0.2, 0.1]),
        "b": rng.random(n) < 0.4,
    })


def _tail(seed: int, n: int) -> pd.DataFrame:
    """r: a long tail of categories (geometric ranks), many seen once; z: noise."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"r": [f"v{t}" for t in rng.geometric(0.02, n)],
                         "z": rng.normal(size=n)})


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(_sample(0, N_REF))


@pytest.fixture(scope="module")
def tail_ref() -> Reference:
    return Reference.fit(_tail(0, N_REF))


def _only(report, column: str | None, check: str):
    hits = [f for f in report.findings if f.column == column and f.check == check]
    assert len(hits) == 1, report.findings
    return hits[0]


def _checks(report) -> set[tuple[str | None, str]]:
    return report.checks()


# ------------------------------------------------------------------------------ clean data
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("n", [200, 5000, 20_000])
def test_clean_sample_of_the_reference_distribution_has_no_findings(ref: Reference, seed: int,
                                                                    n: int) -> None:
    cur = _sample(seed, n)
    assert cur.m.isna().any()  # missing values at the reference's own rate are tolerated
    report = ref.check_quality(cur)
    assert report.findings == ()
    assert report.ok
    assert report.n_rows == n


def test_reference_against_itself_has_no_findings(ref: Reference) -> None:
    assert ref.check_quality(_sample(0, N_REF)).findings == ()
    assert ref.check_quality(ref.profile_).findings == ()


# ------------------------------------------------------------------------ presence checks
def test_missing_column(ref: Reference) -> None:
    cur = _sample(7, 3000).drop(columns=["k"])
    f = _only(ref.check_quality(cur), "k", "missing_column")
    assert (f.severity, f.count, f.rate) == ("error", 3000, 1.0)
    assert "'k'" in f.message
    assert _checks(ref.check_quality(cur)) == {("k", "missing_column")}


def test_extra_column(ref: Reference) -> None:
    cur = _sample(7, 3000).assign(surprise=np.arange(3000))
    report = ref.check_quality(cur)
    f = _only(report, "surprise", "extra_column")
    assert (f.severity, f.count) == ("warning", 3000)
    assert _checks(report) == {("surprise", "extra_column")}


def test_missing_values_in_a_column_that_had_none(ref: Reference) -> None:
    cur = _sample(8, 5000)
    cur.loc[[123, 4000], "x"] = np.nan
    cur.loc[77, "c"] = None
    report = ref.check_quality(cur)
    assert _checks(report) == {("x", "missing_values"), ("c", "missing_values")}
    fx = _only(report, "x", "missing_values")
    assert (fx.severity, fx.count, fx.reference_rate) == ("warning", 2, 0.0)
    assert fx.rate == pytest.approx(2 / 5000)
    assert fx.examples == (123, 4000)
    assert cur.x.iloc[list(fx.examples)].isna().all()
    fc = _only(report, "c", "missing_values")
    assert (fc.count, fc.examples) == (1, (77,))


def test_missing_values_rate_jump(ref: Reference) -> None:
    ref_rate = ref.profile_.columns["m"].missing / N_REF
    assert 0.04 < ref_rate < 0.06
    cur = _sample(9, 5000)
    rng = np.random.default_rng(9)
    cur.loc[rng.random(5000) < 0.12, "m"] = np.nan  # ~16% missing in all
    f = _only(ref.check_quality(cur), "m", "missing_values")
    assert f.severity == "warning"
    assert f.count == int(cur.m.isna().sum())
    assert f.rate == pytest.approx(cur.m.isna().mean())
    assert f.reference_rate == pytest.approx(ref_rate)
    assert f.examples == tuple(np.flatnonzero(cur.m.isna().to_numpy())[:5])


def test_missing_values_small_rate_rise_is_not_reported(ref: Reference) -> None:
    """A rise under ``min_rate_increase`` (1 point) is not material even if significant."""
    cur = _sample(10, 20_000)
    cur.loc[np.random.default_rng(10).random(20_000) < 0.009, "m"] = np.nan
    rate = cur.m.isna().mean()
    ref_rate = ref.profile_.columns["m"].missing / N_REF
    assert 0.006 < rate - ref_rate < 0.01
    assert ("m", "missing_values") not in _checks(ref.check_quality(cur))
    loose = QualitySettings(min_rate_increase=0.0)
    assert ("m", "missing_values") in _checks(ref.check_quality(cur, loose))


# -------------------------------------------------------------------- numerical hard checks
def _arrow_with_x(cur: pd.DataFrame, x: list | np.ndarray) -> pa.Table:
    t = pa.Table.from_pandas(cur, preserve_index=False)
    return t.set_column(t.column_names.index("x"), "x", pa.array(x, pa.float64()))


def test_nan_in_a_column_that_had_none(ref: Reference) -> None:
    cur = _sample(11, 4000)
    x = cur.x.to_numpy().copy()
    x[[10, 3999]] = np.nan  # a real NaN (pandas would call it missing): Arrow keeps it
    report = ref.check_quality(_arrow_with_x(cur, x))
    assert _checks(report) == {("x", "nan")}
    f = _only(report, "x", "nan")
    assert (f.severity, f.count, f.examples, f.reference_rate) == ("error", 2, (10, 3999), 0.0)


def test_nan_rate_against_a_reference_that_has_nan() -> None:
    rng = np.random.default_rng(12)

    def batch(n: int, nan_rate: float) -> pa.Table:
        x = rng.normal(size=n)
        x[rng.random(n) < nan_rate] = np.nan
        return pa.table({"x": pa.array(x), "z": pa.array(rng.normal(size=n))})

    r = Reference.fit(batch(N_REF, 0.03))
    assert r.profile_.columns["x"].nan > 0
    for _ in range(4):
        assert r.check_quality(batch(5000, 0.03)).findings == ()
    cur = batch(5000, 0.10)
    f = _only(r.check_quality(cur), "x", "nan")
    assert f.severity == "warning"  # NaN was already known, only its rate rose
    x = cur.column("x").to_numpy()
    assert f.count == int(np.isnan(x).sum())
    assert f.examples == tuple(np.flatnonzero(np.isnan(x))[:5])


def test_infinite_values(ref: Reference) -> None:
    cur = _sample(13, 4000)
    cur.loc[500, "x"] = np.inf
    cur.loc[20, "x"] = -np.inf
    report = ref.check_quality(cur)
    assert _checks(report) == {("x", "infinite")}
    f = _only(report, "x", "infinite")
    assert (f.severity, f.count) == ("error", 2)
    assert set(f.examples) == {20, 500}
    assert np.isinf(cur.x.iloc[list(f.examples)]).all()


def test_invalid_type(ref: Reference) -> None:
    cur = _sample(14, 4000)
    cur["k"] = cur.k.astype(object)
    cur.loc[[3, 2500], "k"] = ["seven", "N/A"]
    report = ref.check_quality(cur)
    assert _checks(report) == {("k", "invalid_type")}
    f = _only(report, "k", "invalid_type")
    assert (f.severity, f.count, f.examples) == ("error", 2, (3, 2500))
    assert list(cur.k.iloc[list(f.examples)]) == ["seven", "N/A"]


@pytest.mark.parametrize("value", [1e308, -1e6, 1e4])
def test_far_out_of_range(ref: Reference, value: float) -> None:
    cur = _sample(15, 4000)
    cur.loc[1234, "x"] = value
    report = ref.check_quality(cur)
    f = _only(report, "x", "far_out_of_range")
    assert (f.severity, f.count, f.reference_rate) == ("error", 1, 0.0)
    assert 1234 in f.examples
    assert report.errors == (f,)


def test_value_just_outside_the_range_is_not_far(ref: Reference) -> None:
    lo, hi = ref.binnings_["x"].interior[[0, -1]]
    cur = _sample(16, 4000)
    cur.loc[99, "x"] = hi + 0.05 * (hi - lo)
    checks = _checks(ref.check_quality(cur))
    assert ("x", "far_out_of_range") not in checks
    assert ("x", "out_of_range") not in checks  # one value in 4000 is no statistical excess


def test_range_examples_hold_the_values_they_report(ref: Reference) -> None:
    lo, hi = ref.binnings_["x"].interior[[0, -1]]
    span = hi - lo
    cur = _sample(17, 4000)
    near_rows = list(range(100, 400))
    cur.loc[near_rows, "x"] = lo - 0.1 * span
    cur.loc[3900, "x"] = 1e308
    report = ref.check_quality(cur)
    far = _only(report, "x", "far_out_of_range")
    near = _only(report, "x", "out_of_range")
    assert far.count == 1
    assert far.examples == (3900,)
    assert 3900 not in near.examples


# ------------------------------------------------------------- out of range (statistical)
def test_a_few_values_just_outside_the_range_in_a_large_batch_do_not_fire(ref: Reference) -> None:
    lo, hi = ref.binnings_["x"].interior[[0, -1]]
    for seed in (18, 19, 20):
        cur = _sample(seed, 20_000)
        cur.loc[[5, 6, 7], "x"] = [hi + 0.01, hi + 0.2, lo - 0.3]
        assert ref.check_quality(cur).findings == ()


def test_a_burst_of_values_just_outside_the_range_fires(ref: Reference) -> None:
    lo, hi = ref.binnings_["x"].interior[[0, -1]]
    cur = _sample(21, 20_000)
    burst = np.arange(1000, 1300)
    cur.loc[burst, "x"] = hi + np.linspace(0.01, 0.3, len(burst)) * (hi - lo)
    report = ref.check_quality(cur)
    assert _checks(report) == {("x", "out_of_range")}
    f = _only(report, "x", "out_of_range")
    outside = (cur.x > hi) | (cur.x < lo)
    assert f.severity == "warning"
    assert f.count == int(outside.sum()) >= 300
    assert f.rate == pytest.approx(f.count / 20_000)
    assert f.reference_rate == pytest.approx(2 / (N_REF + 1))
    assert outside.iloc[list(f.examples)].all()


def test_out_of_range_on_a_discrete_column(ref: Reference) -> None:
    cur = _sample(22, 5000)
    cur.loc[cur.index[:400], "k"] = 10  # just above the reference's 0..9
    f = _only(ref.check_quality(cur), "k", "out_of_range")
    assert f.count == 400
    assert (cur.k.iloc[list(f.examples)] == 10).all()


# ------------------------------------------------------------------------ categorical checks
def test_unseen_category_in_a_column_with_no_rare_values(ref: Reference) -> None:
    cur = _sample(23, 5000)
    cur.loc[[42, 43], "c"] = ["purple", "Red"]
    report = ref.check_quality(cur)
    assert _checks(report) == {("c", "unseen_category")}
    f = _only(report, "c", "unseen_category")
    assert (f.severity, f.count, f.examples) == ("warning", 2, (42, 43))
    assert f.values == {"purple": 1, "Red": 1}


def test_unseen_values_in_a_long_tail_fire_only_in_a_burst(tail_ref: Reference) -> None:
    seen = set(tail_ref.binnings_["r"].categories)
    singletons = int(np.count_nonzero(tail_ref.profile_.columns["r"].counts[:-1] == 1))
    assert singletons > 20  # the reference makes unseen values expected
    for seed in (1, 2, 3):
        clean = _tail(seed, 2000)
        assert (~clean.r.isin(seen)).any()  # a clean sample of a long tail holds new values
        assert tail_ref.check_quality(clean).findings == ()
    cur = _tail(1, 2000)
    cur.loc[1000:1099, "r"] = "NEW"
    report = tail_ref.check_quality(cur)
    assert report.checks() == {("r", "unseen_category")}
    f = _only(report, "r", "unseen_category")
    unseen = ~cur.r.isin(seen)
    assert f.severity == "warning"
    assert f.count == int(unseen.sum())
    assert f.values["NEW"] == 100
    assert next(iter(f.values)) == "NEW"  # most frequent first
    assert f.reference_rate == pytest.approx(singletons / N_REF)
    assert f.examples == tuple(np.flatnonzero(unseen.to_numpy())[:5])
    assert unseen.iloc[list(f.examples)].all()


def test_unseen_rate_check_false_alarm_rate_on_clean_batches() -> None:
    alarms = 0
    for ref_seed in range(1000, 1005):
        r = Reference.fit(_tail(ref_seed, N_REF))
        alarms += sum(bool(r.check_quality(_tail(seed, N_REF)).findings)
                      for seed in range(100, 120))
    # 100 clean batches at alpha = 0.001: 3 or more alarms has probability ~2e-4.
    assert alarms <= 2


def test_unseen_value_in_a_boolean_is_an_error(ref: Reference) -> None:
    cur = _sample(25, 3000)
    t = pa.Table.from_pandas(cur, preserve_index=False)
    b = np.where(cur.b, "true", "false").astype(object)
    b[1717] = "yes"
    t = t.set_column(t.column_names.index("b"), "b", pa.array(b, pa.string()))
    report = ref.check_quality(t)
    assert _checks(report) == {("b", "unseen_category")}
    f = _only(report, "b", "unseen_category")
    assert (f.severity, f.count, f.examples, f.values) == ("error", 1, (1717,), {"yes": 1})


# ----------------------------------------------------------------------------- constant
def test_constant_numerical_and_categorical_columns(ref: Reference) -> None:
    cur = _sample(26, 500).assign(x=50.0, c="red")
    # Fill m's gaps with distinct values so that no two rows become duplicates.
    cur["m"] = cur.m.fillna(pd.Series(np.random.default_rng(26).normal(size=500)))
    report = ref.check_quality(cur)
    assert _checks(report) == {("x", "constant"), ("c", "constant")}
    fx = _only(report, "x", "constant")
    assert (fx.severity, fx.count) == ("warning", 500)
    assert "50" in fx.message


def test_constant_needs_enough_rows(ref: Reference) -> None:
    small = _sample(27, 19).assign(x=50.0, c="red")
    assert ref.check_quality(small).findings == ()
    assert ("x", "constant") in _checks(ref.check_quality(_sample(27, 20).assign(x=50.0)))
    strict = QualitySettings(min_rows_constant=100)
    assert ref.check_quality(_sample(27, 99).assign(x=50.0), strict).findings == ()


def test_constant_is_not_reported_when_the_reference_is_constant_too() -> None:
    rng = np.random.default_rng(28)
    data = pd.DataFrame({"x": np.full(1000, 3.0), "c": "only", "z": rng.normal(size=1000)})
    r = Reference.fit(data)
    cur = pd.DataFrame({"x": np.full(500, 3.0), "c": "only", "z": rng.normal(size=500)})
    assert r.check_quality(cur).findings == ()


def test_constant_reference_has_an_out_of_range_band() -> None:
    rng = np.random.default_rng(29)
    r = Reference.fit(pd.DataFrame({"x": np.full(1000, 1.0), "z": rng.normal(size=1000)}))
    cur = pd.DataFrame({"x": np.full(500, 1.0), "z": rng.normal(size=500)})
    cur.loc[7, "x"] = 1.5
    assert ("x", "far_out_of_range") not in _checks(r.check_quality(cur))


# ------------------------------------------------------------------------- duplicate rows
def test_duplicate_rows(ref: Reference) -> None:
    assert ref.duplicate_rate_ == 0.0
    cur = _sample(30, 5000)
    cur.iloc[4500:5000] = cur.iloc[0:500].to_numpy()  # 500 copies of earlier rows
    report = ref.check_quality(cur)
    assert _checks(report) == {(None, "duplicate_rows")}
    f = _only(report, None, "duplicate_rows")
    assert (f.severity, f.count) == ("warning", 500)
    assert f.rate == pytest.approx(0.1)
    assert int(cur.duplicated().sum()) == f.count


def test_duplicate_rows_below_the_material_rate_are_not_reported(ref: Reference) -> None:
    cur = _sample(31, 5000)
    cur.iloc[4980:5000] = cur.iloc[0:20].to_numpy()  # 0.4% < min_rate_increase
    assert ref.check_quality(cur).findings == ()
    assert ref.profile(cur).duplicates == 20


def test_rows_differing_in_one_column_are_not_duplicates(ref: Reference) -> None:
    cur = _sample(32, 2000)
    cur.iloc[1000:2000] = cur.iloc[0:1000].to_numpy()
    cur.loc[1000:1999, "b"] = ~cur.loc[0:999, "b"].to_numpy()
    assert ref.profile(cur).duplicates == 0


# ------------------------------------------------------------------- report and settings
def test_report_lists_errors_first_and_serialises(ref: Reference) -> None:
    cur = _sample(33, 3000).drop(columns=["k"]).assign(extra=1)
    cur.loc[5, "x"] = 1e9
    cur.loc[6, "c"] = None
    report = ref.check_quality(cur)
    sev = [f.severity for f in report.findings]
    assert sev == sorted(sev, key=["error", "warning", "info"].index)
    assert not report.ok
    assert {f.check for f in report.errors} == {"far_out_of_range", "missing_column"}
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert len(d["findings"]) == len(report.findings)
    assert d["findings"][0]["examples"] == list(report.findings[0].examples)
    df = report.to_pandas()
    assert list(df["check"]) == [f.check for f in report.findings]
    assert report.for_column("c")[0].check == "missing_values"


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0.0}, {"alpha": 1.5}, {"min_rate_increase": -0.1}, {"min_rate_increase": 1.0},
     {"min_rows_constant": 1}, {"min_rows_constant": 2.5}],
)
def test_bad_quality_settings(kwargs) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ParameterError, match=f"'{name}' parameter of QualitySettings"):
        QualitySettings(**kwargs)


def test_merged_profiles_keep_example_rows_of_each_batch(ref: Reference) -> None:
    a, b = _sample(34, 1000), _sample(35, 1000)
    a.loc[10, "x"] = np.inf
    b.loc[20, "x"] = np.inf
    merged = ref.profile(a) + ref.profile(b).shifted(1000)
    f = _only(ref.check_quality(merged), "x", "infinite")
    assert f.count == 2
    assert f.examples == (10, 1020)
    assert np.isinf(pd.concat([a, b], ignore_index=True).x.iloc[list(f.examples)]).all()


def test_a_negative_value_in_a_never_negative_column_is_an_error() -> None:
    rng = np.random.default_rng(31)
    ref = Reference.fit(pd.DataFrame({"tenure": rng.gamma(2.0, 10.0, 10_000)}))
    cur = pd.DataFrame({"tenure": rng.gamma(2.0, 10.0, 2_000)})
    cur.loc[1234, "tenure"] = -3.0
    (f,) = ref.check_quality(cur).for_column("tenure")
    assert (f.check, f.severity, f.count, f.examples) == ("negative_values", "error", 1, (1234,))
    assert ref.check_quality(cur.drop(index=1234)).findings == ()


def test_dataset_drift_is_a_share_of_measured_features() -> None:
    rng = np.random.default_rng(32)
    df = pd.DataFrame({k: rng.normal(size=5_000) for k in "abcd"})
    ref = Reference.fit(df)
    report = ref.compare(df.assign(a=df.a + 1, b=df.b + 1).drop(columns=["d"]))
    assert report.share_drifted == pytest.approx(2 / 3)
    assert report.dataset_drifted() and not report.dataset_drifted(share=0.9)
