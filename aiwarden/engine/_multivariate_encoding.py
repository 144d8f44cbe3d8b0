"""What both multivariate detectors share: parameter checks, input conversion, the encoding.

Why here: :class:`~aiwarden.engine.multivariate.DomainClassifierDrift` and
:class:`~aiwarden.engine.multivariate.PCAReconstructionDrift` must read a sample the same way
and land reference and current rows in one standardised space, learned on the reference.

Inputs are converted to pandas here rather than through :func:`aiwarden.engine._frame.to_table`:
its Arrow round trip would change results. A pandas object column holding only numbers would
turn numerical (it is categorical here), complex columns categorical, ``True`` in a mixed
column would become the category ``"true"``, and a polars ``Date`` column would be one-hot
encoded instead of rejected (polars converts dates to datetime64, Arrow to objects).
The rest of the engine is followed where the two meet: the default features are the columns
:func:`~aiwarden.engine.schema.infer_schema` gives the role ``feature``; a numerical column
that arrives as text is parsed by :func:`~aiwarden.engine._frame.numeric_values`, its
unparsable values counted as invalid and encoded as missing; a boolean column accepts 0/1 and
true/false text, as the profiles do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aiwarden.engine._frame import numeric_values, to_table
from aiwarden.engine.schema import Schema, infer_schema
from aiwarden.errors import DataError, ParameterError, SchemaError, check_param

__all__ = [
    "Encoder",
    "check_features",
    "check_range",
    "choose_features",
    "is_int",
    "plain",
    "to_frame",
]

_MISSING = "<missing>"
_SCHEMA_HINTS = ("dtypes", "id", "prediction", "scores", "segments", "target", "task", "timestamp")
# Spellings of a boolean the profiles accept (aiwarden.engine._profiling.category_text).
_TRUE, _FALSE = ["true", "1", "1.0"], ["false", "0", "0.0"]


def is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_range(
    owner: str,
    name: str,
    value: Any,
    lo: float,
    hi: float,
    brackets: str = "[]",
    integer: bool = False,
) -> None:
    """House-style range check; ``brackets`` says which ends are closed."""
    ok = is_int(value) if integer else _is_real(value)
    if ok:
        above = value >= lo if brackets[0] == "[" else value > lo
        ok = above and (value <= hi if brackets[1] == "]" else value < hi)
    kind = "an int" if integer else "a float"
    check_param(ok, name, owner, f"{kind} in {brackets[0]}{lo}, {hi}{brackets[1]}", value)


def check_features(features: Sequence[str] | None, owner: str) -> None:
    ok = features is None or (
        isinstance(features, list | tuple)
        and len(features) > 0
        and all(isinstance(f, str) for f in features)
        and len(set(features)) == len(features)
    )
    check_param(ok, "features", owner, "None or a non-empty list of unique column names", features)


def plain(result: Any) -> dict[str, Any]:
    """A result dataclass as a JSON-safe dict; tuples become lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(result).items()}


def _is_polars(data: object) -> bool:
    return type(data).__module__.split(".")[0] == "polars" and hasattr(data, "to_pandas")


def to_frame(data: object, name: str, owner: str) -> pd.DataFrame:
    """Convert once to pandas; everything downstream works on numpy blocks from it."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pa.Table | pa.RecordBatch) or _is_polars(data):
        frame = data.to_pandas()
    elif isinstance(data, list):
        if not all(isinstance(row, dict) for row in data):
            raise DataError(f"A list given as the {name} sample of {owner} must hold one dict "
                            "per row.")
        frame = pd.DataFrame.from_records(data)
    elif isinstance(data, dict):
        try:
            frame = pd.DataFrame(data)
        except ValueError as exc:
            raise DataError(f"The {name} sample of {owner} is a dict of columns that cannot "
                            f"form a table: {exc}") from exc
    else:
        raise DataError(
            f"The {name} sample of {owner} must be a pandas or polars DataFrame, a pyarrow "
            f"Table, a list of dicts or a dict of columns. Got {type(data).__name__} instead."
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(
            f"The {name} sample of {owner} is empty ({frame.shape[0]} rows, "
            f"{frame.shape[1]} columns); it needs at least one row and one column."
        )
    return frame


def choose_features(
    frame: pd.DataFrame,
    features: Sequence[str] | None,
    schema: Schema | None,
    hints: dict[str, Any],
    owner: str,
) -> list[Any]:
    """``features`` if given, else the columns whose role is ``feature`` (as in Reference.fit).

    Target, prediction, score and id columns are left out by default, so a detector fitted on
    labelled validation data can compare unlabelled production batches.
    """
    where = f"{owner}.fit"
    unknown = sorted(set(hints) - set(_SCHEMA_HINTS))
    if unknown:
        raise ParameterError(f"Unknown argument(s) {unknown} of {where}; schema hints are: "
                             f"{', '.join(_SCHEMA_HINTS)}.")
    check_param(schema is None or isinstance(schema, Schema), "schema", where,
                "None or a Schema", schema)
    if features is not None:
        return list(features)
    if schema is not None and hints:
        raise SchemaError("Pass either a schema or schema hints, not both.")
    if schema is None:
        schema = infer_schema(frame, **hints)
    by_name = {str(c): c for c in frame.columns}
    names = [by_name.get(name, name) for name in schema.features]
    if not names:
        roles = {c.name: str(c.role) for c in schema.columns}
        raise SchemaError(f"The reference sample of {owner} has no feature columns (roles: "
                          f"{roles}); name them with features= or fix the roles with a schema.")
    return names


def _is_boolean(series: pd.Series) -> bool:
    """bool dtypes, and object columns of booleans with gaps (as Arrow and polars give them)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    return pd.api.types.is_object_dtype(series.dtype) and (
        pd.api.types.infer_dtype(series, skipna=True) == "boolean"
    )


def _bool_text(series: pd.Series) -> pd.Series:
    """Booleans written True/TRUE/1/1.0 or False/false/0/0.0 meet the reference's categories."""
    text = _as_text(series)
    low = text.str.lower()
    named = text.mask(low.isin(_FALSE), "False")
    return named.mask(low.isin(_TRUE), "True")


def _numbers(series: pd.Series) -> tuple[np.ndarray, int]:
    """Floats of a numerical column and how many values were not numbers (now NaN).

    A column that arrives as text or mixed objects is parsed as the profiles parse it, so a
    stray string is one invalid value (reported by data-quality checks), not a failed batch.
    """
    if _kind(series) == "num":
        return series.to_numpy(dtype=float, na_value=np.nan), 0
    parsed = numeric_values(to_table(series.to_frame(name="value"), allow_empty=True).column(0))
    return parsed.raw, parsed.invalid


def _kind(series: pd.Series) -> str | None:
    """'num', 'cat' or None (unsupported); bools are categories so NaN-bearing ones agree."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "cat"
    if pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype):
        return "cat"
    return "cat" if pd.api.types.is_string_dtype(dtype) else None


def _as_text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), _MISSING).astype(str)


class Encoder:
    """Reference-learned encoding so both samples land in the same standardised space.

    Numerical columns: median-imputed, a missing indicator, standardised. Categorical columns
    (booleans included): one-hot on the ``max_categories`` most frequent reference categories
    plus one "other" column, left 0/1 so a rare category cannot dominate. ``groups_`` maps every
    encoded column to its original column, so importances and errors can be summed back per
    feature.
    """

    def __init__(self, features: Sequence[Any], max_categories: int, owner: str) -> None:
        self.features = list(features)
        self.max_categories = max_categories
        self.owner = owner

    def fit(self, frame: pd.DataFrame) -> Encoder:
        self._require(frame, self.features, "reference")
        self.features_ = [str(c) for c in self.features]
        self.columns_ = list(self.features)
        self.kinds_: list[str] = []
        self.stats_: list[Any] = []
        groups: list[int] = []
        for g, col in enumerate(self.columns_):
            kind = _kind(frame[col])
            if kind is None:
                raise SchemaError(
                    f"Column {str(col)!r} of the reference has dtype {frame[col].dtype}, which "
                    f"{self.owner} cannot encode; pass numerical or categorical columns only "
                    "(choose them with features=).",
                    column=str(col),
                )
            if kind == "num":
                x = frame[col].to_numpy(dtype=float, na_value=np.nan)
                x = x[np.isfinite(x)]
                if x.size == 0:
                    raise DataError(
                        f"Column {str(col)!r} of the reference has no finite values, so "
                        f"{self.owner} cannot learn its median and scale.",
                        column=str(col),
                    )
                scale = float(x.std())
                self.stats_.append((float(np.median(x)), float(x.mean()), scale or 1.0))
                groups += [g, g]
            else:
                kind = "bool" if _is_boolean(frame[col]) else "cat"
                text = _bool_text(frame[col]) if kind == "bool" else _as_text(frame[col])
                counts = text.value_counts().sort_index()
                counts = counts.sort_values(ascending=False, kind="stable")
                top = list(counts.index[: self.max_categories])
                self.stats_.append(top)
                groups += [g] * (len(top) + 1)
            self.kinds_.append(kind)
        self.groups_ = np.asarray(groups, dtype=np.intp)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The learned encoding as JSON-safe data (column names as text)."""
        return {"features": self.features_, "max_categories": self.max_categories,
                "owner": self.owner, "kinds": self.kinds_,
                "stats": [list(s) for s in self.stats_], "groups": self.groups_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Encoder:
        """Inverse of :meth:`to_dict`; nothing is refitted."""
        enc = cls(d["features"], int(d["max_categories"]), str(d["owner"]))
        enc.features_, enc.columns_ = list(d["features"]), list(d["features"])
        enc.kinds_ = list(d["kinds"])
        enc.stats_ = [tuple(float(v) for v in st) if kind == "num" else [str(v) for v in st]
                      for kind, st in zip(enc.kinds_, d["stats"], strict=True)]
        enc.groups_ = np.asarray(d["groups"], dtype=np.intp)
        return enc

    def _require(self, frame: pd.DataFrame, names: Sequence[Any], role: str) -> None:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"Column {str(missing[0])!r} is missing from the {role} sample of {self.owner} "
                f"(missing: {[str(c) for c in missing]}; the {role} has "
                f"{[str(c) for c in frame.columns][:20]}).",
                column=str(missing[0]),
            )

    def _check_kind(self, series: pd.Series, col: Any, kind: str, role: str) -> None:
        """Numerical and boolean columns take any numbers or text; categories need text."""
        got = _kind(series)
        if got is None or (kind == "cat" and got != "cat"):
            name = {"num": "numerical", "cat": "categorical", "bool": "boolean"}[kind]
            raise SchemaError(
                f"Column {str(col)!r} is {name} in the reference but has dtype {series.dtype} "
                f"in the {role} sample of {self.owner}.",
                column=str(col),
            )

    def count_invalid(self, frame: pd.DataFrame) -> int:
        """Values of numerical columns that are not numbers, without encoding anything."""
        self._require(frame, self.columns_, "current")
        total = 0
        for col, kind in zip(self.columns_, self.kinds_, strict=True):
            if kind == "num" and _kind(frame[col]) != "num":
                self._check_kind(frame[col], col, kind, "current")
                total += _numbers(frame[col])[1]
        return total

    def transform(self, frame: pd.DataFrame, role: str) -> tuple[np.ndarray, int]:
        """Encoded rows and the number of unparsable numerical values encoded as missing."""
        self._require(frame, self.columns_, role)
        blocks = []
        n_invalid = 0
        for col, kind, stats in zip(self.columns_, self.kinds_, self.stats_, strict=True):
            series = frame[col]
            self._check_kind(series, col, kind, role)
            if kind == "num":
                median, mean, scale = stats
                x, invalid = _numbers(series)
                n_invalid += invalid
                miss = ~np.isfinite(x)
                blocks += [(np.where(miss, median, x) - mean) / scale, miss.astype(float)]
            else:
                text = _bool_text(series) if kind == "bool" else _as_text(series)
                codes = pd.Index(stats, dtype=object).get_indexer(text)
                slots = np.r_[np.arange(len(stats)), -1]  # top categories, then "other"
                blocks.append((codes[:, None] == slots[None, :]).astype(float))
        return np.column_stack(blocks), n_invalid
