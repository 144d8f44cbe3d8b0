"""Turning an ingest request into typed Arrow columns, with a reason for every bad row.

JSON rows are read column by column (one comprehension per column, Arrow does the
typing); bulk Arrow/Parquet arrives typed already. Both understand the same row format
(docs/api.md): flat columns named as the schema names them, or the nested form
(``features``, ``prediction``, ``scores``, ``tags``: objects in JSON, struct columns or
dotted names such as ``features.x`` in Arrow/Parquet/CSV). Both then pass through the
same column checks, which type every column by the schema (numerical → float64,
everything else → text, as the engine reads categories), so a row is quarantined for
the same reason whichever path it took and every stored batch has the same column types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._frame import is_binarylike, plain
from aiwarden.engine.schema import ColumnType, Role, Schema, Task
from aiwarden.errors import DataError
from aiwarden.monitoring.windows import to_iso

__all__ = ["ERROR", "LATENCY", "MAX_ID", "PID", "RESERVED", "TS", "VERSION", "Batch", "RowError",
           "check", "concat_stored", "from_arrow", "from_json", "id_text", "label_rows",
           "label_text", "scalar_kind"]

PID, TS, VERSION, LATENCY = "prediction_id", "timestamp", "version", "latency_ms"
ERROR = "error"  # a failed prediction: true, or the error message; absent/false/null: served
RESERVED = (PID, TS, VERSION, LATENCY, ERROR)
_NUMERIC = (ColumnType.NUMERICAL,)
MAX_ID = 200
_NESTED = ("features", "prediction", "scores", "tags")  # the nested row form's keys
_SKIPPED = (Role.TARGET, Role.TIMESTAMP)  # labels come later; the event time is ``timestamp``


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
    ignored: set[str] = field(default_factory=set)  # columns sent that nothing reads

    def original(self, i: int) -> Any:
        """Row ``i`` exactly as it was sent (a bad value is kept, not nulled)."""
        if isinstance(self.source, pa.Table):
            return self.source.slice(i, 1).to_pylist()[0]
        return self.source[i] if self.source is not None else None

    def fail(self, rows: np.ndarray, field_name: str, reasons: Sequence[str] | str) -> None:
        for i, r in zip(rows.tolist(), [reasons] * len(rows) if isinstance(reasons, str)
                        else reasons, strict=True):
            self.errors.setdefault(int(i), RowError(int(i), field_name, r))

    def fail_each(self, failures: list[Failure], field_name: str) -> None:
        for rows, reason in failures:
            self.fail(rows, field_name, reason)

    def valid_mask(self) -> np.ndarray:
        mask = np.ones(self.n, dtype=bool)
        if self.errors:
            mask[np.fromiter(self.errors, dtype=np.int64)] = False
        return mask


Failure = tuple[np.ndarray, str]  # rows, and why their values could not be read
NESTED_REASON = "expected a scalar, got an object or list"
NOT_UTF8_REASON = "expected text, got bytes that are not UTF-8"


def scalar_kind(arr: pa.Array) -> tuple[pa.Array, list[Failure]]:
    """Any Arrow column as one of the kinds the checks read (null, boolean, integer,
    floating, UTF-8 string, timestamp, date) and the rows it cannot be read for.

    The one place a column's Arrow type is interpreted, so a bulk body gives the answer
    the same values give in JSON: a dictionary is decoded; a list, struct, map or union
    fails its rows as an object or list does; binary is the UTF-8 text it holds (bytes
    that are not UTF-8 fail their row); a decimal is a float (JSON sends 1.50 so); a
    duration is its seconds; a time of day is its text; an interval fails its rows.
    """
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":  # its text form, not 16 raw bytes
            import uuid

            return pa.array([None if b is None else str(uuid.UUID(bytes=b))
                             for b in arr.storage.to_pylist()], pa.string()), []
        return scalar_kind(arr.storage)
    if pa.types.is_dictionary(t):
        return scalar_kind(arr.dictionary_decode())
    if pa.types.is_run_end_encoded(t):
        return scalar_kind(pc.run_end_decode(arr))
    if _known(t):
        return arr, []
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(arr, pa.string()), []
    if pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64(), safe=False), []
    if pa.types.is_nested(t):
        given = np.flatnonzero(np.asarray(arr.is_valid())) if not pa.types.is_union(t) \
            else np.arange(len(arr))  # a union has no validity of its own
        return pa.nulls(len(arr)), [(given, NESTED_REASON)]
    out, bad = plain(arr)  # binary, duration, time of day, interval: as the engine reads them
    if pa.types.is_large_string(out.type):
        out = pc.cast(out, pa.string())
    if bad is None and not _known(out.type):  # a kind nothing here reads
        bad = np.asarray(arr.is_valid())
    if bad is None:
        return out, []
    reason = NOT_UTF8_REASON if is_binarylike(t) else f"expected a number or text, got {t}"
    return (out if _known(out.type) else pa.nulls(len(arr))), [(np.flatnonzero(bad), reason)]


def _known(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_null(t) or pa.types.is_boolean(t)
            or pa.types.is_integer(t) or pa.types.is_floating(t)
            or pa.types.is_timestamp(t) or pa.types.is_date(t))


def _scalars(batch: Batch, arr: pa.Array, where: str) -> pa.Array:
    arr, failures = scalar_kind(arr)
    batch.fail_each(failures, where)
    return arr


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
                                          else v if isinstance(v, str) else str(v))
            for v, n in zip(values, nested, strict=True)]
    floats = [i for i, v in enumerate(values) if isinstance(v, float)]
    if floats:  # written as Arrow writes a float column as text: 1.0 → "1", like the engine
        cast = pa.array([values[i] for i in floats], pa.float64()).cast(pa.string()).to_pylist()
        for i, t in zip(floats, cast, strict=True):
            text[i] = t
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
            batch.fail(nested_rows, name, NESTED_REASON)
    if ERROR in top_keys:  # JSON types decide here, before mixed values become text
        flags = [r.get(ERROR) for r in rows]
        bad = np.fromiter((not (v is None or isinstance(v, bool | str)) for v in flags),
                          dtype=bool, count=n)
        if bad.any():
            batch.fail(np.flatnonzero(bad), ERROR, "expected true/false or an error message")
        batch.columns[ERROR] = pa.array(
            [("error" if v is True else v) if isinstance(v, bool | str) and v else None
             for v in flags], pa.string())
    if schema is None:  # nothing to type against: only the reserved columns are kept
        for key in top_keys - set(RESERVED):
            parts = {k for r in rows if isinstance(r.get(key), dict) for k in r[key]} \
                if key in _NESTED else set()
            batch.ignored |= {f"{key}.{k}" for k in parts} or {key}
        return batch
    nested = _merged_objects(rows, schema, batch)
    wanted = [c for c in schema.columns if c.role not in _SKIPPED]
    found = False
    for col in wanted:
        arr, nested_rows = _array(_column_values(rows, nested, col.name, col.name in top_keys))
        batch.columns[col.name] = arr
        found = found or arr.null_count < n
        if nested_rows.size:
            batch.fail(nested_rows, _where(col), NESTED_REASON)
    known = {c.name for c in wanted} | set(RESERVED) | set(_NESTED)
    batch.ignored |= top_keys - known
    _refuse_unknown(batch, schema, found, sorted(top_keys - set(RESERVED)))
    return batch


def _refuse_unknown(batch: Batch, schema: Schema, found: bool, sent: list[str]) -> None:
    """A request none of whose values reach a schema column is refused, not stored as nulls
    (rows that only report a failed prediction need none)."""
    wanted = [c.name for c in schema.columns if c.role not in _SKIPPED]
    if found or not wanted or batch.n == 0:
        return
    err = batch.columns.get(ERROR)
    if err is not None and err.null_count == 0 and not pa.types.is_null(err.type):
        return
    shown = ", ".join(wanted[:20]) + (", ..." if len(wanted) > 20 else "")
    raise DataError(
        f"None of the columns sent ({', '.join(sent[:20]) or 'only reserved ones'}) is in the "
        f"schema, which expects {shown}: send them flat, or nested under 'features', "
        "'prediction', 'scores' and 'tags' (docs/api.md). Nothing was stored.", "features")


def _where(col: Any) -> str:
    return {Role.FEATURE: f"features.{col.name}", Role.PREDICTION: "prediction",
            Role.SCORE: f"scores.{col.label or col.name}",
            Role.SEGMENT: f"tags.{col.name}"}.get(col.role, col.name)


def _merged_objects(rows: list[dict[str, Any]], schema: Schema, batch: Batch) -> list[Any]:
    """Per row, one dict of schema column → value built from features/prediction/scores/tags;
    keys that match no schema column go to ``batch.ignored``."""
    pred = schema.column_for(Role.PREDICTION)
    scores = schema.score_columns
    by_key = {c.name: c.name for c in scores} | {str(c.label): c.name for c in scores if c.label}
    single = scores[0].name if len(scores) == 1 else None
    names = {c.name for c in schema.columns if c.role not in _SKIPPED}
    out: list[Any] = []
    bad: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        d: dict[str, Any] = {}
        for key in ("features", "tags"):
            part = r.get(key)
            if isinstance(part, dict):
                d.update(part)
                if not names.issuperset(part):
                    batch.ignored.update(f"{key}.{k}" for k in part if k not in names)
            elif part is not None:
                bad.setdefault(key, []).append(i)
        if "prediction" in r:
            if pred is not None:
                d[pred] = r["prediction"]
            else:
                batch.ignored.add("prediction")
        s = r.get("scores")
        if isinstance(s, dict):
            for k, v in s.items():
                name = by_key.get(str(k))
                if name is not None:
                    d[name] = v
                else:
                    batch.ignored.add(f"scores.{k}")
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
    """Columns from a bulk Arrow table: flat columns, or the nested form as struct columns
    (``features``, ``scores``, ``tags``) or dotted names (``features.x``), plus
    ``prediction`` and a single ``scores`` column, as in JSON rows."""
    n = table.num_rows
    batch = Batch(n, {}, source=table)
    if PID not in table.column_names:
        raise DataError("Every row needs a 'prediction_id' and the data has no such column "
                        f"(columns: {', '.join(table.column_names[:20])}). Nothing was stored.",
                        PID)
    found = _arrow_sources(table, schema)
    for name in RESERVED:
        arr = found.pop(name, None)
        batch.columns[name] = pa.nulls(n) if arr is None else arr
    if schema is None:
        batch.ignored |= set(found)
        return batch
    wanted = [c for c in schema.columns if c.role not in _SKIPPED]
    for col in wanted:
        arr = found.pop(col.name, None)
        batch.columns[col.name] = pa.nulls(n) if arr is None else arr
    batch.ignored |= set(found)
    _refuse_unknown(batch, schema, any(batch.columns[c.name].null_count < n for c in wanted),
                    sorted(set(table.column_names) - set(RESERVED)))
    return batch


def _decoded(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _arrow_sources(table: pa.Table, schema: Schema | None) -> dict[str, pa.Array]:
    """Schema column (or reserved name) → the array that carries it; names that reach no
    column keep their own name (reported as ignored). A flat schema name wins over a
    dotted one, which wins over a struct field."""
    out: dict[str, pa.Array] = {}
    pred = schema.column_for(Role.PREDICTION) if schema else None
    scores = schema.score_columns if schema else ()
    by_score = {c.name: c.name for c in scores} | {str(c.label): c.name for c in scores
                                                   if c.label}
    names = {c.name for c in schema.columns if c.role not in _SKIPPED} if schema else set()

    def target(prefix: str, key: str) -> str | None:
        if prefix == "scores":
            return by_score.get(key)
        return key if key in names else None

    flat, dotted, nested = {}, {}, {}
    for i, name in enumerate(table.column_names):
        arr = table.column(i)
        if name in RESERVED or name in names:
            flat[name] = arr
        elif "." in name and name.split(".", 1)[0] in ("features", "scores", "tags"):
            prefix, key = name.split(".", 1)
            to = target(prefix, key)
            dotted[to or name] = arr
        elif name in ("features", "scores", "tags") and pa.types.is_struct(arr.type):
            struct = _decoded(arr)
            for f, child in zip(struct.type, struct.flatten(), strict=True):
                to = target(name, f.name)
                nested[to or f"{name}.{f.name}"] = child
        elif name == "prediction" and pred is not None:
            nested.setdefault(pred, arr)
        elif name == "scores" and len(scores) == 1 and not pa.types.is_nested(arr.type):
            nested.setdefault(scores[0].name, arr)
        else:
            out[name] = arr
    for part in (nested, dotted, flat):
        out.update(part)
    return {k: _decoded(v) for k, v in out.items()}


def check(batch: Batch, schema: Schema | None, *, now: float) -> tuple[np.ndarray, np.ndarray]:
    """Type the reserved columns and check feature types; returns (prediction ids, epoch ts)."""
    pid = _check_ids(batch, PID)
    ts = _check_times(batch, now)
    lat = batch.columns[LATENCY]
    batch.columns[LATENCY] = _check_numeric(batch, LATENCY, lat, LATENCY)
    batch.columns[ERROR] = _check_error(batch)
    if schema is not None:
        for col in schema.columns:
            if col.name not in batch.columns or col.role in _SKIPPED:
                continue
            check_one = _check_numeric if col.dtype in _NUMERIC else _check_text
            batch.columns[col.name] = check_one(batch, col.name, batch.columns[col.name],
                                                _where(col))
        _check_outputs(batch, schema)
    return pid, ts


def _check_outputs(batch: Batch, schema: Schema) -> None:
    """A classifier's scores are probabilities (as its reference's were), and a binary
    model predicts one of its two classes: ``"maybe"`` or a score of 1.7 is refused with
    the field, not counted as a third class or a probability."""
    if schema.task not in (Task.BINARY, Task.MULTICLASS):
        return
    for col in schema.columns:
        if col.role != Role.SCORE or col.name not in batch.columns:
            continue
        arr = batch.columns[col.name]
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
            continue
        out = pc.or_(pc.less(arr, 0), pc.greater(arr, 1))
        bad = np.asarray(pc.fill_null(out, False))
        if bad.any():
            batch.fail(np.flatnonzero(bad), _where(col), "expected a probability in [0, 1]")
    pred = schema.column_for(Role.PREDICTION)
    if schema.task != Task.BINARY or len(schema.classes) != 2 or pred is None \
            or pred not in batch.columns:
        return
    arr = batch.columns[pred]
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return
    known = pa.array(list(schema.classes), pa.string())
    bad = np.asarray(pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, value_set=known))))
    if bad.any():
        batch.fail(np.flatnonzero(bad), _where(schema[pred]),
                   f"a binary model predicts one of {list(schema.classes)}")


def _check_text(batch: Batch, name: str, arr: pa.Array, where: str) -> pa.Array:
    """Categorical, boolean, text, id and datetime columns are stored as text, written as
    the engine reads them (``as_text``: 1 → "1", 1.0 → "1", True → "true"): a value sent
    as 1 in one request and "1" in another is one category, and one stored type."""
    arr = _scalars(batch, arr, where)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_floating(t):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, t), arr)
    return pc.cast(arr, pa.string())  # every kind scalar_kind leaves has a text form


def id_text(arr: pa.Array) -> tuple[pa.Array, list[Failure]]:
    """Prediction ids as text (a float id 7.0 is "7"), and the rows that hold none."""
    arr, failures = scalar_kind(arr)
    if pa.types.is_floating(arr.type):
        arr = pc.cast(arr, pa.int64(), safe=False)
    return pc.cast(arr, pa.string()), failures


def _check_ids(batch: Batch, name: str) -> np.ndarray:
    arr, failures = id_text(batch.columns[name])
    batch.fail_each(failures, name)
    missing = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True))
    if missing.any():
        batch.fail(np.flatnonzero(missing), name, "required: a non-empty prediction id")
    too_long = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(arr), MAX_ID), False))
    if too_long.any():
        batch.fail(np.flatnonzero(too_long), name, f"longer than {MAX_ID} characters")
    nul = nul_ids(arr)
    if nul.any():
        batch.fail(np.flatnonzero(nul), name, NUL_REASON)
    batch.columns[name] = arr
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    return values


NUL_REASON = "holds a NUL character, which no store keeps (PostgreSQL refuses it)"


def nul_ids(arr: pa.Array) -> np.ndarray:
    """Which ids hold a NUL: refused per row, where PostgreSQL failed the whole request."""
    return np.asarray(pc.fill_null(pc.match_substring(arr, "\x00"), False))


def _check_times(batch: Batch, now: float) -> np.ndarray:
    arr = _scalars(batch, batch.columns[TS], TS)
    n = batch.n
    if pa.types.is_null(arr.type):
        ts = np.full(n, now)
    elif pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        micros = pc.cast(pc.cast(arr, pa.timestamp("us", tz="UTC"), safe=False), pa.int64())
        ts = np.asarray(pc.fill_null(micros, 0).to_numpy(), dtype=np.float64) / 1e6
        ts[np.asarray(arr.is_null())] = now
    elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        ts = np.asarray(pc.fill_null(pc.cast(arr, pa.float64(), safe=False), now).to_numpy(),
                        np.float64)
    elif pa.types.is_boolean(arr.type):  # true is not 1970-01-01T00:00:01
        given = np.flatnonzero(np.asarray(arr.is_valid()))
        if len(given):
            batch.fail(given, TS, "expected ISO 8601 or epoch seconds, got a boolean")
        ts = np.full(n, now)
    else:
        text = pd.Series(arr.to_pandas(), dtype=object)
        as_num = pd.to_numeric(text, errors="coerce")
        parsed = pd.to_datetime(text.where(as_num.isna()), utc=True, errors="coerce",
                                format="ISO8601")
        # Seconds from the epoch whatever resolution pandas inferred (pandas 3 parses
        # "...T13:00:00Z" to microseconds, so its int64 view is not nanoseconds).
        # The epoch in the parsed unit: in nanoseconds it turned a year past 2262 into a 500
        seconds = (parsed - pd.Timestamp(0, tz="UTC").as_unit(parsed.dt.unit)
                   ).dt.total_seconds()
        ts = np.where(as_num.notna(), as_num.to_numpy(np.float64, na_value=np.nan),
                      seconds.to_numpy(np.float64, na_value=np.nan))
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
    ahead = ts > now + MAX_AHEAD_S
    if ahead.any():  # a clock or unit error: it would sit past every window and retention
        idx = np.flatnonzero(ahead)
        batch.fail(idx, TS, [f"{to_iso(float(ts[i]))} is {(ts[i] - now) / 86400:,.1f} days "
                             f"ahead of the server's clock; at most {MAX_AHEAD_S // 3600} "
                             f"hours ahead is accepted" for i in idx])
        ts = np.where(ahead, now, ts)
    return ts


MAX_AHEAD_S = 86400  # how far ahead of the server's clock an event time may be


def _check_error(batch: Batch) -> pa.Array:
    """The error column as text: null for a served prediction, else the message
    (``"error"`` when the caller only said ``true``)."""
    arr = _scalars(batch, batch.columns[ERROR], ERROR)
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
    """float64; an integer beyond 2**53 (a uint64 of 2**64-1) is the nearest float, as
    JSON numbers are read."""
    arr = _scalars(batch, arr, where)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.float64())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pc.cast(arr, pa.float64(), safe=False)
    if not pa.types.is_string(t):  # a boolean, a timestamp or a date
        what = "a boolean" if pa.types.is_boolean(t) else str(t)
        batch.fail(np.flatnonzero(np.asarray(arr.is_valid())), where,
                   f"expected a number, got {what}")
        return pa.nulls(len(arr), pa.float64())
    text = pd.Series(arr.to_pandas(), dtype=object)
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


LABEL_KEYS = frozenset({PID, "label"})


def label_rows(rows: list[Any]) -> tuple[pa.Array, pa.Array, list[RowError], set[str]]:
    """``(prediction ids, labels as text, errors, keys nothing reads)`` from JSON label
    objects. A label carries no time of its own (it joins its prediction's), so a
    ``timestamp`` sent with it is reported as ignored rather than dropped without a word."""
    errors = [RowError(i, "row", "expected a JSON object") for i, r in enumerate(rows)
              if not isinstance(r, dict)]
    rows = [r if isinstance(r, dict) else {} for r in rows]
    ignored = {k for r in rows for k in r} - LABEL_KEYS
    ids, nested_ids = _array([r.get(PID) for r in rows])
    labels, nested = _array([r.get("label") for r in rows])
    errors += [RowError(int(i), PID, NESTED_REASON) for i in nested_ids]
    errors += [RowError(int(i), "label", NESTED_REASON) for i in nested]
    return ids, labels, errors, ignored


def label_text(arr: pa.Array) -> tuple[pa.Array, list[Failure]]:
    """Labels stored as text, as the engine reads categories (1.0 → "1", True → "true");
    a blank label is none; and the rows whose label has no text form."""
    arr, failures = scalar_kind(arr)
    t = arr.type
    if pa.types.is_floating(t):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, t), arr)
        as_int = pc.cast(arr, pa.int64(), safe=False)
        whole = pc.equal(pc.cast(as_int, pa.float64(), safe=False), pc.cast(arr, pa.float64()))
        text = pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    else:
        text = pc.cast(arr, pa.string())
    blank = pc.equal(pc.utf8_trim_whitespace(text), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), text), failures



def concat_stored(parts: list[pa.Table]) -> pa.Table:
    """Stored batches as one table, whatever types older batches hold.

    Batches written before ingest typed every column by the schema may hold one column as
    int64 in one batch and text in another (``prediction: 1`` then ``"1"``): such a column
    becomes float64 when every batch holds numbers, else text (as the engine reads
    categories), instead of failing the read.
    """
    if len(parts) <= 1:
        return parts[0] if parts else pa.table({})
    kinds: dict[str, set[pa.DataType]] = {}
    for t in parts:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                kinds.setdefault(f.name, set()).add(f.type)
    target: dict[str, pa.DataType] = {}
    for name, types in kinds.items():
        if len(types) > 1:
            numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types)
            target[name] = pa.float64() if numeric else pa.string()
    if target:
        parts = [_cast_columns(t, target) for t in parts]
    return pa.concat_tables(parts, promote_options="permissive")


def _cast_columns(table: pa.Table, target: dict[str, pa.DataType]) -> pa.Table:
    for i, f in enumerate(table.schema):
        to = target.get(f.name)
        if to is None or f.type == to:
            continue
        arr = _decoded(table.column(i))
        if to == pa.string():
            if pa.types.is_nested(arr.type):
                arr = pa.array([None if v is None else str(v) for v in arr.to_pylist()],
                               pa.string())
            else:
                if pa.types.is_floating(arr.type):
                    arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
                arr = pc.cast(arr, pa.string())
        else:
            arr = pc.cast(arr, to)
        table = table.set_column(i, f.name, arr)
    return table
