"""Class labels to integer codes, and score arrays to validated float arrays.

Why here: realised performance (:mod:`performance`) and CBPE (:mod:`cbpe`) must
agree exactly on which rows count and which class a label is. Labels may be
str, int, float or bool; unknown or missing labels get code ``-1`` so the
caller can count them instead of dropping them silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError, check_param

__all__ = ["PROBA_SUM_TOL", "encode_labels", "predict_codes", "valid_score_rows",
           "validate_classes", "validate_scores"]

#: How far a multiclass score row may sum from 1 and still be a probability vector: loose
#: enough for float32 outputs and probabilities rounded to 3 decimals over ~20 classes,
#: tight enough to reject scores that are not a distribution (one-vs-rest sigmoids, rescaled
#: columns).
PROBA_SUM_TOL = 0.01


def _plain(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar, so labels stay JSON-safe."""
    return value.item() if isinstance(value, np.generic) else value


def validate_classes(classes: Sequence[Any] | np.ndarray, owner: str) -> tuple[Any, ...]:
    """The classes as a tuple of plain Python scalars: at least two, distinct, not missing."""
    values = tuple(_plain(c) for c in (classes.tolist() if isinstance(classes, np.ndarray)
                                       else classes))
    ok = (
        len(values) >= 2
        and all(isinstance(c, str | int | float | bool) for c in values)
        and not any(isinstance(c, float) and np.isnan(c) for c in values)
        and len(pd.Index(values, dtype=object).unique()) == len(values)
    )
    check_param(ok, "classes", owner, "a sequence of at least two distinct str/int/bool labels",
                classes)
    return values


def _is_numeric_label(c: Any) -> bool:
    return isinstance(c, int | float | bool)


def encode_labels(values: Any, classes: tuple[Any, ...], column: str) -> np.ndarray:
    """Code of each label in ``classes`` (``-1`` for unknown or missing), vectorised.

    Numeric labels against numeric classes go through ``np.searchsorted`` on the
    sorted classes; anything else through a pandas hash lookup on object values,
    where ``1 == 1.0 == True`` as in Python.

    Examples
    --------
    >>> encode_labels(["b", "a", None, "z"], ("a", "b"), "y_true").tolist()
    [1, 0, -1, -1]
    >>> encode_labels(np.array([0.0, 1.0, 2.0]), (0, 1), "y_true").tolist()
    [0, 1, -1]
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"Column {column!r} must be one-dimensional. Got shape {arr.shape}.",
                        column)
    if arr.dtype.kind in "biuf" and all(_is_numeric_label(c) for c in classes):
        cls = np.asarray(classes, dtype=np.float64)
        order = np.argsort(cls, kind="stable")
        sorted_cls = cls[order]
        x = arr.astype(np.float64, copy=False)
        pos = np.clip(np.searchsorted(sorted_cls, x), 0, len(cls) - 1)
        hit = sorted_cls[pos] == x
        return np.where(hit, order[pos], -1).astype(np.int64)
    index = pd.Index(list(classes), dtype=object)
    codes = index.get_indexer(pd.Index(arr.astype(object, copy=False), dtype=object))
    return np.asarray(codes, dtype=np.int64)


def validate_scores(scores: Any, n_rows: int, n_classes: int, owner: str) -> np.ndarray:
    """Scores as float64 ``(n,)`` for binary or ``(n, C)``; shape errors raise DataError.

    Values outside ``[0, 1]`` or non-finite are left in place for the caller to
    count as invalid rows (see :func:`valid_score_rows`).
    """
    arr = np.asarray(scores, dtype=np.float64)
    if n_classes == 2 and arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1]
    expected = (n_rows,) if n_classes == 2 else (n_rows, n_classes)
    if arr.shape != expected:
        raise DataError(
            f"Column 'scores' of {owner} must have shape {expected} (one probability per row"
            f"{' and class' if n_classes > 2 else ' for the positive class'}). "
            f"Got shape {arr.shape}.",
            "scores",
        )
    return arr


def valid_score_rows(scores: np.ndarray) -> np.ndarray:
    """Rows whose scores are probabilities: finite, in ``[0, 1]``, multiclass rows summing to 1.

    A multiclass row counts as summing to 1 within :data:`PROBA_SUM_TOL`.
    """
    ok = np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0)
    if ok.ndim == 1:
        return ok
    with np.errstate(invalid="ignore"):
        sums_to_one = np.abs(scores.sum(axis=1) - 1.0) <= PROBA_SUM_TOL
    return ok.all(axis=1) & sums_to_one


def predict_codes(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The model's predicted class codes: binary ``score >= threshold``, else the arg-max.

    Rows with unusable scores (see :func:`valid_score_rows`) get some code; callers must
    not use it (such a row has no prediction).
    """
    if scores.ndim == 1:
        return (scores >= threshold).astype(np.int64)
    return np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=1).astype(np.int64)
