"""The ``error`` field of a prediction event, from bulk Arrow as from JSON."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aiwarden.monitoring import rows


def _checked(error: pa.Array) -> rows.Batch:
    n = len(error)
    table = pa.table({"prediction_id": [f"p{i}" for i in range(n)],
                      "timestamp": [1.7e9] * n, "error": error})
    batch = rows.from_arrow(table, None)
    rows.check(batch, None, now=1.7e9)
    return batch


@pytest.mark.parametrize(("values", "want"), [
    (pa.array([True, False, None]), ["error", None, None]),
    (pa.array(["TimeoutError", "", None, "false", "TRUE"]),
     ["TimeoutError", None, None, None, "error"]),
    (pa.nulls(2), [None, None]),
])
def test_arrow_error_columns_become_messages_or_null(values: pa.Array, want: list) -> None:
    batch = _checked(values)
    assert batch.columns[rows.ERROR].to_pylist() == want and not batch.errors


def test_a_numeric_error_column_is_refused_row_by_row() -> None:
    batch = _checked(pa.array([1, None, 0]))
    assert sorted(batch.errors) == [0, 2]
    assert {e.field for e in batch.errors.values()} == {"error"}
    assert batch.columns[rows.ERROR].null_count == 3


def test_json_error_values_keep_their_types() -> None:
    batch = rows.from_json([{"prediction_id": "a", "error": True},
                            {"prediction_id": "b", "error": "boom"},
                            {"prediction_id": "c", "error": 3.5},
                            {"prediction_id": "d"}], None)
    rows.check(batch, None, now=1.7e9)
    assert batch.columns[rows.ERROR].to_pylist() == ["error", "boom", None, None]
    assert list(batch.errors) == [2] and batch.errors[2].field == "error"
