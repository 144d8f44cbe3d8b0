"""Every corrupted row named: row, column, reason; consistent with check_quality's counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from aiwarden.engine import Reference
from aiwarden.engine.row_validation import validate_rows


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.lognormal(3.5, 1.0, n),
                         "country": rng.choice(["US", "BR", "DE"], n),
                         "is_new": rng.random(n) < 0.3,
                         "label": rng.integers(0, 2, n)})


def _reference() -> Reference:
    return Reference.fit(_frame(5000, 0))


def test_a_clean_batch_has_no_bad_rows() -> None:
    out = validate_rows(_reference(), _frame(3000, 1))
    assert out.ok and out.n_bad == 0 and out.problems == ()


def test_one_corrupted_record_among_thousands_is_named() -> None:
    ref = _reference()
    batch = _frame(3000, 2)
    batch.loc[1234, "amount"] = -4.2e9
    out = validate_rows(ref, batch)
    assert out.n_bad == 1 and out.bad[1234]
    (p,) = out.problems
    assert (p.row, p.column, p.check) == (1234, "amount", "far_out_of_range")
    assert "reference range" in p.reason and float(p.value) == -4.2e9
    # the same row is what the profile-level check counts
    found = {f.check: f for f in ref.check_quality(batch).errors}
    assert found["far_out_of_range"].count == 1
    assert 1234 in found["far_out_of_range"].examples


def test_each_kind_of_corruption_has_its_own_reason() -> None:
    ref = _reference()
    batch = _frame(200, 3)
    table = pa.Table.from_pandas(batch, preserve_index=False)
    amount = batch["amount"].astype(object)
    amount[5], amount[6], amount[7], amount[8] = "12,50 EUR", None, float("inf"), "nan"
    amount[9] = -0.5  # just below zero, inside the far band, but never negative before
    is_new = batch["is_new"].map({True: "true", False: "false"}).astype(object)
    is_new[10] = "maybe"
    # numbers as text, as a CSV export holds them
    as_text = [v if v is None or isinstance(v, str) else repr(v) for v in amount]
    table = table.set_column(0, "amount", pa.array(as_text, type=pa.string()))
    table = table.set_column(2, "is_new", pa.array(is_new.tolist(), type=pa.string()))
    table = table.drop_columns(["country"])
    out = validate_rows(ref, table)
    checks = {(p.row, p.check) for p in out.problems}
    assert checks == {(5, "invalid_value"), (6, "missing"), (7, "infinite"), (8, "nan"),
                      (9, "negative_value"), (10, "not_boolean")}, out.to_pandas()
    assert out.missing_columns == ("country",) and not out.ok
    assert sorted(np.flatnonzero(out.bad)) == [5, 6, 7, 8, 9, 10]
    assert out.to_dict()["bad_rows"] == 6
    assert {"column": "amount", "check": "infinite", "rows": 1} in out.to_dict()["counts"]
