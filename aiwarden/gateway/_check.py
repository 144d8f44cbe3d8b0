"""The served version's schema, checked on a request before the model sees it.

Without it a number sent for a categorical feature reaches scikit-learn, which refuses
it with "ufunc 'isnan' not supported" and no column name. The schema (the one monitoring
uses, docs/schemas.md) says what each feature holds; a value of the wrong kind is refused
naming the column and the reason. The checks cost nothing on the usual path: one row is a
``type()`` look-up per feature, a batch one dtype test per column (a per-value scan runs
only on a column already known to be mixed, to name the first bad row).

Nulls are not refused up front: a model may impute them (a ``SimpleImputer``, a
histogram gradient boosting). When the model raises on a request holding nulls,
the gateway finds which null feature the model refuses (gateway/_arm.py) and says
"required, got null".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aiwarden.engine.schema import ColumnType, Schema
from aiwarden.errors import DataError

__all__ = ["InputCheck", "null_error"]

_NUMBER = (int, float, bool)
# what JSON may send for each column type, and how the reason names it
_ALLOWED: dict[ColumnType, tuple[tuple[type, ...], str]] = {
    ColumnType.NUMERICAL: (_NUMBER, "a number"),
    ColumnType.BOOLEAN: (_NUMBER, "true or false"),
    ColumnType.CATEGORICAL: ((str,), "text"),
    ColumnType.TEXT: ((str,), "text"),
    ColumnType.IDENTIFIER: ((str,), "text"),
}
_NAMES = {bool: "true or false", int: "a number", float: "a number", str: "text",
          list: "a list", dict: "an object"}


def _got(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class InputCheck:
    """Per feature the JSON types it takes; built once per loaded version."""

    columns: tuple[tuple[str, tuple[type, ...], str], ...]  # name, allowed types, said as

    @classmethod
    def of(cls, schema: Schema | None, inputs: Sequence[str] | None) -> InputCheck | None:
        """Checks for the schema's features the model reads (all of them when the model
        does not say); None when there is nothing to check."""
        if schema is None:
            return None
        wanted = None if inputs is None else set(inputs)
        cols = tuple((c.name, *_ALLOWED[c.dtype]) for c in schema.columns
                     if c.name in schema.features and c.dtype in _ALLOWED
                     and (wanted is None or c.name in wanted))
        return cls(cols) if cols else None

    def _refuse(self, name: str, said: str, value: Any, row: int | None) -> DataError:
        where = "" if row is None else f" (row {row})"
        return DataError(f"features.{name}{where}: expected {said}, got {_got(value)} "
                         f"({str(value)[:50]!r}).", name)

    def row(self, features: dict[str, Any]) -> None:
        """One row: a type look-up per feature. Raises DataError naming the column."""
        for name, allowed, said in self.columns:
            v = features.get(name)
            if v is not None and type(v) not in allowed:
                raise self._refuse(name, said, v, None)

    def frame(self, x: pd.DataFrame) -> None:
        """A batch: a dtype test per column; only a mixed column is scanned value by value."""
        for name, allowed, said in self.columns:
            if name not in x.columns:
                continue
            s = x[name]
            if allowed is _NUMBER:
                if s.dtype.kind in "iufb":
                    continue
            elif pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                continue
            for i, v in enumerate(s.tolist()):
                if v is not None and v == v and type(v) not in allowed:  # v == v: not NaN
                    raise self._refuse(name, said, v, i)



def null_error(name: str, row: int | None, exc: BaseException) -> DataError:
    """The reason when the model refused a null in ``name`` (``row`` of a batch)."""
    where = "" if row is None else f" (row {row})"
    return DataError(f"features.{name}{where}: required, got null (the model does not take "
                     f"missing values: {type(exc).__name__}).", name)
