"""Bad input: every malformed batch gives a clear typed error or a data-quality finding.

Empty frames, one row, all-NaN columns, mixed types, extreme values, unicode and empty-string
categories, columns missing from or added to a batch. Malformed values must never crash the
engine (pytest turns any RuntimeWarning into an error) and never be coerced into valid-looking
data: they are counted, with the row positions where they sit.
"""

from __future__ import annotations

import decimal
import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from aiwarden.engine import NumericalProfile, Profile, Reference
from aiwarden.errors import AiwardenError, DataError, SchemaError

N = 10_000
BAD_ROW = 4321


def _sample(seed: int, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(50.0, 10.0, n),
        "k": rng.integers(0, 10, n),
        "c": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "b": rng.random(n) < 0.4,
    })


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(_sample(0))


def _summary(report) -> set[tuple]:
    return {(f.column, f.check, f.severity) for f in report.findings}


def _nocounts(p: NumericalProfile) -> dict:
    return {k: v for k, v in p.to_dict().items() if k != "counts"}


# --------------------------------------------------------------------------- empty input
@pytest.mark.parametrize(
    "data",
    [pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=str)}),
     pa.table({"x": pa.array([], pa.float64())}),
     pl.DataFrame({"x": pl.Series([], dtype=pl.Float64)}),
     pd.DataFrame(), [], {}],
    ids=["pandas-0-rows", "arrow-0-rows", "polars-0-rows", "pandas-no-columns", "list", "dict"],
)
def test_fit_on_empty_data_is_a_data_error(data) -> None:
    with pytest.raises(DataError):
        Reference.fit(data)


def test_profile_of_an_empty_batch_is_a_data_error(ref: Reference) -> None:
    with pytest.raises(DataError, match="no rows"):
        ref.profile(_sample(1).iloc[:0])
    with pytest.raises(DataError, match="no rows"):
        ref.check_quality(_sample(1).iloc[:0])


def test_unreadable_input_is_a_data_error(ref: Reference) -> None:
    with pytest.raises(DataError, match="ndarray"):
        ref.profile(np.zeros((3, 4)))
    with pytest.raises(DataError, match="dict per row"):
        ref.profile([{"x": 1.0}, 2.0])


def test_fit_with_a_schema_naming_absent_columns(ref: Reference) -> None:
    with pytest.raises(SchemaError, match="'c'") as exc:
        Reference.fit(_sample(1)[["x", "k", "b"]], ref.schema_)
    assert exc.value.column == "c"


# ------------------------------------------------------------------------------- one row
def test_one_row_current_gives_no_findings_and_no_drift(ref: Reference) -> None:
    cur = _sample(2).iloc[[0]]
    assert ref.check_quality(cur).findings == ()
    report = ref.compare(cur)
    assert report.drifted_columns == ()
    assert all(c.n_current == 1 for c in report.columns)


def test_one_row_reference() -> None:
    one = _sample(3).iloc[[7]].reset_index(drop=True)
    r = Reference.fit(one)
    assert r.profile_.n_rows == 1
    # The reference row itself is clean and does not drift from itself.
    assert r.check_quality(one).findings == ()
    assert r.compare(one).drifted_columns == ()
    # One row describes no distribution: no verdict ('no data'), never a false alarm;
    # a value far away is still caught by data quality.
    cur = _sample(4, 500)
    report = r.compare(cur)
    assert all(not c.measured and c.level == "no data" for c in report.columns)
    assert all(np.isfinite(c.threshold) for c in report.columns)
    json.dumps(report.to_dict(), allow_nan=False)
    far = one.assign(x=one.x + 1e6)
    assert ("x", "far_out_of_range", "error") in _summary(r.check_quality(far))


# ------------------------------------------------------------------------ all-NaN columns
def test_all_nan_current_column_is_a_missing_values_finding(ref: Reference) -> None:
    cur = _sample(5, 2000).assign(x=np.nan)
    report = ref.check_quality(cur)
    (f,) = report.for_column("x")
    assert (f.check, f.severity, f.count, f.rate) == ("missing_values", "warning", 2000, 1.0)
    assert f.examples == (0, 1, 2, 3, 4)
    drift = ref.compare(cur)["x"]
    assert drift.n_current == 0
    assert not drift.drifted


def test_all_nan_reference_column_fits_and_checks_itself_clean() -> None:
    data = _sample(6, 3000).assign(x=np.nan)
    r = Reference.fit(data)
    assert r.profile_.columns["x"].missing == 3000
    assert r.check_quality(data).findings == ()
    assert not r.compare(data)["x"].drifted


def _fit_all_nan_reference() -> Reference | None:
    """None when the engine refuses an all-NaN column with a typed error naming it."""
    try:
        return Reference.fit(_sample(6, 3000).assign(x=np.nan))
    except DataError as exc:
        assert exc.column == "x"
        return None


def test_drift_against_an_all_nan_reference_column_is_not_claimed() -> None:
    r = _fit_all_nan_reference()
    if r is not None:
        col = r.compare(_sample(7, 3000))["x"]
        assert col.n_reference == 0
        assert not col.drifted


def test_values_after_an_all_nan_reference_column_are_not_far_out_of_a_fake_range() -> None:
    r = _fit_all_nan_reference()
    if r is not None:
        checks = {f.check for f in r.check_quality(_sample(7, 3000)).for_column("x")}
        assert not checks & {"far_out_of_range", "out_of_range"}


# ----------------------------------------------------------- malformed values in a column
def test_text_in_numeric_column_is_invalid_type_not_a_number_nor_missing(ref: Reference) -> None:
    clean = _sample(8, 2000)
    cur = clean.assign(x=clean.x.astype(object))
    cur.loc[17, "x"] = "abc"
    cur.loc[1500, "x"] = "12,5"  # a decimal comma is not silently read as 12.5 or 125
    p = ref.profile(cur).columns["x"]
    assert (p.invalid, p.missing, p.nan, p.posinf, p.neginf) == (2, 0, 0, 0, 0)
    assert p.examples["invalid"] == [17, 1500]
    # Every other value is kept exactly: same bins and moments as with those rows removed.
    expected = ref.profile(clean.drop(index=[17, 1500])).columns["x"]
    np.testing.assert_array_equal(p.counts, expected.counts)
    assert p.count == 1998
    assert p.mean == pytest.approx(expected.mean, rel=1e-12)
    assert (p.min, p.max) == (expected.min, expected.max)
    (f,) = ref.check_quality(cur).for_column("x")
    assert (f.check, f.severity, f.count, f.examples) == ("invalid_type", "error", 2, (17, 1500))


def test_numbers_written_as_text_are_parsed_and_nan_text_is_nan(ref: Reference) -> None:
    cur = pd.DataFrame({"x": ["50.5", "nan", "NaN", "abc", "1e308", "-inf", None, "49"]})
    p = ref.profile(cur).columns["x"]
    assert (p.nan, p.invalid, p.missing, p.posinf, p.neginf) == (2, 1, 1, 0, 1)
    assert p.examples["nan"] == [1, 2]
    assert p.examples["invalid"] == [3]
    assert p.examples["neginf"] == [5]
    assert p.examples["missing"] == [6]
    assert p.count == 3  # 50.5, 1e308 and 49
    assert p.max == 1e308
    checks = {f.check: f for f in ref.check_quality(cur).for_column("x")}
    assert checks["nan"].examples == (1, 2)
    assert checks["invalid_type"].examples == (3,)
    assert checks["infinite"].examples == (5,)
    assert checks["far_out_of_range"].examples == (4,)


@pytest.mark.parametrize("to_input", [lambda t: t, pl.from_arrow], ids=["arrow", "polars"])
def test_nan_inf_and_null_are_counted_separately(ref: Reference, to_input) -> None:
    x = pa.array([50.0, float("nan"), None, float("inf"), float("-inf"), 51.0] * 10)
    p = ref.profile(to_input(pa.table({"x": x}))).columns["x"]
    assert (p.n, p.count, p.missing, p.nan, p.posinf, p.neginf, p.invalid) == (
        60, 20, 10, 10, 10, 10, 0)
    assert p.examples["nan"] == [1, 7, 13, 19, 25]
    assert p.examples["missing"] == [2, 8, 14, 20, 26]
    assert p.examples["posinf"] == [3, 9, 15, 21, 27]
    assert p.examples["neginf"] == [4, 10, 16, 22, 28]
    assert (p.min, p.max) == (50.0, 51.0)  # the infinities are not values


def test_pandas_nan_is_missing(ref: Reference) -> None:
    """pandas uses NaN as its missing marker in float columns."""
    cur = _sample(9, 100)
    cur.loc[[3, 60], "x"] = np.nan
    p = ref.profile(cur).columns["x"]
    assert (p.missing, p.nan, p.count) == (2, 0, 98)
    assert p.examples["missing"] == [3, 60]


def test_int_column_arriving_as_float_with_nan(ref: Reference) -> None:
    clean = _sample(10, 3000)
    cur = clean.assign(k=clean.k.astype(float))
    cur.loc[[5, 2999], "k"] = np.nan
    assert cur.k.dtype == np.float64
    p = ref.profile(cur).columns["k"]
    assert (p.missing, p.invalid, p.nan) == (2, 0, 0)
    np.testing.assert_array_equal(p.counts, ref.profile(clean.drop(index=[5, 2999])).columns["k"]
                                  .counts)
    (f,) = ref.check_quality(cur).findings
    assert (f.column, f.check, f.count, f.examples) == ("k", "missing_values", 2, (5, 2999))
    assert not ref.compare(cur)["k"].drifted


def test_bool_column_with_missing_values_and_as_text(ref: Reference) -> None:
    clean = _sample(11, 2000)
    cur = clean.assign(b=pd.array(clean.b, dtype="boolean"))
    cur.loc[42, "b"] = pd.NA
    (f,) = ref.check_quality(cur).findings
    assert (f.column, f.check, f.count, f.examples) == ("b", "missing_values", 1, (42,))
    # Booleans that arrive as Arrow text "true"/"false" are the same categories.
    as_text = pa.Table.from_pandas(clean, preserve_index=False).set_column(
        3, "b", pa.array(np.where(clean.b, "true", "false")))
    assert ref.check_quality(as_text).findings == ()
    np.testing.assert_array_equal(ref.profile(as_text).columns["b"].counts,
                                  ref.profile(clean).columns["b"].counts)


def test_text_in_a_boolean_column_is_one_unseen_value(ref: Reference) -> None:
    cur = _sample(12, 2000)
    cur["b"] = cur.b.astype(object)
    cur.loc[9, "b"] = "maybe"
    p = ref.profile(cur).columns["b"]
    assert p.unseen == 1
    assert p.unseen_top == {"maybe": 1}
    assert p.examples["unseen"] == [9]


def test_python_int_beyond_int64_does_not_crash(ref: Reference) -> None:
    cur = pd.DataFrame({"x": [50, 2**70, 49] * 5, "k": [1] * 15, "c": ["red"] * 15,
                        "b": [True] * 15})
    report = ref.check_quality(cur)
    flagged = {e for f in report.for_column("x") for e in f.examples}
    assert 1 in flagged


def test_decimal_column_is_numeric() -> None:
    t = pa.table({"d": pa.array([decimal.Decimal(f"{i}.25") for i in range(200)],
                                pa.decimal128(10, 2))})
    r = Reference.fit(t)
    p = r.profile_.columns["d"]
    assert (p.invalid, p.count) == (0, 200)
    assert r.check_quality(t).findings == ()


def test_mixed_type_reference_column_is_categorical_not_coerced() -> None:
    mixed = pd.DataFrame({"m": [1, "a", 2.5, None, "b"] * 100, "x": np.arange(500.0)})
    r = Reference.fit(mixed)
    assert r.schema_["m"].dtype.value == "categorical"
    assert set(r.binnings_["m"].categories) == {"1", "a", "2.5", "b"}
    assert r.profile_.columns["m"].missing == 100
    assert r.check_quality(mixed).findings == ()


# -------------------------------------------------------------------------- extreme values
def test_several_extreme_values_in_a_batch_do_not_crash(ref: Reference) -> None:
    cur = _sample(13, 2000)
    cur.loc[[5, 6], "x"] = 1e308
    cur.loc[7, "x"] = -1.7976931348623157e308
    (f,) = ref.check_quality(cur).for_column("x")
    assert (f.check, f.severity, f.count) == ("far_out_of_range", "error", 3)
    assert {5, 6, 7} <= set(f.examples)  # exact examples: see test_quality
    # Three corrupted rows in 2,000 are a data-quality error, not a distribution shift:
    # moments and Wasserstein tails clamp them to the far band, so drift stays finite.
    col = ref.compare(cur)["x"]
    assert np.isfinite(col.value) and np.isfinite(ref.profile(cur).columns["x"].mean)


def test_profile_with_extreme_values_is_strict_json(ref: Reference) -> None:
    cur = _sample(13, 2000)
    cur.loc[[5, 6], "x"] = 1e308
    cur.loc[7, "x"] = -1e308
    json.dumps(ref.profile(cur).to_dict(), allow_nan=False)
    json.dumps(ref.compare(cur).to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "extremes",
    [[1e308], [1e308, -1e308], [1e300, -1e300],
     [1e150, -1e150]],
    ids=["one-1e308", "plus-minus-1e308", "plus-minus-1e300", "plus-minus-1e150"],
)
def test_reference_with_extreme_values_fits(extremes: list[float]) -> None:
    data = _sample(14, 2000)
    data.loc[list(range(len(extremes))), "x"] = extremes
    r = Reference.fit(data)
    assert r.profile_.columns["x"].max == max(extremes)
    assert r.check_quality(data).findings == ()


# ------------------------------------------------------------ unicode and empty categories
def test_unicode_and_empty_string_categories() -> None:
    rng = np.random.default_rng(15)
    cats = ["", "é", "日本", "🙂", "a b", "ǅ"]
    data = pd.DataFrame({"c": rng.choice(cats, 3000), "x": rng.normal(size=3000)})
    r = Reference.fit(data)
    assert set(r.binnings_["c"].categories) == set(cats)  # '' is a category, not missing
    assert r.profile_.columns["c"].missing == 0
    cur = pd.DataFrame({"c": rng.choice(cats, 3000), "x": rng.normal(size=3000)})
    assert r.check_quality(cur).findings == ()
    cur.loc[11, "c"] = "ü"
    cur.loc[12, "c"] = None
    found = {f.check: f for f in r.check_quality(cur).for_column("c")}
    assert set(found) == {"unseen_category", "missing_values"}
    assert found["unseen_category"].values == {"ü": 1}
    assert found["unseen_category"].examples == (11,)
    assert found["missing_values"].examples == (12,)
    back = Reference.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.binnings_["c"].categories == r.binnings_["c"].categories
    assert back.check_quality(cur).to_dict() == r.check_quality(cur).to_dict()


# ------------------------------------------------------------- columns missing or added
def test_missing_and_added_columns(ref: Reference) -> None:
    cur = _sample(16, 1500).drop(columns=["c"]).assign(new_feature=1.0)
    report = ref.check_quality(cur)
    found = {(f.column, f.check): f for f in report.findings}
    assert set(found) == {("c", "missing_column"), ("new_feature", "extra_column")}
    assert found["c", "missing_column"].severity == "error"
    assert found["c", "missing_column"].count == 1500
    assert found["new_feature", "extra_column"].severity == "warning"
    prof = ref.profile(cur)
    assert prof.columns["c"].absent == 1500
    assert prof.extra_columns == {"new_feature": 1500}
    drift = ref.compare(prof)["c"]
    assert drift.n_current == 0 and not drift.drifted


def test_records_with_a_missing_key_and_an_extra_key(ref: Reference) -> None:
    recs = _sample(17, 200).to_dict("records")
    del recs[3]["c"]
    recs[4]["surprise"] = 1
    found = {(f.column, f.check): f for f in ref.check_quality(recs).findings}
    assert set(found) == {("c", "missing_values"), ("surprise", "extra_column")}
    assert found["c", "missing_values"].examples == (3,)


def test_profile_of_a_batch_sharing_no_column_with_the_reference(ref: Reference) -> None:
    cur = pd.DataFrame({"foo": [1, 2, 3], "bar": ["a", "b", "c"]})
    prof = ref.profile(cur)
    assert prof.n_rows == 3
    assert set(prof.columns) == {"x", "k", "c", "b"}
    assert all(p.absent == 3 and p.count == 0 for p in prof.columns.values())
    assert prof.extra_columns == {"foo": 3, "bar": 3}
    report = ref.check_quality(prof)
    assert {(f.column, f.check) for f in report.errors} == {
        (c, "missing_column") for c in ("x", "k", "c", "b")}
    assert {(f.column, f.check) for f in report.findings if f.severity == "warning"} == {
        ("foo", "extra_column"), ("bar", "extra_column")}
    drift = ref.compare(prof)
    assert drift.drifted_columns == ()
    assert all(c.n_current == 0 for c in drift.columns)
    json.dumps(drift.to_dict(), allow_nan=False)
    json.dumps(prof.to_dict(), allow_nan=False)


def test_batch_with_a_repeated_column_name(ref: Reference) -> None:
    t = pa.Table.from_pandas(_sample(18, 10), preserve_index=False)
    t = t.append_column("x", pa.array(np.zeros(10)))
    with pytest.raises(AiwardenError, match="'x'"):
        ref.profile(t)


def test_pandas_category_batch_against_a_text_reference(ref: Reference) -> None:
    cur = _sample(19, 2000)
    cur["c"] = cur.c.astype("category")
    cur.loc[8, "c"] = np.nan
    found = ref.check_quality(cur).findings
    assert [(f.column, f.check, f.examples) for f in found] == [("c", "missing_values", (8,))]


# ------------------------------------------------- one corrupted record in 10,000 rows
CORRUPTIONS = {
    "1e308": ("x", 1e308, "far_out_of_range", "error"),
    "-inf": ("x", -np.inf, "infinite", "error"),
    "abc": ("x", "abc", "invalid_type", "error"),
    "bool-category": ("b", "maybe", "unseen_category", "error"),
}


@pytest.mark.parametrize("form", ["pandas", "records"])
@pytest.mark.parametrize(
    "corruption",
    list(CORRUPTIONS),
)
def test_single_corrupted_record_in_ten_thousand(ref: Reference, corruption: str,
                                                 form: str) -> None:
    column, value, check, severity = CORRUPTIONS[corruption]
    cur = _sample(20)
    if not isinstance(value, float):
        cur[column] = cur[column].astype(object)
    cur.loc[BAD_ROW, column] = value
    data = cur if form == "pandas" else cur.to_dict("records")
    report = ref.check_quality(data)
    assert [(f.column, f.check, f.severity) for f in report.errors] == [
        (column, check, severity)]
    (f,) = report.errors
    assert f.count == 1
    assert f.examples == (BAD_ROW,)
    assert not report.ok


def test_clean_ten_thousand_rows_have_no_error(ref: Reference) -> None:
    for seed in (21, 22, 23):
        report = ref.check_quality(_sample(seed))
        assert report.errors == ()


# --------------------------------------------------------------------------- persistence
def test_reference_round_trip_through_json_gives_identical_results() -> None:
    rng = np.random.default_rng(24)
    n = 4000
    data = _sample(24, n).assign(
        created_at=pd.date_range("2024-01-01", periods=n, freq="min"),
        request_id=[f"r{i}" for i in range(n)],
        target=rng.integers(0, 2, n),
        prediction=rng.integers(0, 2, n),
    )
    data.loc[rng.choice(n, 200, replace=False), "k"] = np.nan
    r = Reference.fit(data)
    payload = json.dumps(r.to_dict())
    back = Reference.from_dict(json.loads(payload))
    assert back.to_dict() == r.to_dict()
    assert json.dumps(back.to_dict()) == payload
    cur = _sample(25, 3000).assign(
        x=lambda d: d.x + 2.0,
        created_at=pd.date_range("2024-02-01", periods=3000, freq="min"),
        request_id=[f"q{i}" for i in range(3000)],
        target=rng.integers(0, 2, 3000), prediction=rng.integers(0, 2, 3000),
    )
    cur.loc[10, "c"] = "purple"
    for batch in (cur, data):
        assert back.compare(batch).to_dict() == r.compare(batch).to_dict()
        assert back.check_quality(batch).to_dict() == r.check_quality(batch).to_dict()
    # Profiles made by either reference are interchangeable.
    p1, p2 = r.profile(cur), back.profile(cur)
    assert Profile.from_dict(json.loads(json.dumps(p1.to_dict()))).to_dict() == p2.to_dict()
    assert "x" in r.compare(cur).drifted_features


def test_reference_from_dict_with_an_unknown_format(ref: Reference) -> None:
    d = ref.to_dict()
    d["format"] = 999
    with pytest.raises(DataError, match="999"):
        Reference.from_dict(d)
