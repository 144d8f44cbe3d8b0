"""What both multivariate detectors share: parameter checks, input conversion, the encoding.

Why here: :class:`~aiwarden.engine.multivariate.DomainClassifierDrift` and
:class:`~aiwarden.engine.multivariate.PCAReconstructionDrift` must read a sample the same way
and land reference and current rows in one standardised space, learned on the reference.

Inputs are converted to pandas here rather than through :func:`aiwarden.engine._frame.to_table`:
its Arrow round trip would change results. A pandas object column holding only numbers would
turn numerical (it is categorical here), complex columns categorical, ``True`` in a mixed
column would become the category ``"true"``, and a polars ``Date`` column would be one-hot
encoded instead of rejected (polars converts dates to datetime64, Arrow to objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aiwarden.errors import DataError, SchemaError, check_param

__all__ = ["Encoder", "check_features", "check_range", "is_int", "plain", "to_frame"]

_MISSING = "<missing>"


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
    else:
        raise DataError(
            f"The {name} sample of {owner} must be a pandas DataFrame, polars DataFrame or "
            f"pyarrow Table. Got {type(data).__name__} instead."
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(
            f"The {name} sample of {owner} is empty ({frame.shape[0]} rows, "
            f"{frame.shape[1]} columns); it needs at least one row and one column."
        )
    return frame


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

    Numerical columns: median-imputed, a missing indicator, standardised. Categorical columns:
    one-hot on the ``max_categories`` most frequent reference categories plus one "other"
    column, left 0/1 so a rare category cannot dominate. ``groups_`` maps every encoded column
    to its original column, so importances and errors can be summed back per feature.
    """

    def __init__(self, features: Sequence[str] | None, max_categories: int, owner: str) -> None:
        self.features = None if features is None else list(features)
        self.max_categories = max_categories
        self.owner = owner

    def fit(self, frame: pd.DataFrame) -> Encoder:
        names = self.features if self.features is not None else list(frame.columns)
        self._require(frame, names, "reference")
        self.features_ = [str(c) for c in names]
        self.columns_ = list(names)
        self.kinds_: list[str] = []
        self.stats_: list[Any] = []
        groups: list[int] = []
        for g, col in enumerate(self.columns_):
            kind = _kind(frame[col])
            if kind is None:
                raise SchemaError(
                    f"Column {str(col)!r} of the reference has dtype {frame[col].dtype}, which "
                    f"{self.owner} cannot encode; pass numerical or categorical columns only.",
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
                counts = _as_text(frame[col]).value_counts().sort_index()
                counts = counts.sort_values(ascending=False, kind="stable")
                top = list(counts.index[: self.max_categories])
                self.stats_.append(top)
                groups += [g] * (len(top) + 1)
            self.kinds_.append(kind)
        self.groups_ = np.asarray(groups, dtype=np.intp)
        return self

    def _require(self, frame: pd.DataFrame, names: Sequence[Any], role: str) -> None:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"Column {str(missing[0])!r} is missing from the {role} sample of {self.owner} "
                f"(missing: {[str(c) for c in missing]}; the {role} has "
                f"{[str(c) for c in frame.columns][:20]}).",
                column=str(missing[0]),
            )

    def transform(self, frame: pd.DataFrame, role: str) -> np.ndarray:
        self._require(frame, self.columns_, role)
        blocks = []
        for col, kind, stats in zip(self.columns_, self.kinds_, self.stats_, strict=True):
            if _kind(frame[col]) != kind:
                raise SchemaError(
                    f"Column {str(col)!r} is {'numerical' if kind == 'num' else 'categorical'} "
                    f"in the reference but has dtype {frame[col].dtype} in the {role} sample "
                    f"of {self.owner}.",
                    column=str(col),
                )
            if kind == "num":
                median, mean, scale = stats
                x = frame[col].to_numpy(dtype=float, na_value=np.nan)
                miss = ~np.isfinite(x)
                blocks += [(np.where(miss, median, x) - mean) / scale, miss.astype(float)]
            else:
                codes = pd.Index(stats, dtype=object).get_indexer(_as_text(frame[col]))
                slots = np.r_[np.arange(len(stats)), -1]  # top categories, then "other"
                blocks.append((codes[:, None] == slots[None, :]).astype(float))
        return np.column_stack(blocks)
