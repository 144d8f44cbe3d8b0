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
from aiwarden.explain.results import (
    Explanation,
    FeatureContribution,
    RowExplanations,
    _num,
    jsonable,
)

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
    which cost a fifth of path-dependent Tree SHAP of a small forest (bench/explain.py), so
    a caller that keeps only ``values`` or a few rows does not pay for the rest, and
    :meth:`dicts` (what ``to_dict`` sends) is built from the arrays without them. The first
    read turns the arrays into lists in one pass each (sorted order, sorted values, cells),
    not a numpy lookup per cell. Compares, iterates and indexes like the tuple it stands for.
    """

    def __init__(self, att: Attributions, names: list[str], frame: pd.DataFrame,
                 residual: np.ndarray, classes: list[Any]) -> None:
        self._att, self._names, self._frame, self._classes = att, names, frame, classes
        self.residuals = residual
        self._built: list[Explanation | None] = [None] * len(frame)
        self._lists: _Lists | None = None

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

    def _prepared(self) -> _Lists:
        if self._lists is None:
            self._lists = _Lists(self._att, self._names, self._frame, self.residuals,
                                 self._classes)
        return self._lists

    def _build(self, i: int) -> Explanation:
        p, names = self._prepared(), self._names
        order, cells = p.order[i], p.cells[i]
        rules = p.rules[i] if p.rules else [""] * len(order)
        contribs = tuple(map(FeatureContribution, [names[j] for j in order],
                             [cells[j] for j in order], p.values[i], rules))
        fit = self._att.lime_fits[i] if self._att.lime_fits else None
        return Explanation(i, p.method, p.space, p.explained[i], p.base[i], p.output[i],
                           p.residual[i], contribs, *((fit[0], tuple(fit[1])) if fit else ()))

    def dicts(self) -> list[dict[str, Any]]:
        """``[e.to_dict() for e in self]``, built from the arrays without the objects."""
        p, names, att = self._prepared(), self._names, self._att
        cells = [[jsonable(v) for v in row] for row in p.cells] if p.odd_cells else p.cells
        values = p.values if p.finite else [[_num(v) for v in row] for row in p.values]
        base, output, residual = (_json_floats(a) for a in (att.base, att.output,
                                                              self.residuals))
        explained = [jsonable(c) for c in p.explained]
        out = []
        for i, order in enumerate(p.order):
            row_cells, rules = cells[i], p.rules[i] if p.rules else None
            contribs = [{"feature": names[j], "value": row_cells[j], "contribution": v}
                        for j, v in zip(order, values[i], strict=True)]
            if rules:
                for c, rule in zip(contribs, rules, strict=True):
                    if rule:
                        c["rule"] = rule
            out.append({"row": i, "method": p.method, "output_space": p.space,
                        "explained_class": explained[i], "base_value": base[i],
                        "output": output[i], "residual": residual[i],
                        "contributions": contribs,
                        **({"samples": att.lime_fits[i][0],
                            "ties": [dict(t) for t in att.lime_fits[i][1]]}
                           if att.lime_fits else {})})
        return out


class _Lists:
    """One call's arrays as Python lists, rows sorted by |contribution|: what building the
    objects or their JSON reads per row, converted in one pass per array."""

    def __init__(self, att: Attributions, names: list[str], frame: pd.DataFrame,
                 residual: np.ndarray, classes: list[Any]) -> None:
        order = np.argsort(-np.abs(att.values), axis=1, kind="stable")
        self.method, self.space = att.method, att.space
        self.order: list[list[int]] = order.tolist()
        self.values: list[list[float]] = np.take_along_axis(att.values, order, 1).tolist()
        self.finite = bool(np.isfinite(att.values).all())
        self.rules = ([[r[j] for j in o] for r, o in zip(att.details, self.order, strict=True)]
                      if att.details else None)
        columns = [_cells(frame[c]) for c in names]
        self.odd_cells = not all(plain for _, plain in columns)  # not JSON as they stand
        self.cells = list(zip(*(c for c, _ in columns), strict=True))
        self.base, self.output = att.base.tolist(), att.output.tolist()
        self.residual = residual.tolist()
        k = att.class_index
        self.explained: list[Any] = ([None] * len(frame) if k is None
                                     else [classes[j] for j in k.tolist()])


def _cells(column: pd.Series) -> tuple[list[Any], bool]:
    """A column's values as the explanation reports them (Python numbers for a numpy
    column, numpy scalars for pandas' own numeric dtypes, the objects themselves
    otherwise), and whether they are JSON as they stand (``jsonable`` would give each back
    unchanged: finite plain numbers)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        arr = column.to_numpy()
        return arr.tolist(), dtype.kind != "f" or bool(np.isfinite(arr).all())
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return list(column.to_numpy()), False
    return column.tolist(), False


def _json_floats(a: np.ndarray) -> list[float | None]:
    """``_num`` of each element, in one pass when all are finite."""
    return a.tolist() if np.isfinite(a).all() else [_num(v) for v in a.tolist()]


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
                           att.values, att.precision)
