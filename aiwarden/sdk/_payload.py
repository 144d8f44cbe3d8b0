"""Turning what users hold (pandas, polars, Arrow, rows, columns, files) into request bodies.

Every tabular input goes through one Arrow table, normalised so the same data gives
the same table whichever library it came from: one string type, microsecond
timestamps, no dictionary encoding, no pandas metadata. The server then sees one
shape per content type. pandas and polars are only imported when the caller already
holds one of their objects; nothing here runs at import time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from aiwarden.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ARROW_STREAM",
    "CSV",
    "JSON",
    "PARQUET",
    "dumps",
    "file_body",
    "is_columns",
    "is_rows",
    "load_file",
    "read_parquet",
    "table_chunks",
    "to_arrow",
    "to_ipc",
    "to_parquet",
]

PARQUET = "application/vnd.apache.parquet"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
JSON = "application/json"
CSV = "text/csv"

_FAST = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_SLOW = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


# -- JSON rows ---------------------------------------------------------------------------------

def _default(obj: Any) -> Any:
    """Values orjson does not know: pandas scalars, numpy (slow path), decimals, sets."""
    pd = sys.modules.get("pandas")
    if pd is not None:
        if obj is pd.NaT or obj is pd.NA:
            return None
        if isinstance(obj, pd.Timestamp):
            return obj.to_pydatetime(warn=False)
        if isinstance(obj, pd.Timedelta):
            return obj.total_seconds()
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.datetime64):
            return None if np.isnat(obj) else obj.astype("datetime64[us]").item()
        if isinstance(obj, np.timedelta64):
            return None if np.isnat(obj) else obj / np.timedelta64(1, "s")
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """JSON bytes for rows: datetimes as ISO 8601 UTC (naive taken as UTC), numpy as numbers.

    The fast path lets orjson handle numpy natively; it refuses a few values (NaT
    datetime64) that the slow path turns into null instead of failing the batch.
    """
    try:
        return orjson.dumps(obj, default=_default, option=_FAST)
    except orjson.JSONEncodeError:
        return orjson.dumps(obj, default=_default, option=_SLOW)


def is_rows(data: Any) -> bool:
    """A list/tuple of row mappings (the JSON row format)."""
    return isinstance(data, list | tuple) and all(isinstance(r, Mapping) for r in data)


def is_columns(data: Any) -> bool:
    """A mapping whose values are all column-like (not one row's scalars and dicts)."""
    if not isinstance(data, Mapping) or not data:
        return False
    return all(
        not isinstance(v, str | bytes | Mapping)
        and (isinstance(v, Sequence) or hasattr(v, "__array__") or hasattr(v, "to_numpy"))
        for v in data.values()
    )


# -- Arrow -------------------------------------------------------------------------------------

def _module(data: Any) -> str:
    return type(data).__module__.split(".", 1)[0]


def to_arrow(data: Any) -> pa.Table:
    """One normalised Arrow table from any supported tabular input.

    pandas indexes are kept only when named (a filtered frame's positional index is
    not data); polars LazyFrames are collected.
    """
    import pyarrow as pa

    mod = _module(data)
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif mod == "pandas" and hasattr(data, "columns"):
        named = any(n is not None for n in data.index.names)
        try:
            table = pa.Table.from_pandas(data, preserve_index=named)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            # A column mixing numbers and text (a corrupted record): the engine's conversion
            # keeps it as text, so the server quarantines the bad rows instead of the
            # client refusing the whole batch.
            from aiwarden.engine._frame import to_table

            table = to_table(data)
    elif mod == "polars" and hasattr(data, "to_arrow"):
        table = data.to_arrow()
    elif mod == "polars" and hasattr(data, "collect"):
        table = data.collect().to_arrow()
    elif is_columns(data):
        table = pa.table({str(k): _column(v) for k, v in data.items()})
    elif is_rows(data):
        if not data:
            raise DataError("Cannot send an empty list of rows.")
        table = pa.Table.from_pylist([dict(r) for r in data])
    else:
        raise DataError(
            "Expected a pandas or polars DataFrame, a pyarrow Table, a list of row dicts or a "
            f"dict of columns. Got {type(data).__name__} instead."
        )
    return _normalise(table)


def _column(values: Any) -> Any:
    if _module(values) in ("pandas", "polars") and hasattr(values, "to_arrow"):
        return values.to_arrow()  # polars Series
    if _module(values) == "pandas":
        import pyarrow as pa

        return pa.Array.from_pandas(values)
    return values


def _is(t: pa.DataType, check: str) -> bool:
    """Type checks that older pyarrow versions lack are simply false there."""
    import pyarrow as pa

    fn = getattr(pa.types, check, None)
    return bool(fn and fn(t))


def _normal_type(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _normal_type(t.value_type)
    if pa.types.is_large_string(t) or _is(t, "is_string_view"):
        return pa.string()
    if pa.types.is_large_binary(t) or _is(t, "is_binary_view"):
        return pa.binary()
    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", t.tz)
    return t


def _normalise(table: pa.Table) -> pa.Table:
    """Same data, same table: sub-microsecond precision is dropped, nothing else."""
    import pyarrow as pa

    fields = [pa.field(f.name, _normal_type(f.type), f.nullable) for f in table.schema]
    target = pa.schema(fields)
    if target != table.schema.remove_metadata():
        table = table.cast(target, safe=False)
    return table.replace_schema_metadata(None)


def table_chunks(table: pa.Table, max_rows: int, max_bytes: int) -> Iterator[tuple[int, pa.Table]]:
    """Row slices (zero-copy) small enough for one request: ``(offset, slice)``."""
    n = table.num_rows
    per_row = table.nbytes / n if n else 1.0
    step = max(1, min(max_rows, int(max_bytes / max(per_row, 1.0))))
    for start in range(0, n, step):
        yield start, table.slice(start, step)


def to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes (what bulk ingest reads without a file footer)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def to_parquet(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_parquet(body: bytes) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(body))


# -- files -------------------------------------------------------------------------------------

_SUFFIXES = {".parquet": PARQUET, ".pq": PARQUET, ".csv": CSV, ".json": JSON, ".jsonl": JSON,
             ".ndjson": JSON,
             ".arrow": ARROW_STREAM, ".arrows": ARROW_STREAM, ".ipc": ARROW_STREAM,
             ".feather": ARROW_STREAM}


def file_body(path: str | Path) -> tuple[bytes, str]:
    """A file's bytes and content type; Arrow IPC *files* are re-sent as a stream."""
    import pyarrow as pa

    p = Path(path)
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"Cannot tell the format of {str(p)!r} from its suffix; use one of "
            f"{', '.join(sorted(_SUFFIXES))}."
        )
    if not p.is_file():
        raise DataError(f"No file at {str(p)!r}.")
    body = p.read_bytes()
    if kind == ARROW_STREAM:
        try:
            table = pa.ipc.open_file(pa.py_buffer(body)).read_all()
        except pa.ArrowInvalid:
            return body, kind  # already a stream
        return to_ipc(table), kind
    return body, kind


def load_file(path: str | Path) -> Any:
    """A file as a normalised table, or as parsed JSON (rows keep their nested shape)."""
    import pyarrow as pa

    body, kind = file_body(path)
    if kind == PARQUET:
        return _normalise(read_parquet(body))
    if kind == ARROW_STREAM:
        return _normalise(pa.ipc.open_stream(pa.py_buffer(body)).read_all())
    if kind == CSV:
        import pyarrow.csv as pacsv

        return _normalise(pacsv.read_csv(io.BytesIO(body)))
    return _json_doc(body, str(path))


def _json_doc(body: bytes, where: str) -> Any:
    """A JSON document, or JSON Lines (one row object per line) as a list of rows: either
    way rows keep their nested ``features``/``scores``/``tags`` objects."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise DataError(f"Cannot read {where!r} as JSON: {exc}") from None
    try:
        return [orjson.loads(line) for line in lines]
    except orjson.JSONDecodeError as exc:
        raise DataError(f"Cannot read {where!r} as JSON Lines: {exc}") from None
