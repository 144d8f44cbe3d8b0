"""Turning an ingest request into typed Arrow columns, with a reason for every bad row.

JSON rows are read column by column (one comprehension per column, Arrow does the
typing); bulk Arrow/Parquet arrives typed already. Both then pass through the same
column checks, so a row is quarantined for the same reason whichever path it took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine.schema import ColumnType, Role, Schema

__all__ = ["ERROR", "LATENCY", "PID", "RESERVED", "TS", "VERSION", "Batch", "RowError",
           "check", "from_arrow", "from_json", "label_rows", "label_text"]

PID, TS, VERSION, LATENCY = "prediction_id", "timestamp", "version", "latency_ms"
ERROR = "error"  # a failed prediction: true, or the error message; absent/false/null: served
RESERVED = (PID, TS, VERSION, LATENCY, ERROR)
_NUMERIC = (ColumnType.NUMERICAL,)
_MAX_ID = 200


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    reason: str
    prediction_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "prediction_id": self.prediction_id, "field": self.field,
                "reason": self.reason}


@dataclass
class Batch:
    """Typed columns of one request and the errors found so far (row → first error)."""

    n: int
    columns: dict[str, pa.Array]
    errors: dict[int, RowError] = field(default_factory=dict)
    duplicate: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    source: list[Any] | pa.Table | None = None  # the rows as sent, for the quarantine

    def original(self, i: int) -> Any:
        """Row ``i`` exactly as it was sent (a bad value is kept, not nulled)."""
        if isinstance(self.source, pa.Table):
            return self.source.slice(i, 1).to_pylist()[0]
        return self.source[i] if self.source is not None else None

    def fail(self, rows: np.ndarray, field_name: str, reasons: Sequence[str] | str) -> None:
        for i, r in zip(rows.tolist(), [reasons] * len(rows) if isinstance(reasons, str)
                        else reasons, strict=True):
            self.errors.setdefault(int(i), RowError(int(i), field_name, r))

    def valid_mask(self) -> np.ndarray:
        mask = np.ones(self.n, dtype=bool)
        if self.errors:
            mask[np.fromiter(self.errors, dtype=np.int64)] = False
        return mask


def _array(values: list[Any]) -> tuple[pa.Array, np.ndarray]:
    """Arrow array from Python values; mixed types become text. Also: rows holding non-scalars."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        arr = None
    if arr is not None and not pa.types.is_nested(arr.type):
        return arr, np.zeros(0, dtype=np.int64)
    nested = np.fromiter((isinstance(v, dict | list) for v in values), dtype=bool,
                         count=len(values))
    text = [None if v is None or n else ("true" if v is True else "false" if v is False
                                          else str(v)) for v, n in zip(values, nested, strict=True)]
    return pa.array(text, pa.string()), np.flatnonzero(nested)


def _column_values(rows: list[dict[str, Any]], nested: list[Any], name: str,
                   top: bool) -> list[Any]:
    if top:
        return [r.get(name) if r.get(name) is not None else (n.get(name) if n else None)
                for r, n in zip(rows, nested, strict=True)]
    return [n.get(name) if n else None for n in nested]


def from_json(rows: list[Any], schema: Schema | None) -> Batch:
    """Columns from JSON row objects (see docs/api.md for the row format)."""
    n = len(rows)
    batch = Batch(n, {}, source=rows)
    not_obj = np.fromiter((not isinstance(r, dict) for r in rows), dtype=bool, count=n)
    if not_obj.any():
        batch.fail(np.flatnonzero(not_obj), "row", "expected a JSON object")
        rows = [r if isinstance(r, dict) else {} for r in rows]
    top_keys: set[str] = set().union(*rows) if rows else set()
    for name in RESERVED:
        arr, nested_rows = _array([r.get(name) for r in rows])
        batch.columns[name] = arr
        if nested_rows.size:
            batch.fail(nested_rows, name, "expected a scalar, got an object or list")
    if ERROR in top_keys:  # JSON types decide here, before mixed values become text
        flags = [r.get(ERROR) for r in rows]
        bad = np.fromiter((not (v is None or isinstance(v, bool | str)) for v in flags),
                          dtype=bool, count=n)
        if bad.any():
            batch.fail(np.flatnonzero(bad), ERROR, "expected true/false or an error message")
        batch.columns[ERROR] = pa.array(
            [("error" if v is True else v) if isinstance(v, bool | str) and v else None
             for v in flags], pa.string())
    if schema is None:
        return batch
    nested = _merged_objects(rows, schema, batch)
    for col in schema.columns:
        if col.role in (Role.TARGET, Role.TIMESTAMP):
            continue
        arr, nested_rows = _array(_column_values(rows, nested, col.name, col.name in top_keys))
        batch.columns[col.name] = arr
        if nested_rows.size:
            batch.fail(nested_rows, _where(col), "expected a scalar, got an object or list")
    return batch


def _where(col: Any) -> str:
    return {Role.FEATURE: f"features.{col.name}", Role.PREDICTION: "prediction",
            Role.SCORE: f"scores.{col.label or col.name}",
            Role.SEGMENT: f"tags.{col.name}"}.get(col.role, col.name)


def _merged_objects(rows: list[dict[str, Any]], schema: Schema, batch: Batch) -> list[Any]:
    """Per row, one dict of schema column → value built from features/prediction/scores/tags."""
    pred = schema.column_for(Role.PREDICTION)
    scores = schema.score_columns
    by_key = {c.name: c.name for c in scores} | {str(c.label): c.name for c in scores if c.label}
    single = scores[0].name if len(scores) == 1 else None
    out: list[Any] = []
    bad: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        d: dict[str, Any] = {}
        for key in ("features", "tags"):
            part = r.get(key)
            if isinstance(part, dict):
                d.update(part)
            elif part is not None:
                bad.setdefault(key, []).append(i)
        if pred is not None and "prediction" in r:
            d[pred] = r["prediction"]
        s = r.get("scores")
        if isinstance(s, dict):
            for k, v in s.items():
                name = by_key.get(str(k))
                if name is not None:
                    d[name] = v
        elif s is not None:
            if single is not None and not isinstance(s, list):
                d[single] = s
            else:
                bad.setdefault("scores", []).append(i)
        out.append(d or None)
    for key, idx in bad.items():
        reason = ("expected an object keyed by score column or class" if key == "scores"
                  else "expected an object")
        batch.fail(np.asarray(idx), key, reason)
    return out


def from_arrow(table: pa.Table, schema: Schema | None) -> Batch:
    """Columns from a bulk Arrow table with flat column names."""
    n = table.num_rows
    batch = Batch(n, {}, source=table)
    names = set(table.column_names)
    wanted = list(RESERVED) + ([c.name for c in schema.columns
                                if c.role not in (Role.TARGET, Role.TIMESTAMP)] if schema else [])
    for name in wanted:
        if name in names:
            col = table.column(name).combine_chunks()
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            batch.columns[name] = col
        else:
            batch.columns[name] = pa.nulls(n)
    return batch


def check(batch: Batch, schema: Schema | None, *, now: float) -> tuple[np.ndarray, np.ndarray]:
    """Type the reserved columns and check feature types; returns (prediction ids, epoch ts)."""
    pid = _check_ids(batch, PID)
    ts = _check_times(batch, now)
    lat = batch.columns[LATENCY]
    batch.columns[LATENCY] = _check_numeric(batch, LATENCY, lat, LATENCY)
    batch.columns[ERROR] = _check_error(batch)
    if schema is not None:
        for col in schema.columns:
            if col.name in batch.columns and col.dtype in _NUMERIC and col.role != Role.TARGET:
                batch.columns[col.name] = _check_numeric(batch, col.name,
                                                         batch.columns[col.name], _where(col))
    return pid, ts


def _check_ids(batch: Batch, name: str) -> np.ndarray:
    arr = batch.columns[name]
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.int64(), safe=False)
        arr = pc.cast(arr, pa.string())
    missing = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True))
    if missing.any():
        batch.fail(np.flatnonzero(missing), name, "required: a non-empty prediction id")
    too_long = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(arr), _MAX_ID), False))
    if too_long.any():
        batch.fail(np.flatnonzero(too_long), name, f"longer than {_MAX_ID} characters")
    batch.columns[name] = arr
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    return values


def _check_times(batch: Batch, now: float) -> np.ndarray:
    arr = batch.columns[TS]
    n = batch.n
    if pa.types.is_null(arr.type):
        ts = np.full(n, now)
    elif pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        micros = pc.cast(pc.cast(arr, pa.timestamp("us", tz="UTC"), safe=False), pa.int64())
        ts = np.asarray(pc.fill_null(micros, 0).to_numpy(), dtype=np.float64) / 1e6
        ts[np.asarray(arr.is_null())] = now
    elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        ts = np.asarray(pc.fill_null(pc.cast(arr, pa.float64()), now).to_numpy(), np.float64)
    else:
        text = pd.Series(arr.to_pandas(), dtype=object)
        as_num = pd.to_numeric(text, errors="coerce")
        parsed = pd.to_datetime(text.where(as_num.isna()), utc=True, errors="coerce",
                                format="ISO8601")
        ts = np.where(as_num.notna(), as_num.to_numpy(np.float64, na_value=np.nan),
                      parsed.astype("int64").to_numpy() / 1e9)
        given = text.notna().to_numpy()
        bad = given & as_num.isna().to_numpy() & parsed.isna().to_numpy()
        if bad.any():
            idx = np.flatnonzero(bad)
            batch.fail(idx, TS, [f"expected ISO 8601 or epoch seconds, got {text.iloc[i]!r}"
                                 for i in idx])
        ts = np.where(given & ~bad, ts, now)
    bad = ~np.isfinite(ts) | (ts < 0) | (ts > 32503680000)  # beyond year 3000
    if bad.any():
        batch.fail(np.flatnonzero(bad), TS, "not a plausible time")
        ts = np.where(bad, now, ts)
    return ts


def _check_error(batch: Batch) -> pa.Array:
    """The error column as text: null for a served prediction, else the message
    (``"error"`` when the caller only said ``true``)."""
    arr = batch.columns[ERROR]
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(pc.fill_null(arr, False), pa.scalar("error"),
                          pa.scalar(None, pa.string()))
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        batch.fail(np.flatnonzero(np.asarray(arr.is_valid())), ERROR,
                   "expected true/false or an error message")
        return pa.nulls(len(arr), pa.string())
    text = pc.cast(arr, pa.string())  # mixed JSON values arrive as text: 'true', 'false'
    low = pc.utf8_lower(text)
    served = pc.fill_null(pc.or_(pc.equal(low, "false"), pc.equal(text, "")), True)
    text = pc.if_else(pc.equal(low, "true"), pa.scalar("error"), text)
    return pc.if_else(served, pa.scalar(None, pa.string()), text)


def _check_numeric(batch: Batch, name: str, arr: pa.Array, where: str) -> pa.Array:
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.float64())
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64()) if not pa.types.is_floating(t) else arr
    if pa.types.is_boolean(t):
        batch.fail(np.flatnonzero(np.asarray(arr.is_valid())), where,
                   "expected a number, got a boolean")
        return pa.nulls(len(arr), pa.float64())
    text = pd.Series(pc.cast(arr, pa.string()).to_pandas(), dtype=object)
    nums = pd.to_numeric(text, errors="coerce")
    bad = (text.notna() & nums.isna() & ~text.str.strip().str.lower().isin(
        ["nan", "inf", "-inf", "+inf", "infinity", "-infinity"])).to_numpy()
    if bad.any():
        idx = np.flatnonzero(bad)
        batch.fail(idx, where, [f"expected a number, got {_short(text.iloc[i])}" for i in idx])
    special = text.str.strip().str.lower()
    values = nums.to_numpy(np.float64, na_value=np.nan)
    values = np.where(special.isin(["inf", "+inf", "infinity"]).to_numpy(), np.inf, values)
    values = np.where(special.isin(["-inf", "-infinity"]).to_numpy(), -np.inf, values)
    values = np.where(special.eq("nan").to_numpy(), np.nan, values)
    missing = text.isna().to_numpy() | bad
    return pa.array(values, pa.float64(), mask=missing)


def _short(v: object) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "...'"


def label_rows(rows: list[Any]) -> tuple[pa.Array, pa.Array, list[RowError]]:
    """``(prediction ids, labels as text, errors)`` from JSON label objects."""
    errors = [RowError(i, "row", "expected a JSON object") for i, r in enumerate(rows)
              if not isinstance(r, dict)]
    rows = [r if isinstance(r, dict) else {} for r in rows]
    ids, _ = _array([r.get(PID) for r in rows])
    labels, nested = _array([r.get("label") for r in rows])
    errors += [RowError(int(i), "label", "expected a scalar, got an object or list")
               for i in nested]
    return ids, labels, errors


def label_text(arr: pa.Array) -> pa.Array:
    """Labels stored as text; booleans as 'true'/'false' like the engine's categories."""
    if pa.types.is_floating(arr.type):
        as_int = pc.cast(arr, pa.int64(), safe=False)
        whole = pc.equal(pc.cast(as_int, pa.float64()), arr)
        return pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    return pc.cast(arr, pa.string())

