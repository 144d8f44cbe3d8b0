"""Per prediction: why did the model answer what it answered for these rows?"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from aiwarden.errors import DataError
from aiwarden.explain._attributions import Attributions, StopCheck, compute
from aiwarden.explain._codec import as_frame, summarise_background
from aiwarden.explain._model import ModelAdapter, adapt, unwrap
from aiwarden.explain.options import ExplainOptions
from aiwarden.explain.results import Explanation, FeatureContribution, RowExplanations

__all__ = ["attributions", "explain_rows"]

MAX_ROWS = 100_000  # one call; windows are sampled first (importance.py)


def _options(options: ExplainOptions | dict[str, Any] | None, overrides: dict[str, Any]
             ) -> ExplainOptions:
    base = options if isinstance(options, ExplainOptions) else ExplainOptions.from_dict(options)
    return base.with_(**overrides) if overrides else base


def attributions(model: Any, rows: Any, reference: Any, opts: ExplainOptions,
                 should_stop: StopCheck = None
                 ) -> tuple[Attributions, ModelAdapter, pd.DataFrame, int]:
    """The raw attribution arrays of ``rows``, the adapter, the rows as the model saw them
    and the background size actually used."""
    _, declared = unwrap(model)  # a bare array gets the model's own column names
    frame = as_frame(rows, "rows", declared)
    ref = as_frame(reference, "reference", list(frame.columns))
    if len(frame) > MAX_ROWS:
        raise DataError(f"At most {MAX_ROWS} rows per call; got {len(frame)}: sample them "
                         "(global_importance does).")
    size = opts.background_size
    if opts.method == "lime":
        size = max(size, opts.lime_background)
    background = summarise_background(ref, size, opts.seed)
    adapter, frame, background = adapt(model, frame, background, opts.task)
    return (compute(adapter, frame, background, opts, should_stop), adapter, frame,
            len(background))


class _Rows(Sequence[Explanation]):
    """The per-row :class:`Explanation` objects of one call, each built when first read.

    The arrays are the answer; 10,000 rows make 100,000 ``FeatureContribution`` objects,
    which cost about a twentieth of path-dependent Tree SHAP itself (bench/explain.py), so a
    caller that keeps only ``values`` or a few rows does not pay for the rest. Compares,
    iterates and indexes like the tuple it stands for.
    """

    def __init__(self, att: Attributions, names: list[str], frame: pd.DataFrame,
                 residual: np.ndarray, classes: list[Any]) -> None:
        self._att, self._names, self._frame, self._classes = att, names, frame, classes
        self.residuals = residual
        self._order: np.ndarray | None = None  # sorted on first read, with the cells
        self._built: list[Explanation | None] = [None] * len(frame)
        self._cells: list[tuple[Any, ...]] | None = None

    def __len__(self) -> int:
        return len(self._built)

    @overload
    def __getitem__(self, i: int) -> Explanation: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Explanation, ...]: ...
    def __getitem__(self, i: int | slice) -> Explanation | tuple[Explanation, ...]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("explanation index out of range")
        e = self._built[i]
        if e is None:
            e = self._built[i] = self._build(i)
        return e

    def __iter__(self) -> Iterator[Explanation]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} explanations>"

    def _build(self, i: int) -> Explanation:
        att, names = self._att, self._names
        if self._cells is None or self._order is None:  # one pass over the columns, not
            # a pandas lookup per cell; one sort of the whole matrix
            self._cells = list(zip(*(_cells(self._frame[c]) for c in names), strict=True))
            self._order = np.argsort(-np.abs(att.values), axis=1, kind="stable")
        cells, values = self._cells[i], att.values[i].tolist()
        rules = att.details[i] if att.details else None
        contribs = tuple(FeatureContribution(names[j], cells[j], values[j],
                                             rules[j] if rules else "")
                         for j in self._order[i].tolist())
        cls = (self._classes[int(att.class_index[i])] if att.class_index is not None
               else None)
        return Explanation(i, att.method, att.space, cls, float(att.base[i]),
                           float(att.output[i]), float(self.residuals[i]), contribs)


def _cells(column: pd.Series) -> list[Any]:
    """A column's values as the explanation reports them: numpy scalars for numbers (as
    ``frame.iat`` gives them), the objects themselves otherwise."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(
            column.dtype, pd.CategoricalDtype):
        return list(column.to_numpy())
    return column.tolist()


def explain_rows(model: Any, rows: Any, reference: Any,
                 options: ExplainOptions | dict[str, Any] | None = None, *,
                 should_stop: StopCheck = None, **overrides: Any) -> RowExplanations:
    """Explain each row of ``rows`` against a background drawn from ``reference``.

    ``model``: anything with ``predict`` (and ``predict_proba`` for a classifier), e.g. what
    the registry loads for a version. ``rows`` and ``reference``: DataFrames (or 2-D arrays,
    Arrow tables, dicts of columns) in the model's input space, raw categorical values
    included. ``options`` or keyword overrides: see :class:`ExplainOptions`.
    ``should_stop`` is asked between chunks of work (a server asks whether its client is
    still there); when it answers True the call raises :class:`~aiwarden.errors.Cancelled`.

    >>> from sklearn.linear_model import LinearRegression
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]})
    >>> m = LinearRegression().fit(X, 2 * X["a"] + X["b"])
    >>> e = explain_rows(m, X.iloc[[3]], X).explanations[0]
    >>> e.method, e.output_space, round(e.base_value, 6), round(e.output, 6)
    ('linear', 'prediction', 3.5, 6.0)
    >>> [(c.feature, round(c.contribution, 6)) for c in e.contributions]
    [('a', 3.0), ('b', -0.5)]
    """
    opts = _options(options, overrides)
    att, adapter, frame, n_bg = attributions(model, rows, reference, opts, should_stop)
    names = list(frame.columns)
    residual = att.output - att.base - att.values.sum(axis=1)
    rows_ = _Rows(att, names, frame, residual, adapter.classes or [])
    return RowExplanations(att.method, att.space, tuple(names), n_bg, opts.seed, rows_,
                           att.values)
