"""One conversion of any tabular input into Arrow, and typed column extraction.

Every entry point converts its input once here; the rest of the engine works on
``pyarrow.Table`` columns and numpy arrays. Values that do not fit the type a
column is expected to have are counted as *invalid* with their positions, never
coerced into valid-looking numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._streaming import is_stream
from aiwarden.errors import DataError

__all__ = ["CategoricalColumn", "NumericColumn", "categorical_codes", "numeric_values", "to_table"]

_MAX_EXAMPLES = 5


def to_table(data: Any, *, allow_empty: bool = False) -> pa.Table:
    """Convert pandas, polars, Arrow, a list of dicts or a dict of columns to a Table."""
    table = _plain_columns(_convert(data))
    if table.num_columns == 0:
        raise DataError("The data has no columns.")
    if table.num_rows == 0 and not allow_empty:
        raise DataError("The data has no rows.")
    return table


def _convert(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        _check_unique(data.column_names)
        return data
    if isinstance(data, pa.RecordBatch):
        _check_unique(data.schema.names)
        return pa.Table.from_batches([data])
    if is_stream(data):
        raise DataError(
            f"A {type(data).__name__} is read chunk by chunk only by Reference.fit and "
            "Reference.profile (and compare, check_quality, which profile); read it into a "
            "table for this function.")
    module = type(data).__module__.split(".")[0]
    if module in ("pandas", "polars") and type(data).__name__ == "Series":
        raise DataError("Expected a DataFrame, got a Series: use series.to_frame().")
    if module == "polars":
        _check_unique(list(data.columns))
        return data.to_arrow()
    if module == "pandas":
        return _from_pandas(data)
    if isinstance(data, list):
        import pandas as pd

        if data and not all(isinstance(row, dict) for row in data):
            raise DataError("A list input must hold one dict per row.")
        return _from_pandas(pd.DataFrame.from_records(data))
    if isinstance(data, dict):
        import pandas as pd

        try:
            return _from_pandas(pd.DataFrame(data))
        except ValueError as exc:
            raise DataError(f"The dict of columns cannot form a table: {exc}") from exc
    raise DataError(
        "Expected a pandas or polars DataFrame, a pyarrow Table, a list of dicts or a dict "
        "of columns, or (for Reference.fit and Reference.profile) a pyarrow dataset or "
        "RecordBatchReader, a polars LazyFrame or a Parquet path. "
        f"Got {type(data).__name__} instead."
    )


def _check_unique(names: list[str]) -> None:
    if len(set(names)) != len(names):
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # linear
        raise DataError(f"Column names must be unique. Repeated: {dupes}.", dupes[0])


def _text(v: object) -> str:
    """Arrow's spelling of a value as text, so True and 'true' meet in one category."""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    return str(v)


def _nan_free_floats(series: Any) -> np.ndarray | None:
    """The float64 values of a NumPy-backed column without NaN (Arrow wraps them without a
    copy), else None: there pandas' NaN means missing and ``from_pandas`` makes it null."""
    if series.dtype != np.float64 or len(series) == 0:
        return None
    values = series.to_numpy()
    if values.ndim != 1 or np.isnan(values.min()):  # min is NaN when any value is
        return None
    return values


def _from_pandas(df: Any) -> pa.Table:
    """Column by column, so one mixed-type column does not fail the whole frame."""
    names = [str(n) for n in df.columns]
    _check_unique(names)
    arrays = []
    for i in range(df.shape[1]):
        series = df.iloc[:, i]
        try:
            floats = _nan_free_floats(series)
            # (from_pandas=True copies a float column to find its NaNs: 1.7 ms per million)
            arr = pa.array(floats) if floats is not None else pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            # Mixed Python objects (a rare, slow path): keep every value as text so nothing
            # is lost; numeric extraction later counts the unparsable ones as invalid.
            values = series.to_numpy(dtype=object)
            mask = series.isna().to_numpy()
            arr = pa.array([None if m else _text(v) for v, m in zip(values, mask, strict=True)],
                           type=pa.large_string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=names)


@dataclass(frozen=True)
class NumericColumn:
    """Finite values plus counts of everything that was not a usable number."""

    values: np.ndarray  # float64, only finite values
    raw: np.ndarray  # float64, every row (NaN where missing or invalid)
    mask: np.ndarray | None  # rows kept in ``values``; None when all rows are
    n: int
    missing: int
    nan: int
    posinf: int
    neginf: int
    invalid: int
    examples: dict[str, list[int]]


def is_stringlike(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _combine(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col


def _first(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask)[:_MAX_EXAMPLES].tolist()


def numeric_values(col: pa.ChunkedArray | pa.Array) -> NumericColumn:
    """Float64 view of a column; text that does not parse is *invalid*, not missing."""
    arr = original = _combine(col)
    n = len(arr)
    examples: dict[str, list[int]] = {}
    t = arr.type
    invalid = 0
    if pa.types.is_decimal(t):
        arr = pc.cast(arr, pa.float64())
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        missing = arr.null_count
        if pa.types.is_boolean(t):
            arr = pc.cast(arr, pa.int8())
        x = arr.to_numpy(zero_copy_only=False)
        x = x.astype(np.float64, copy=False)
        null_mask = np.asarray(arr.is_null()) if missing else None
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        missing = arr.null_count
        ts = arr if pa.types.is_timestamp(t) else pc.cast(arr, pa.timestamp("s"))
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[ts.type.unit]
        x = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64) * scale
        null_mask = np.asarray(arr.is_null()) if missing else None
    elif is_stringlike(t) or pa.types.is_null(t):
        import pandas as pd

        raw = arr.to_numpy(zero_copy_only=False)
        null_mask = np.asarray(arr.is_null())
        missing = int(null_mask.sum())
        x = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(np.float64)
        text_nan = np.zeros(n, dtype=bool)
        bad = np.isnan(x) & ~null_mask
        if bad.any():
            # "nan" written as text is a NaN, anything else unparsable is a wrong type.
            lowered = np.char.lower(np.asarray(raw[bad], dtype=str))
            text_nan[np.flatnonzero(bad)[np.isin(lowered, ["nan", "-nan", "+nan"])]] = True
            bad &= ~text_nan
            invalid = int(bad.sum())
            if invalid:
                examples["invalid"] = _first(bad)
                null_mask = null_mask | bad
    else:
        null_mask = np.ones(n, dtype=bool)
        missing = arr.null_count
        invalid = n - missing
        x = np.full(n, np.nan)
        if invalid:
            examples["invalid"] = _first(~np.asarray(arr.is_null()))

    finite = np.isfinite(x)
    if finite.all():
        return NumericColumn(x, x, None, n, missing, 0, 0, 0, invalid, examples)
    nonfinite = ~finite
    if null_mask is not None:
        nonfinite &= ~null_mask
    nan_mask = nonfinite & np.isnan(x)
    pos_mask = nonfinite & (x == np.inf)
    neg_mask = nonfinite & (x == -np.inf)
    counts = {}
    for key, mask in (("nan", nan_mask), ("posinf", pos_mask), ("neginf", neg_mask)):
        c = int(mask.sum())
        counts[key] = c
        if c:
            examples[key] = _first(mask)
    if missing:
        examples["missing"] = _first(np.asarray(original.is_null()))
    return NumericColumn(
        x[finite], x, finite, n, missing, counts["nan"], counts["posinf"], counts["neginf"],
        invalid, examples,
    )


@dataclass(frozen=True)
class CategoricalColumn:
    """Codes into a fixed category list; ``len(categories)`` marks unseen or missing."""

    codes: np.ndarray  # int32/int64, value len(categories) for missing and unseen
    n: int
    missing: int
    unseen: int
    unseen_top: dict[str, int]
    examples: dict[str, list[int]]


def is_binarylike(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t))


def utf8_text(arr: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """Binary values as text (Parquet written without a UTF-8 annotation holds text as
    bytes), and the mask of the values that are not UTF-8 (nulled in the text); None when
    every value is. Arrow's cast checks UTF-8 but cannot say where it fails."""
    try:
        return pc.cast(arr, pa.large_string()), None
    except pa.ArrowInvalid:
        pass
    values = arr.to_pylist()
    bad = np.zeros(len(values), dtype=bool)
    text: list[str | None] = []
    for i, v in enumerate(values):
        try:
            text.append(None if v is None else v.decode("utf-8"))
        except UnicodeDecodeError:
            text.append(None)
            bad[i] = True
    return pa.array(text, pa.large_string()), bad


def plain(arr: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """A column as a kind every reader knows: binary is the UTF-8 text it holds (Parquet
    written without a UTF-8 annotation holds text as bytes), a duration its seconds
    (float64), a time of day its text; other kinds are returned as they are. Also the mask
    of the values with no such form (bytes that are not UTF-8, intervals), None if none."""
    t = arr.type
    if is_binarylike(t):
        return utf8_text(arr)
    if pa.types.is_duration(t):
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        return pc.divide(pc.cast(pc.cast(arr, pa.int64()), pa.float64()), scale), None
    if pa.types.is_time(t):
        return pc.cast(arr, pa.large_string()), None
    if pa.types.is_interval(t):
        valid = np.asarray(arr.is_valid())
        return pa.nulls(len(arr), pa.large_string()), valid if valid.any() else None
    return arr, None


def _plain_columns(table: pa.Table) -> pa.Table:
    """Each column as :func:`plain` reads it; one holding values with no number or text
    form is refused naming it (as a nested one is), not failed on deep inside a profile."""
    for i, f in enumerate(table.schema):
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if not (is_binarylike(t) or pa.types.is_duration(t) or pa.types.is_time(t)
                or pa.types.is_interval(t)):
            continue
        arr, bad = plain(_combine(table.column(i)))
        if bad is not None:
            what = "binary values that are not UTF-8 text" if is_binarylike(t) else \
                f"{t} values, which have no number or text form"
            raise DataError(f"Column {f.name!r} holds {what} (row {int(np.argmax(bad))}); "
                            "convert it or drop it before monitoring.", f.name)
        table = table.set_column(i, f.name, arr)
    return table


def as_text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Text form used for categories; float NaN counts as missing, not as 'nan'. A column
    with no text form (nested, bytes that are not UTF-8) is a DataError, not a crash."""
    arr = _combine(col)
    t = arr.type
    if pa.types.is_floating(t):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, t), arr)
    if pa.types.is_large_string(t):
        return arr
    if pa.types.is_nested(t):
        raise DataError(f"A column holds nested values ({t}); flatten it or drop it.")
    if is_binarylike(t):
        arr, bad = utf8_text(arr)
        if bad is not None:
            raise DataError("A column holds binary values that are not UTF-8 text.")
        return arr
    try:
        return pc.cast(arr, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"A column of {t} values has no text form: {exc}") from None


def categorical_codes(
    col: pa.ChunkedArray | pa.Array, categories: pa.Array, *, top_unseen: int = 0
) -> CategoricalColumn:
    """Map values to positions in ``categories`` with Arrow's hash lookup (no Python loop)."""
    arr = as_text(col)
    n = len(arr)
    k = len(categories)
    idx = pc.index_in(arr, value_set=categories)
    codes = pc.fill_null(idx, k).to_numpy(zero_copy_only=False)
    missing = arr.null_count
    other = int(np.count_nonzero(codes == k))
    unseen = other - missing
    examples: dict[str, list[int]] = {}
    unseen_top: dict[str, int] = {}
    if missing:
        examples["missing"] = _first(np.asarray(arr.is_null()))
    if unseen:
        unseen_mask = np.asarray(pc.and_(pc.is_null(idx), pc.is_valid(arr)))
        examples["unseen"] = _first(unseen_mask)
        if top_unseen:
            vc = pc.value_counts(arr.filter(pa.array(unseen_mask)))
            values = vc.field("values").to_pylist()
            counts = vc.field("counts").to_numpy()
            order = np.argsort(-counts, kind="stable")[:top_unseen]
            unseen_top = {str(values[i]): int(counts[i]) for i in order}
    return CategoricalColumn(codes, n, missing, unseen, unseen_top, examples)
