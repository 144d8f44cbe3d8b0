"""Binary and nested columns reach the engine as text or as a DataError naming the column,
never as a raw Arrow exception (review 2026-12-06, finding 1: a reference with a binary
column failed with 500)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aiwarden.engine import Reference
from aiwarden.engine._frame import as_text, to_table, utf8_text
from aiwarden.errors import DataError


def _table(country: pa.Array) -> pa.Table:
    n = len(country)
    return pa.table({"amount": [float(i) for i in range(n)], "country": country,
                     "pred": ["1", "0"] * (n // 2), "y": ["1", "0", "0", "1"] * (n // 4)})


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary(), pa.binary_view(),
                                  pa.binary(2)])
def test_binary_utf8_column_is_text(kind: pa.DataType) -> None:
    values = pa.array([b"FR", b"DE", b"US", b"FR"] * 10, kind)
    ref = Reference.fit(_table(values), target="y", prediction="pred")
    assert ref.schema_["country"].dtype == "categorical"
    text = ref.profile(_table(pa.array(["FR", "DE", "US", "FR"] * 10)))
    same = ref.profile(_table(values))
    assert same.columns["country"].counts.tolist() == text.columns["country"].counts.tolist()
    assert sum(same.columns["country"].counts.tolist()) == 40


def test_binary_column_not_utf8_is_refused_naming_it() -> None:
    values = pa.array([b"FR"] * 5 + [b"\xff\xfe"] + [b"DE"] * 34, pa.binary())
    with pytest.raises(DataError) as err:
        Reference.fit(_table(values), target="y", prediction="pred")
    assert err.value.field == "country"
    assert "not UTF-8" in str(err.value) and "row 5" in str(err.value)
    with pytest.raises(DataError, match="not UTF-8"):
        to_table(pa.table({"c": pa.array([b"\xff"]).dictionary_encode()}))


def test_utf8_text_marks_the_rows_that_are_not() -> None:
    text, bad = utf8_text(pa.array([b"a", None, b"\xff", "é".encode()], pa.binary()))
    assert text.to_pylist() == ["a", None, None, "é"]
    assert bad is not None and bad.tolist() == [False, False, True, False]
    assert utf8_text(pa.array([b"a"], pa.binary()))[1] is None


@pytest.mark.parametrize("arr", [pa.array([[1, 2]]), pa.array([{"a": 1}]),
                                 pa.array([b"\xff"], pa.binary()),
                                 pa.array([pa.MonthDayNano([1, 2, 3])])])
def test_as_text_without_a_text_form_is_a_data_error(arr: pa.Array) -> None:
    with pytest.raises(DataError):
        as_text(arr)
