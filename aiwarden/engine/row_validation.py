"""Which rows of a batch are corrupted, by the reference's hard checks, row by row.

Why: ``check_quality`` answers "is this window broken?" from a profile, with a few example
rows. Training data needs more: the seed's war story is one corrupted record that broke a
model for 72 hours, so a training gate must name *every* bad row (row, column, reason) and be
able to drop exactly those rows and keep the rest. The checks are the hard ones of
``aiwarden.engine.quality`` (a single bad value is already a problem), evaluated per row with
the reference's own bins, so a row is bad here exactly when it would be counted there:

* a value that is not a number in a numerical column, NaN or infinite where the reference had
  none, missing where the reference never was;
* a value far outside the reference range (the far band of the reference bins);
* a negative value in a column that was never negative;
* anything but true/false in a boolean column;
* a monitored column absent from the batch (every row is then unusable for that column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._binning import CategoricalBinning, NumericalBinning
from aiwarden.engine._frame import as_text, is_stringlike, numeric_values, to_table
from aiwarden.engine._profiling import binned_kind, category_text
from aiwarden.engine.schema import ColumnType, Role

__all__ = ["RowProblem", "RowValidation", "validate_rows"]

_CHECKED_ROLES = (Role.FEATURE, Role.TARGET, Role.SEGMENT)
_BOOLEANS = pa.array(["true", "false"], type=pa.large_string())
MAX_LISTED = 1000  # rows named per (column, check); the counts and the mask stay complete


@dataclass(frozen=True)
class RowProblem:
    """One bad value: its row (0-based position in the batch), column, check and reason."""

    row: int
    column: str
    check: str
    value: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "check": self.check,
                "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class RowValidation:
    """Every bad row of a batch: ``bad`` is the mask, ``counts`` per (column, check)."""

    n_rows: int
    bad: np.ndarray
    problems: tuple[RowProblem, ...]
    counts: dict[tuple[str, str], int]
    missing_columns: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.bad.any() and not self.missing_columns

    @property
    def n_bad(self) -> int:
        return int(self.bad.sum())

    def to_dict(self, limit: int = 100) -> dict[str, Any]:
        return {"rows": self.n_rows, "bad_rows": self.n_bad,
                "missing_columns": list(self.missing_columns),
                "counts": [{"column": c, "check": k, "rows": n}
                           for (c, k), n in sorted(self.counts.items())],
                "problems": [p.to_dict() for p in self.problems[:limit]]}

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([p.to_dict() for p in self.problems],
                            columns=["row", "column", "check", "value", "reason"])


def validate_rows(reference: Any, data: Any) -> RowValidation:
    """Check every row of ``data`` against ``reference`` (a fitted ``Reference``)."""
    table = to_table(data)
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    problems: list[RowProblem] = []
    counts: dict[tuple[str, str], int] = {}
    missing_columns = []
    for col in reference.schema_.columns:
        if col.role not in _CHECKED_ROLES:
            continue
        if col.name not in table.column_names:
            if col.role != Role.TARGET:
                missing_columns.append(col.name)
            continue
        arr = table.column(col.name)
        binning = reference.binnings_.get(col.name)
        ref = reference.profile_.columns.get(col.name)
        if isinstance(binning, NumericalBinning) and binned_kind(col) == "numerical":
            found = _numerical(arr, binning, ref)
        elif isinstance(binning, CategoricalBinning) and col.dtype == ColumnType.BOOLEAN:
            found = _boolean(col, arr, binning, ref)
        else:
            found = _presence(arr, ref)
        for check, (mask, reason) in found.items():
            rows = np.flatnonzero(mask)
            if not len(rows):
                continue
            bad |= mask
            counts[(col.name, check)] = len(rows)
            listed = rows[:MAX_LISTED]
            shown = _values(arr, listed)
            problems.extend(RowProblem(int(r), col.name, check, v, reason)
                            for r, v in zip(listed.tolist(), shown, strict=True))
    problems.sort(key=lambda p: (p.row, p.column))
    return RowValidation(n, bad, tuple(problems), counts, tuple(missing_columns))


def _values(arr: pa.ChunkedArray, rows: np.ndarray) -> list[str]:
    """The flagged values as text (only the listed rows: a handful, not the batch)."""
    taken = arr.take(pa.array(rows, type=pa.int64())).to_pylist()
    return ["null" if v is None else str(v)[:80] for v in taken]


def _never(ref: Any, attr: str) -> bool:
    return ref is not None and getattr(ref, attr, 0) == 0


def _missing(arr: pa.ChunkedArray, ref: Any) -> dict[str, tuple[np.ndarray, str]]:
    if not arr.null_count or not _never(ref, "missing"):
        return {}
    return {"missing": (np.asarray(arr.is_null()),
                        "missing; this column is never missing in the reference")}


def _presence(arr: pa.ChunkedArray, ref: Any) -> dict[str, tuple[np.ndarray, str]]:
    return _missing(arr, ref)


def _numerical(arr: pa.ChunkedArray, binning: NumericalBinning, ref: Any
               ) -> dict[str, tuple[np.ndarray, str]]:
    out = _missing(arr, ref)
    nc = numeric_values(arr)
    raw = nc.raw
    null = np.asarray(arr.is_null()) if arr.null_count else np.zeros(len(raw), dtype=bool)
    nan_like = np.isnan(raw) & ~null  # NaN itself, or text that is no number at all
    if nan_like.any():
        literal = nan_like
        if is_stringlike(arr.type):
            text = as_text(arr).to_numpy(zero_copy_only=False)
            lowered = np.char.lower(np.asarray(np.where(nan_like, text, ""), dtype=str))
            literal = nan_like & np.isin(lowered, ["nan", "-nan", "+nan"])
        if (nan_like & ~literal).any():
            out["invalid_value"] = (nan_like & ~literal, "not a number")
        if literal.any() and _never(ref, "nan"):
            out["nan"] = (literal, "NaN; the reference has no NaN in this column")
    inf = np.isinf(raw)
    if inf.any() and _never(ref, "posinf") and _never(ref, "neginf"):
        out["infinite"] = (inf, "infinite; the reference has no infinite values")
    finite = np.isfinite(raw)
    codes = np.full(len(raw), 2, dtype=np.int64)
    codes[finite] = binning.bin_of(raw[finite])
    far = finite & ((codes == 0) | (codes == binning.n_bins - 1))
    if far.any():
        lo, hi = binning.interior[0], binning.interior[-1]
        out["far_out_of_range"] = (far, f"far outside the reference range [{lo:.6g}, {hi:.6g}]")
    negative = finite & (raw < 0)
    if negative.any() and _never(ref, "negative") and ref is not None and ref.count:
        out["negative_value"] = (negative & ~far,
                                 "negative; this column is never negative in the reference")
    return out


def _boolean(col: Any, arr: pa.ChunkedArray, binning: CategoricalBinning, ref: Any
             ) -> dict[str, tuple[np.ndarray, str]]:
    out = _missing(arr, ref)
    text = category_text(col, arr)
    known = np.asarray(pc.is_in(text, value_set=_BOOLEANS))
    valid = np.asarray(text.is_valid())
    unseen = valid & ~known
    if unseen.any():
        out["not_boolean"] = (unseen, "not a boolean (true/false)")
    return out
