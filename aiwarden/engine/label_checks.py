"""Label sanity of a training set: leakage and a shifted class balance.

Why: a candidate trained on a column that *is* the label scores perfectly on its holdout and
fails on the first real request; a training window whose class balance moved far from what
the champion learned on (a labelling pipeline that stopped sending one class) trains a model
for a world that does not exist. Both are cheap to see before training and costly after.

* **Leakage:** a feature equal to the label on (nearly) every row, or one that separates the
  classes almost perfectly: ROC AUC >= ``max_auc`` (or <= 1 - ``max_auc``) for a numerical
  feature against a binary label, class purity >= ``max_auc`` for a categorical feature with
  few enough values not to be a row id.
* **Class balance:** the chi-square goodness-of-fit test of the training labels against the
  reference's label distribution, flagged only when significant *and* the total variation
  distance is at least ``min_shift`` (a huge window makes any difference significant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from aiwarden.engine._frame import to_table
from aiwarden.errors import SchemaError, check_param

__all__ = ["LabelCheck", "check_labels"]


@dataclass(frozen=True)
class LabelCheck:
    """Findings of ``check_labels``; ``ok`` when neither leakage nor a balance shift."""

    leaking: tuple[dict[str, Any], ...]
    balance: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.leaking and not self.balance.get("shifted", False)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "leaking": list(self.leaking), "balance": dict(self.balance)}


def check_labels(data: Any, target: str, *, features: Sequence[str] | None = None,
                 reference_counts: Mapping[str, int] | None = None, max_auc: float = 0.995,
                 alpha: float = 0.001, min_shift: float = 0.1) -> LabelCheck:
    """Leaking features and the class-balance shift of ``data[target]``."""
    owner = "check_labels"
    check_param(0.5 < max_auc <= 1, "max_auc", owner, "a float in (0.5, 1]", max_auc)
    check_param(0 < alpha < 1, "alpha", owner, "a float in (0, 1)", alpha)
    check_param(0 <= min_shift <= 1, "min_shift", owner, "a float in [0, 1]", min_shift)
    table = to_table(data)
    if target not in table.column_names:
        raise SchemaError(f"The target column {target!r} is not in the training data.", target)
    frame = table.to_pandas()
    keep = frame[target].notna()
    frame = frame[keep]
    codes, uniques = pd.factorize(frame[target], sort=True)  # hashing, not sorting strings
    classes = np.array([str(u) for u in uniques])
    names = [c for c in (features or frame.columns) if c != target and c in frame.columns]
    leaking = tuple(x for c in names
                    if (x := _leak(frame[c], frame[target], codes, classes, max_auc)) is not None)
    balance = (_balance(codes, classes, reference_counts, alpha, min_shift)
               if reference_counts else {})
    return LabelCheck(leaking, balance)


def _leak(feature: pd.Series, target: pd.Series, y_codes: np.ndarray, classes: np.ndarray,
          max_auc: float) -> dict[str, Any] | None:
    present = feature.notna().to_numpy()
    if present.sum() < 20:
        return None
    x, y_codes = feature[present], y_codes[present]
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if numeric and pd.api.types.is_numeric_dtype(target):
        same = np.mean(x.to_numpy(dtype=float) == target[present].to_numpy(dtype=float))
    else:
        same = np.mean(x.astype(str).to_numpy() == classes[y_codes])
    if same >= max_auc:
        return {"feature": feature.name, "how": "equals the label", "share": round(same, 4)}
    if numeric:
        if len(classes) != 2:
            return None
        auc = _auc(x.to_numpy(dtype=float), y_codes == 1)
        if max(auc, 1 - auc) >= max_auc:
            return {"feature": feature.name, "how": "separates the classes",
                    "roc_auc": round(auc, 4)}
        return None
    codes, uniques = pd.factorize(x)
    if len(uniques) > 0.5 * len(codes):  # a row id is pure by construction, not a leak
        return None
    joint = np.bincount(codes * len(classes) + y_codes,
                        minlength=len(uniques) * len(classes)).reshape(len(uniques), -1)
    purity = joint.max(axis=1).sum() / joint.sum()
    majority = np.bincount(y_codes).max() / len(y_codes)
    if purity >= max_auc and purity > majority:
        return {"feature": feature.name, "how": "determines the label", "purity": round(
            float(purity), 4)}
    return None


def _auc(values: np.ndarray, positive: np.ndarray) -> float:
    ranks = stats.rankdata(values)
    m = int(positive.sum())
    k = len(values) - m
    if not m or not k:
        return 0.5
    return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * k))


def _balance(y_codes: np.ndarray, y_classes: np.ndarray, reference_counts: Mapping[str, int],
             alpha: float, min_shift: float) -> dict[str, Any]:
    seen = dict(zip(y_classes.tolist(), np.bincount(y_codes, minlength=len(y_classes)).tolist(),
                    strict=True))
    classes = sorted(set(reference_counts) | set(seen))
    ref = np.array([reference_counts.get(c, 0) for c in classes], dtype=float)
    cur = np.array([seen.get(c, 0) for c in classes], dtype=float)
    p_ref = (ref + 0.5) / (ref + 0.5).sum()  # a class absent from the reference: not p = 0
    shares = cur / max(cur.sum(), 1)
    tv = float(0.5 * np.abs(shares - ref / max(ref.sum(), 1)).sum())
    p = float(stats.chisquare(cur, p_ref * cur.sum()).pvalue) if cur.sum() else 1.0
    return {"shifted": bool(p < alpha and tv >= min_shift), "p_value": p,
            "total_variation": round(tv, 4),
            "training": {c: int(v) for c, v in zip(classes, cur, strict=True)},
            "reference": {c: int(v) for c, v in zip(classes, ref, strict=True)}}
