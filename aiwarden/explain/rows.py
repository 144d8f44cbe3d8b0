"""Per prediction: why did the model answer what it answered for these rows?"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError
from aiwarden.explain._attributions import Attributions, compute
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


def attributions(model: Any, rows: Any, reference: Any, opts: ExplainOptions
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
    return compute(adapter, frame, background, opts), adapter, frame, len(background)


def explain_rows(model: Any, rows: Any, reference: Any,
                 options: ExplainOptions | dict[str, Any] | None = None,
                 **overrides: Any) -> RowExplanations:
    """Explain each row of ``rows`` against a background drawn from ``reference``.

    ``model``: anything with ``predict`` (and ``predict_proba`` for a classifier), e.g. what
    the registry loads for a version. ``rows`` and ``reference``: DataFrames (or 2-D arrays,
    Arrow tables, dicts of columns) in the model's input space, raw categorical values
    included. ``options`` or keyword overrides: see :class:`ExplainOptions`.

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
    att, adapter, frame, n_bg = attributions(model, rows, reference, opts)
    names = list(frame.columns)
    residual = att.output - att.base - att.values.sum(axis=1)
    order = np.argsort(-np.abs(att.values), axis=1, kind="stable")
    classes = adapter.classes or []
    out = []
    for i in range(len(frame)):
        contribs = tuple(
            FeatureContribution(names[j], frame.iat[i, j], float(att.values[i, j]),
                                att.details[i][j] if att.details else "")
            for j in order[i])
        cls = classes[int(att.class_index[i])] if att.class_index is not None else None
        out.append(Explanation(i, att.method, att.space, cls, float(att.base[i]),
                               float(att.output[i]), float(residual[i]), contribs))
    return RowExplanations(att.method, att.space, tuple(names), n_bg, opts.seed, tuple(out),
                           att.values)
