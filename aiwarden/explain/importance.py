"""Per window: which features drive the model, with a stated error, and inside a slice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.engine._frame import to_table
from aiwarden.engine._slice_candidates import Condition, condition_mask, describe
from aiwarden.engine._slice_inputs import column
from aiwarden.errors import DataError, check_param
from aiwarden.explain._attributions import StopCheck
from aiwarden.explain._codec import as_frame
from aiwarden.explain.options import ExplainOptions
from aiwarden.explain.results import FeatureImportance, GlobalImportance, SliceImportance
from aiwarden.explain.rows import _options, attributions

__all__ = ["global_importance", "importance_from_values", "slice_importance"]

_OWNER = "global_importance"


def _check(sample_size: int, level: float, n_boot: int) -> None:
    check_param(isinstance(sample_size, int) and 1 <= sample_size <= 100_000, "sample_size",
                _OWNER, "an int in [1, 100000]", sample_size)
    check_param(isinstance(level, float | int) and 0 < level < 1, "level", _OWNER,
                "a float in (0, 1)", level)
    check_param(isinstance(n_boot, int) and 0 <= n_boot <= 100_000, "n_boot", _OWNER,
                "an int in [0, 100000]", n_boot)


def importance_from_values(values: np.ndarray, features: Sequence[str], *, method: str = "",
                           output_space: str = "", n_rows: int | None = None,
                           level: float = 0.95, n_boot: int = 1000, seed: int = 0
                           ) -> GlobalImportance:
    """Mean |attribution| per feature with a percentile bootstrap interval over rows.

    Resampling rows with replacement is a multinomial draw of row counts, so the ``n_boot``
    means are one matrix product (no loop over resamples).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(features) or len(values) == 0:
        raise DataError(f"Expected a non-empty (rows, {len(features)}) attribution matrix; "
                        f"got shape {values.shape}.")
    _check(min(len(values), 100_000), float(level), n_boot)
    a = np.abs(values)
    n = len(a)
    mean = a.mean(axis=0)
    if n_boot and n > 1:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        boots = counts @ a / n
        tail = (1 - level) / 2 * 100
        lower, upper = np.percentile(boots, [tail, 100 - tail], axis=0)
    else:
        lower = upper = mean
    order = sorted(range(len(features)), key=lambda j: (-mean[j], str(features[j])))
    feats = tuple(FeatureImportance(str(features[j]), float(mean[j]), float(lower[j]),
                                    float(upper[j]), r + 1) for r, j in enumerate(order))
    return GlobalImportance(method, output_space, n if n_rows is None else n_rows, n,
                            float(level), n_boot, seed, feats, tuple(map(str, features)),
                            values)


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    if len(frame) <= size:
        return frame
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), size, replace=False))
    return frame.iloc[idx].reset_index(drop=True)


def global_importance(model: Any, window: Any, reference: Any,
                      options: ExplainOptions | dict[str, Any] | None = None, *,
                      sample_size: int = 500, level: float = 0.95, n_boot: int = 1000,
                      should_stop: StopCheck = None, **overrides: Any) -> GlobalImportance:
    """Mean |SHAP| per feature over a seeded sample of ``sample_size`` window rows.

    The interval is a percentile bootstrap at ``level`` over the sampled rows: the error of
    looking at a sample rather than the whole window. Pass the reference as ``window`` to get
    the reference's own importance (the baseline of :func:`attribution_drift`).
    ``should_stop``: as in :func:`explain_rows`.
    """
    opts = _options(options, overrides)
    _check(sample_size, float(level), n_boot)
    frame = as_frame(window, "window")
    rows = _sample(frame, sample_size, opts.seed)
    att, _, seen, _ = attributions(model, rows, reference, opts, should_stop)
    return importance_from_values(att.values, list(seen.columns), method=att.method,
                                  output_space=att.space, n_rows=len(frame), level=level,
                                  n_boot=n_boot, seed=opts.seed)


def _slice_mask(frame: pd.DataFrame, where: Any) -> tuple[np.ndarray, str]:
    """A boolean mask from conditions (``[("amount", "<", 10)]``), a callable or a mask."""
    if callable(where):
        mask = np.asarray(where(frame), dtype=bool)
        text = getattr(where, "__name__", "custom predicate")
    elif isinstance(where, np.ndarray | pd.Series) and np.asarray(where).dtype == bool:
        mask, text = np.asarray(where), "given rows"
    else:
        conds = [Condition(*c) for c in where]
        if not conds:
            raise DataError("A slice needs at least one condition.")
        table = to_table(frame)
        mask = np.ones(len(frame), dtype=bool)
        for c in conds:
            if c.op not in ("<", ">=", "==", "in", "is_missing"):
                raise DataError(f"Slice condition on {c.feature!r}: op must be one of '<', "
                                f"'>=', '==', 'in', 'is_missing'; got {c.op!r}.", c.feature)
            mask &= condition_mask(column(table, c.feature, "slice_importance"), c)
        text = describe(tuple(conds))
    if mask.shape != (len(frame),):
        raise DataError(f"The slice mask has shape {mask.shape}; the window has {len(frame)} "
                        "rows.")
    return mask, text


def slice_importance(model: Any, window: Any, reference: Any, where: Any,
                     options: ExplainOptions | dict[str, Any] | None = None, *,
                     sample_size: int = 500, level: float = 0.95, n_boot: int = 1000,
                     should_stop: StopCheck = None, **overrides: Any) -> SliceImportance:
    """Importance inside the slice ``where`` against the rest of the window.

    Each side gets its own seeded sample of up to ``sample_size`` rows (a 2 % slice still
    gets enough rows), explained in one call with the same background.
    """
    opts = _options(options, overrides)
    _check(sample_size, float(level), n_boot)
    frame = as_frame(window, "window")
    mask, text = _slice_mask(frame, where)
    if mask.all() or not mask.any():
        raise DataError(f"The slice {text!r} holds {int(mask.sum())} of {len(frame)} rows: "
                        "both it and the rest need rows.")
    inside = _sample(frame[mask].reset_index(drop=True), sample_size, opts.seed)
    rest = _sample(frame[~mask].reset_index(drop=True), sample_size, opts.seed + 1)
    both = pd.concat([inside, rest], ignore_index=True)
    att, _, seen, _ = attributions(model, both, reference, opts, should_stop)
    names = list(seen.columns)
    k = len(inside)
    kw = {"method": att.method, "output_space": att.space, "level": level,
          "n_boot": n_boot, "seed": opts.seed}
    gin = importance_from_values(att.values[:k], names, n_rows=int(mask.sum()), **kw)
    grest = importance_from_values(att.values[k:], names, n_rows=int((~mask).sum()), **kw)
    a, b = gin.as_mapping(), grest.as_mapping()
    diff = sorted(((f, a[f] - b[f]) for f in names), key=lambda t: (-abs(t[1]), t[0]))
    return SliceImportance(text, gin, grest, tuple(diff))
