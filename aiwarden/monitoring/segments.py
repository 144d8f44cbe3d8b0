"""Segments: every metric for one value of a segment column ("accuracy fell only for country = BR").

A version's segment columns are the schema's columns with role ``segment`` (declared with
the model, ``segments=`` when the reference is uploaded, or in a version's schema); each
must be categorical or boolean. Rows are split by each segment column separately (not by
combinations) and each part is folded into its own bucket partials, stored apart from the
whole-model partials, so a segment's window merges by addition like any other.

Cardinality is bounded by a fixed policy read from the reference alone, so every writer
and reader agrees without coordination: a segment column keeps its ``top_n`` most frequent
reference values (ties by value), and every other value, a value the reference never saw,
and a missing value fall into ``__other__``. A column therefore has at most ``top_n + 1``
segments, whatever the traffic sends (10,000 distinct values stay 11 segments by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._binning import CategoricalBinning
from aiwarden.engine._profiling import category_text
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import ColumnType, Role, Schema
from aiwarden.errors import ParameterError, SchemaError
from aiwarden.monitoring.bucket import BucketData

__all__ = ["DEFAULT_TOP_N", "MAX_TOP_N", "OTHER", "Segment", "check_names", "check_schema",
           "check_top_n", "groupings", "kept_values", "parse", "reference_parts", "resolve",
           "segment_columns", "split"]

OTHER = "__other__"
DEFAULT_TOP_N = 10
MAX_TOP_N = 1000
_MAX_VALUE = 200  # a longer value is folded into __other__: a key must fit its column
_MAX_NAME = 90  # column name + "=" + value <= 300 characters (segment_profiles.segment)
_TYPES = (ColumnType.CATEGORICAL, ColumnType.BOOLEAN)


@dataclass(frozen=True)
class Segment:
    """One segment: a segment column and one of its values (or ``__other__``)."""

    column: str
    value: str

    @property
    def key(self) -> str:
        """How it is stored and labelled: ``country=BR``."""
        return f"{self.column}={self.value}"

    def __str__(self) -> str:
        return f"{self.column} = {self.value}"


def parse(text: str, field: str = "segment") -> Segment:
    """``country:BR`` or ``country=BR`` (the first separator splits; values may hold more)."""
    if not isinstance(text, str):
        raise ParameterError(f"{field}: expected 'column:value' (e.g. country:BR), got "
                             f"{text!r}.", field)
    cut = [i for i in (text.find(":"), text.find("=")) if i > 0]
    if not cut or min(cut) == len(text) - 1:
        raise ParameterError(f"{field}: expected 'column:value' (e.g. country:BR), got "
                             f"{text!r}.", field)
    at = min(cut)
    return Segment(text[:at].strip(), text[at + 1:])


def segment_columns(schema: Schema) -> list[str]:
    return [c.name for c in schema.columns if c.role == Role.SEGMENT]


def check_schema(schema: Schema) -> None:
    """Segment columns must be categorical (or boolean): a numerical or identifier column
    has no bounded set of values to split by."""
    for c in schema.columns:
        if c.role == Role.SEGMENT and len(c.name) > _MAX_NAME:
            raise SchemaError(f"segments: column name {c.name[:40]!r}... is longer than "
                              f"{_MAX_NAME} characters; rename it to use it as a segment.",
                              c.name)
        if c.role == Role.SEGMENT and c.dtype not in _TYPES:
            raise SchemaError(
                f"segments: column {c.name!r} is {c.dtype.value}; a segment column must be "
                "categorical or boolean (set its dtype, or bin it into a categorical column "
                "first).", c.name)


def kept_values(ref: Reference, column: str, top_n: int) -> tuple[str, ...]:
    """The column's ``top_n`` most frequent reference values (the reference's categories
    are ordered by count, ties by value); every other value is ``__other__``."""
    binning = ref.binnings_.get(column)
    if not isinstance(binning, CategoricalBinning):
        return ()
    return tuple(v for v in binning.categories[:top_n] if len(v) <= _MAX_VALUE and v != OTHER)


def resolve(ref: Reference | None, segment: Segment, top_n: int) -> str | None:
    """Why ``segment`` cannot be read for this reference (None: it can)."""
    if ref is None:
        return "this version has no reference, so it has no segment columns"
    cols = segment_columns(ref.schema_)
    if segment.column not in cols:
        have = ", ".join(cols) or "none; declare them with segments= when uploading a reference"
        return f"{segment.column!r} is not a segment column of this version (segment columns: " \
               f"{have})"
    if segment.value != OTHER and segment.value not in kept_values(ref, segment.column, top_n):
        return (f"{segment.value!r} is not among the {top_n} most frequent reference values of "
                f"{segment.column!r}: its rows count in {segment.column}:{OTHER}")
    return None


def row_values(ref: Reference, table: pa.Table, column: str, top_n: int
               ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per row, the index of its segment in ``values`` (the kept values, then ``__other__``)."""
    kept = kept_values(ref, column, top_n)
    values = (*kept, OTHER)
    if column not in table.column_names:
        return np.full(table.num_rows, len(kept), np.int64), values
    text = category_text(ref.schema_[column], table.column(column))
    idx = pc.index_in(text, value_set=pa.array(kept, pa.large_string()))
    return np.asarray(pc.fill_null(idx, len(kept)).to_numpy(zero_copy_only=False),
                      np.int64), values


def rows_of(ref: Reference, table: pa.Table, segment: Segment, top_n: int) -> np.ndarray:
    """Which rows of ``table`` (raw events) belong to ``segment``, by the same policy."""
    codes, values = row_values(ref, table, segment.column, top_n)
    if segment.value not in values:
        return np.zeros(table.num_rows, bool)
    return codes == values.index(segment.value)


def groupings(ref: Reference | None, table: pa.Table, buckets: np.ndarray, top_n: int
              ) -> list[tuple[np.ndarray, list[tuple[str, int]]]]:
    """Per segment column, each row's group (``0..G-1``) and each group's (segment key,
    bucket start): the rows of one segment in one bucket. Only groups with rows appear."""
    if ref is None or not table.num_rows:
        return []
    out = []
    starts, b_idx = np.unique(buckets, return_inverse=True)
    for column in segment_columns(ref.schema_):
        codes, values = row_values(ref, table, column, top_n)
        ids, group = np.unique(b_idx.astype(np.int64) * len(values) + codes,
                               return_inverse=True)
        out.append((group.reshape(-1), [
            (Segment(column, values[g % len(values)]).key, int(starts[g // len(values)]))
            for g in ids.tolist()]))
    return out


def split(ref: Reference | None, table: pa.Table, buckets: np.ndarray, top_n: int,
          make: Callable[[np.ndarray], BucketData]) -> dict[str, dict[int, BucketData]]:
    """``segment key -> bucket start -> make(row positions)`` for every segment column.

    Only segments with rows appear; each row lands in exactly one segment per column.
    """
    out: dict[str, dict[int, BucketData]] = {}
    for group, labels in groupings(ref, table, buckets, top_n):
        order = np.argsort(group, kind="stable")
        at = np.cumsum(np.bincount(group))[:-1]
        for (key, start), part in zip(labels, np.split(order, at), strict=True):
            out.setdefault(key, {})[start] = make(part)
    return out


def check_names(columns: list[str] | None) -> list[str]:
    """Segment columns declared with a model: distinct, non-empty names (their types are
    checked when a reference is fitted with them)."""
    cols = [c for c in columns or [] if isinstance(c, str)]
    if len(cols) != len(columns or []) or not all(c.strip() for c in cols):
        raise ParameterError(f"segments: expected a list of column names; got {columns!r}.",
                             "segments")
    if len(set(cols)) != len(cols):
        raise ParameterError(f"segments: a column is named twice in {cols}.", "segments")
    return cols


def check_top_n(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_N:
        raise ParameterError(f"AIWARDEN_SEGMENT_TOP_N (segment_top_n): expected an int in "
                             f"[1, {MAX_TOP_N}]; got {value!r}.", "AIWARDEN_SEGMENT_TOP_N")
    return value


def reference_parts(ref: Reference, sample: pa.Table, column: str, top_n: int
                    ) -> dict[str, BucketData]:
    """Each segment's labelled reference rows (from the stored reference sample) as a
    labels-only partial: the baseline a segment's performance is compared with, since a
    segment's own accuracy may sit well apart from the whole reference's."""
    target = ref.schema_.column_for(Role.TARGET)
    if target is None or target not in sample.column_names or not sample.num_rows:
        return {}
    codes, values = row_values(ref, sample, column, top_n)
    out = {}
    for i, value in enumerate(values):
        part = np.flatnonzero(codes == i)
        if len(part):
            rows = sample.take(pa.array(part))
            out[value] = BucketData(profile=ref.profile(rows, labels_only=True),
                                    labels=len(part))
    return out
