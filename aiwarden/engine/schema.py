"""One schema per model version: column names, types and roles.

Inferred from reference data, overridable, serialisable and versioned; every
layer (profiles, drift, quality, performance, the server) reads it. Inference is
conservative: a high-cardinality string column becomes an *identifier* or *text*
column, never a 50,000-category categorical.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiwarden.engine._frame import as_text, is_stringlike, to_table
from aiwarden.errors import DataError, ParameterError, SchemaError, check_param

__all__ = ["SCHEMA_FORMAT", "Column", "ColumnType", "Role", "Schema", "Task", "infer_schema"]

SCHEMA_FORMAT = 1


class ColumnType(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"


class Role(StrEnum):
    FEATURE = "feature"
    PREDICTION = "prediction"
    SCORE = "score"
    TARGET = "target"
    ID = "id"
    TIMESTAMP = "timestamp"
    SEGMENT = "segment"


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    TEXT_GENERATION = "text_generation"  # an LLM: monitored through its llm_* descriptors
    NONE = "none"


@dataclass(frozen=True)
class Column:
    """A column's name, type and role; ``label`` ties a score column to its class."""

    name: str
    dtype: ColumnType
    role: Role = Role.FEATURE
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": str(self.dtype), "role": str(self.role)}
        if self.label is not None:
            out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Column:
        if "name" not in d:
            raise SchemaError(f"A schema column needs a 'name'. Got {dict(d)!r}.")
        if "dtype" not in d:
            raise SchemaError(f"Schema column {d['name']!r} needs a 'dtype'.", str(d["name"]))
        return cls(
            name=str(d["name"]),
            dtype=_enum(ColumnType, d["dtype"], "dtype", d["name"]),
            role=_enum(Role, d.get("role", "feature"), "role", d["name"]),
            label=d.get("label"),
        )


def _enum(kind: type[StrEnum], value: Any, what: str, column: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise SchemaError(
            f"Column {column!r} has {what} {value!r}; valid values are: {valid}.", column
        ) from None


@dataclass(frozen=True)
class Schema:
    """Columns with roles, the task, and the class labels for classification."""

    columns: tuple[Column, ...]
    task: Task = Task.NONE
    classes: tuple[str, ...] = ()
    version: int = 1
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # linear
            raise SchemaError(f"Column names must be unique. Repeated: {dupes}.")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        for role in (Role.PREDICTION, Role.TARGET, Role.ID, Role.TIMESTAMP):
            found = [c.name for c in self.columns if c.role == role]
            if len(found) > 1:
                raise SchemaError(f"At most one column may have role {role.value!r}. Got {found}.")

    def __getitem__(self, name: str) -> Column:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"Column {name!r} is not in the schema.", name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def with_role(self, role: Role | str) -> tuple[Column, ...]:
        role = Role(role)
        return tuple(c for c in self.columns if c.role == role)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.with_role(Role.FEATURE))

    def column_for(self, role: Role | str) -> str | None:
        cols = self.with_role(role)
        return cols[0].name if cols else None

    @property
    def score_columns(self) -> tuple[Column, ...]:
        return self.with_role(Role.SCORE)

    def override(self, name: str, *, dtype: str | None = None, role: str | None = None,
                 label: str | None = None) -> Schema:
        """A new schema (version + 1) with one column changed."""
        col = self[name]
        changed = replace(
            col,
            dtype=_enum(ColumnType, dtype, "dtype", name) if dtype else col.dtype,
            role=_enum(Role, role, "role", name) if role else col.role,
            label=label if label is not None else col.label,
        )
        cols = tuple(changed if c.name == name else c for c in self.columns)
        return replace(self, columns=cols, version=self.version + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "version": self.version,
            "task": str(self.task),
            "classes": list(self.classes),
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        fmt = d.get("format", SCHEMA_FORMAT)
        if fmt != SCHEMA_FORMAT:
            raise SchemaError(f"Schema format {fmt!r} is not supported (expected {SCHEMA_FORMAT}).")
        try:
            task = Task(d.get("task", "none"))
        except ValueError:
            raise SchemaError(f"Unknown task {d.get('task')!r}.") from None
        return cls(
            columns=tuple(Column.from_dict(c) for c in d["columns"]),
            task=task,
            classes=tuple(str(c) for c in d.get("classes", ())),
            version=int(d.get("version", 1)),
        )


_TARGET_NAMES = {"target", "label", "y", "y_true", "ground_truth", "actual", "is_fraud"}
_PREDICTION_NAMES = {"prediction", "pred", "y_pred", "predicted", "predicted_label",
                     "prediction_label"}
_SCORE_RE = re.compile(r"^(y_)?(score|proba|prob|probability|predict_proba)(_(?P<label>.+))?$")
_ID_NAMES = {"id", "prediction_id", "uuid", "request_id", "event_id", "row_id"}
_TIME_NAMES = {"timestamp", "ts", "time", "event_time", "datetime", "created_at", "date"}


def infer_schema(
    data: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    scores: Iterable[str] | Mapping[str, str] | None = None,
    id: str | None = None,
    timestamp: str | None = None,
    segments: Iterable[str] = (),
    task: str | None = None,
    max_categories: int = 2000,
    dtypes: Mapping[str, str] | None = None,
    _encodings: dict[str, pa.ChunkedArray] | None = None,
) -> Schema:
    """Guess each column's type and role; explicit arguments always win.

    ``_encodings`` (``Reference.fit``'s): a text column found categorical leaves its
    dictionary encoding there, counted once instead of again by the fit.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"amount": [1.0, 2.5, 3.0], "country": ["FR", "DE", "FR"],
    ...                    "prediction": [0, 1, 0], "target": [0, 1, 1]})
    >>> s = infer_schema(df)
    >>> s.task.value, s.features, s.column_for("target")
    ('binary', ('amount', 'country'), 'target')
    """
    check_param(isinstance(max_categories, int) and 2 <= max_categories <= 1_000_000,
                "max_categories", "infer_schema", "an int in [2, 1000000]", max_categories)
    table = to_table(data)
    names = table.column_names
    dtypes = dict(dtypes or {})
    if isinstance(scores, str):
        scores = [scores]
    if isinstance(segments, str):
        segments = [segments]
    _check_distinct_roles(target=target, prediction=prediction, id=id, timestamp=timestamp,
                          segments=segments, scores=scores)
    for given in [target, prediction, id, timestamp, *segments, *dtypes]:
        if given is not None and given not in names:
            raise SchemaError(f"Column {given!r} was named but is not in the data.", given)
    score_labels: dict[str, str | None] = {}
    if scores is not None:
        items = scores.items() if isinstance(scores, Mapping) else ((s, None) for s in scores)
        for name, label in items:
            if name not in names:
                raise SchemaError(f"Score column {name!r} is not in the data.", name)
            score_labels[name] = label

    explicit = {c for c in (target, prediction, id, timestamp) if c} | set(segments)
    roles: dict[str, Role] = {}
    if target:
        roles[target] = Role.TARGET
    if prediction:
        roles[prediction] = Role.PREDICTION
    if id:
        roles[id] = Role.ID
    if timestamp:
        roles[timestamp] = Role.TIMESTAMP
    for s in segments:
        roles[s] = Role.SEGMENT
    for s in score_labels:
        roles[s] = Role.SCORE

    columns: list[Column] = []
    for name in names:
        col = table.column(name)
        dtype = (_enum(ColumnType, dtypes[name], "dtype", name) if name in dtypes
                 else _infer_type(col, max_categories, name, _encodings))
        role = roles.get(name)
        label = score_labels.get(name)
        if role is None and name not in explicit:
            role, label = _infer_role(name, dtype, col, roles)
            if role in (Role.TARGET, Role.PREDICTION, Role.ID, Role.TIMESTAMP):
                roles[name] = role
        if role == Role.SCORE and dtype != ColumnType.NUMERICAL:
            raise SchemaError(f"Score column {name!r} must be numerical, got {dtype.value}.", name)
        columns.append(Column(name, dtype, role or Role.FEATURE, label))

    schema_task, classes = _infer_task(table, columns, task)
    columns = _label_scores(columns, schema_task, classes)
    if schema_task in (Task.BINARY, Task.MULTICLASS):
        # Class labels are categories even when they are written as 0/1 integers.
        columns = [replace(c, dtype=ColumnType.CATEGORICAL)
                   if c.role in (Role.TARGET, Role.PREDICTION) and c.name not in dtypes else c
                   for c in columns]
    return Schema(tuple(columns), schema_task, classes)


def _check_distinct_roles(**given: Any) -> None:
    """One column, one role: naming a column twice is a mistake, not a choice."""
    seen: dict[str, str] = {}
    for role, value in given.items():
        if value is None:
            continue
        names = [value] if isinstance(value, str) else list(value)
        for name in names:
            if name in seen:
                raise SchemaError(f"Column {name!r} was named both as {seen[name]} and as "
                                  f"{role}; a column has one role.", name)
            seen[name] = role


def _infer_type(col: pa.ChunkedArray, max_categories: int, col_name: str = "",
                encodings: dict[str, pa.ChunkedArray] | None = None) -> ColumnType:
    t = col.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return ColumnType.BOOLEAN
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return ColumnType.NUMERICAL
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return ColumnType.DATETIME
    if pa.types.is_null(t):
        return ColumnType.NUMERICAL
    if pa.types.is_nested(t):
        raise DataError(f"Column {col_name!r} holds nested values ({t}); flatten it or drop "
                        "it before monitoring.", col_name)
    valid = col.drop_null()
    if pa.types.is_dictionary(valid.type):
        valid = valid.cast(valid.type.value_type)
    if pa.types.is_string_view(valid.type):
        valid = valid.cast(pa.large_string())
    n = len(valid)
    if n == 0:
        return ColumnType.CATEGORICAL
    if encodings is not None and is_stringlike(t):
        # the distinct values from the dictionary encoding the fit needs anyway
        enc = pc.dictionary_encode(as_text(col))
        n_unique = len(enc.dictionary)
    else:
        enc, n_unique = None, pc.count_distinct(valid).as_py()
    if n_unique <= max_categories and (n_unique <= 50 or n_unique <= 0.5 * n):
        if enc is not None:
            encodings[col_name] = enc  # type: ignore[index]
        return ColumnType.CATEGORICAL
    del enc
    lengths = pc.utf8_length(pc.cast(valid, pa.large_string()))
    mean_len = pc.mean(lengths).as_py() or 0.0
    has_space = pc.mean(pc.cast(pc.match_substring(valid, " "), pa.int8())).as_py() or 0.0
    if mean_len > 25 or has_space > 0.5:
        return ColumnType.TEXT
    return ColumnType.IDENTIFIER


def _infer_role(
    name: str, dtype: ColumnType, col: pa.ChunkedArray, taken: Mapping[str, Role]
) -> tuple[Role, str | None]:
    low = name.lower()
    used = set(taken.values())
    if low in _TARGET_NAMES and Role.TARGET not in used:
        return Role.TARGET, None
    if low in _PREDICTION_NAMES and Role.PREDICTION not in used:
        return Role.PREDICTION, None
    m = _SCORE_RE.match(low)
    if m and dtype == ColumnType.NUMERICAL:
        label = m.group("label")
        return Role.SCORE, (name[len(name) - len(label):] if label else None)
    if dtype == ColumnType.DATETIME and Role.TIMESTAMP not in used and (
        low in _TIME_NAMES or low.endswith("_at") or low.endswith("_time")
    ):
        return Role.TIMESTAMP, None
    if Role.ID not in used and (low in _ID_NAMES or low.endswith("_id")):
        valid = col.drop_null()
        if pa.types.is_string_view(valid.type):
            valid = valid.cast(pa.large_string())
        if len(valid) and pc.count_distinct(valid).as_py() == len(valid):
            return Role.ID, None
    if dtype == ColumnType.IDENTIFIER:
        return Role.ID if Role.ID not in used else Role.FEATURE, None
    return Role.FEATURE, None


def _infer_task(
    table: pa.Table, columns: list[Column], task: str | None
) -> tuple[Task, tuple[str, ...]]:
    from aiwarden.engine._frame import as_text

    target = next((c for c in columns if c.role == Role.TARGET), None)
    pred = next((c for c in columns if c.role == Role.PREDICTION), None)
    scores = [c for c in columns if c.role == Role.SCORE]
    if task is not None:
        try:
            chosen: Task | None = Task(task)
        except ValueError:
            raise ParameterError(
                f"The 'task' parameter of infer_schema must be one of "
                f"{[t.value for t in Task]}. Got {task!r} instead."
            ) from None
    else:
        chosen = None
    label_cols = [c for c in (target, pred) if c is not None]
    if not label_cols and not scores:
        return chosen or Task.NONE, ()
    if chosen == Task.REGRESSION:
        return chosen, ()
    is_float = any(
        pa.types.is_floating(table.column(c.name).type)
        and not _integral(table.column(c.name)) for c in label_cols
    )
    if chosen is None and is_float:
        return Task.REGRESSION, ()
    values: set[str] = set()
    for c in label_cols:
        uniq = pc.unique(as_text(table.column(c.name)).drop_null()).to_pylist()
        values.update(str(u) for u in uniq)
    values.update(c.label for c in scores if c.label is not None)
    first_type = table.column(label_cols[0].name).type if label_cols else None
    if first_type is not None and pa.types.is_dictionary(first_type):
        first_type = first_type.value_type
    if chosen is None and len(values) > 50 and label_cols and not is_stringlike(first_type):
        return Task.REGRESSION, ()
    classes = tuple(sorted(values, key=_class_key))
    if chosen is None:
        chosen = Task.BINARY if len(classes) <= 2 and len(scores) <= 1 else Task.MULTICLASS
    elif chosen == Task.BINARY and len(classes) > 2:
        shown = list(classes[:10]) + (["..."] if len(classes) > 10 else [])
        raise SchemaError(f"task binary, but the labels, predictions and score columns name "
                          f"{len(classes)} classes {shown}: use task multiclass, or map "
                          "them to two classes.")
    return chosen, classes


def _integral(col: pa.ChunkedArray) -> bool:
    x = col.drop_null().to_numpy(zero_copy_only=False)
    x = x[np.isfinite(x)]
    return bool(len(x)) and bool(np.all(x == np.round(x)))


def _class_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _label_scores(columns: list[Column], task: Task, classes: tuple[str, ...]) -> list[Column]:
    """Binary: one unlabelled score is the positive class (the last class)."""
    if task == Task.BINARY and classes:
        scores = [c for c in columns if c.role == Role.SCORE]
        if len(scores) == 1 and scores[0].label is None:
            return [replace(c, label=classes[-1]) if c is scores[0] else c for c in columns]
    return columns
