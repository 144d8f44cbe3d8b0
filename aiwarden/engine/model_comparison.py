"""Champion against challenger on the same labelled rows: a paired test per metric.

Why: a candidate that scores 0.912 against the champion's 0.910 on one holdout is not better;
promotion needs the difference and its uncertainty on *the same rows*, where the two models'
errors are correlated and an unpaired test would be far too cautious (or, on a small
holdout, too bold). Each metric gets the test suited to it:

* accuracy: McNemar's exact test on the discordant rows (one right, the other wrong);
* ROC AUC: DeLong's test for two correlated AUCs (Sun and Xu's midrank algorithm,
  O(n log n)), no resampling;
* mean absolute error (regression): the paired t-test on per-row absolute errors;
* any other metric: a paired bootstrap (rows resampled together for both models).

Every result is a ``PairedComparison``: the two values, their difference (challenger minus
champion, oriented so that positive is better), its confidence interval and a two-sided p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from aiwarden.errors import DataError, check_param

__all__ = [
    "PairedComparison",
    "compare_abs_error",
    "compare_accuracy",
    "compare_bootstrap",
    "compare_roc_auc",
]


@dataclass(frozen=True)
class PairedComparison:
    """Challenger minus champion on the same rows; ``better`` > 0 favours the challenger."""

    metric: str
    method: str
    n: int
    champion: float
    challenger: float
    better: float  # challenger - champion for scores, champion - challenger for losses
    lower: float
    upper: float
    p_value: float
    confidence: float

    def significantly_worse(self, alpha: float) -> bool:
        """The challenger is worse at level ``alpha`` (two-sided test, worse side)."""
        return self.better < 0 and self.p_value < alpha

    def significantly_better(self, alpha: float) -> bool:
        return self.better > 0 and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; floats to 6 significant digits (a p-value of 2.7e-07 stays one)."""
        return {k: (float(f"{v:.6g}") if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def _arrays(y_true: Any, a: Any, b: Any, what: str) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(x) for x in (y_true, a, b))
    n = arrays[0].shape[0]
    for name, x in zip(("y_true", f"champion {what}", f"challenger {what}"), arrays,
                       strict=True):
        if x.ndim != 1 or x.shape[0] != n:
            raise DataError(f"'{name}' must be one value per row ({n} rows); got shape "
                            f"{x.shape}.")
    if n < 2:
        raise DataError(f"A paired comparison needs at least 2 labelled rows; got {n}.")
    return arrays


def _z_interval(diff: float, se: float, confidence: float) -> tuple[float, float, float]:
    """(lower, upper, two-sided p) of a normal statistic; p is 1 when there is no variance."""
    if not se > 0:
        return diff, diff, 1.0 if diff == 0 else 0.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = float(2 * stats.norm.sf(abs(diff) / se))
    return diff - z * se, diff + z * se, p


def _check_confidence(confidence: float) -> None:
    check_param(isinstance(confidence, float) and 0 < confidence < 1, "confidence",
                "a paired comparison", "a float in (0, 1)", confidence)


def compare_accuracy(y_true: Any, champion: Any, challenger: Any, *,
                     confidence: float = 0.95) -> PairedComparison:
    """McNemar's exact test: only rows where the models disagree on being right count."""
    _check_confidence(confidence)
    y, a, b = _arrays(y_true, champion, challenger, "predictions")
    right_a, right_b = a == y, b == y
    n = y.shape[0]
    only_b = int(np.count_nonzero(right_b & ~right_a))  # challenger fixes a champion error
    only_a = int(np.count_nonzero(right_a & ~right_b))
    diff = (only_b - only_a) / n
    discordant = only_a + only_b
    p = float(stats.binomtest(only_b, discordant, 0.5).pvalue) if discordant else 1.0
    # the paired (Wald) interval of a difference of correlated proportions
    se = np.sqrt(max(discordant / n - diff ** 2, 0.0) / n)
    lower, upper, _ = _z_interval(diff, float(se), confidence)
    return PairedComparison("accuracy", "mcnemar-exact", n, float(right_a.mean()),
                            float(right_b.mean()), diff, lower, upper, p, confidence)


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def _delong_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and its structural components V10 (per positive) and V01 (per negative)."""
    m, k = pos.shape[0], neg.shape[0]
    both = _midranks(np.concatenate([pos, neg]))
    r_pos, r_neg = _midranks(pos), _midranks(neg)
    auc = (both[:m].sum() - m * (m + 1) / 2) / (m * k)
    v10 = (both[:m] - r_pos) / k
    v01 = 1.0 - (both[m:] - r_neg) / m
    return float(auc), v10, v01


def compare_roc_auc(y_true: Any, champion: Any, challenger: Any, *, pos_label: Any = 1,
                    confidence: float = 0.95) -> PairedComparison:
    """DeLong's test for two correlated ROC AUCs on the same rows."""
    _check_confidence(confidence)
    y, a, b = _arrays(y_true, champion, challenger, "scores")
    is_pos = y == pos_label
    m, k = int(is_pos.sum()), int((~is_pos).sum())
    if m < 2 or k < 2:
        raise DataError(f"ROC AUC needs at least 2 rows of each class; got {m} with label "
                        f"{pos_label!r} and {k} without.")
    a, b = a.astype(float), b.astype(float)
    auc_a, v10_a, v01_a = _delong_components(a[is_pos], a[~is_pos])
    auc_b, v10_b, v01_b = _delong_components(b[is_pos], b[~is_pos])
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / m + s01 / k
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = auc_b - auc_a
    lower, upper, p = _z_interval(diff, float(np.sqrt(max(var, 0.0))), confidence)
    return PairedComparison("roc_auc", "delong", m + k, auc_a, auc_b, diff, lower, upper, p,
                            confidence)


def compare_abs_error(y_true: Any, champion: Any, challenger: Any, *,
                      confidence: float = 0.95) -> PairedComparison:
    """Mean absolute error: the paired t-test on the per-row absolute errors."""
    _check_confidence(confidence)
    y, a, b = (x.astype(float) for x in _arrays(y_true, champion, challenger, "predictions"))
    err_a, err_b = np.abs(y - a), np.abs(y - b)
    d = err_a - err_b  # positive: the challenger errs less
    n = d.shape[0]
    diff = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0:
        p, lower, upper = (1.0 if diff == 0 else 0.0), diff, diff
    else:
        p = float(stats.ttest_rel(err_a, err_b).pvalue)
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
        lower, upper = diff - half, diff + half
    return PairedComparison("mae", "paired-t", n, float(err_a.mean()), float(err_b.mean()),
                            diff, float(lower), float(upper), p, confidence)


def compare_bootstrap(y_true: Any, champion: Any, challenger: Any,
                      metric: Callable[[np.ndarray, np.ndarray], float], *, name: str,
                      higher_is_better: bool = True, n_boot: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> PairedComparison:
    """Any metric: rows resampled together for both models; percentile interval, and the
    two-sided p-value as twice the share of resamples on the far side of zero."""
    _check_confidence(confidence)
    check_param(isinstance(n_boot, int) and n_boot >= 100, "n_boot", "compare_bootstrap",
                "an int >= 100", n_boot)
    y, a, b = _arrays(y_true, champion, challenger, "predictions")
    sign = 1.0 if higher_is_better else -1.0
    value_a, value_b = float(metric(y, a)), float(metric(y, b))
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    diffs = np.empty(n_boot)
    for i in range(n_boot):  # resamples, not rows: each call is the metric's own vectorised code
        idx = rng.integers(0, n, n)
        diffs[i] = sign * (metric(y[idx], b[idx]) - metric(y[idx], a[idx]))
    diff = sign * (value_b - value_a)
    lower, upper = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return PairedComparison(name, "paired-bootstrap", n, value_a, value_b, diff, float(lower),
                            float(upper), float(p), confidence)
