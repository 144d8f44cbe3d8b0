"""The gates a training run and its candidate pass before the candidate may serve.

Why: TFX's lesson is that a retrained model is only as good as the checks between training
and serving; the seed's is that one corrupted record can break a model for days. Each gate is
a pure function of data and predictions returning a ``GateResult`` with its evidence, so the
same decision is made (and tested) whether a run is local, distributed or replayed by hand.

Gates, in the order a run meets them:

* ``data_gate``: every corrupted row of the training window, named, against the champion's
  reference; the policy blocks the run or drops (quarantines) the rows and goes on;
* ``label_gate``: leaking features and a shifted class balance;
* ``overfit_gate``: the gap between training and holdout metrics;
* ``comparison_gate``: challenger against champion on the same labelled holdout, with the
  paired test suited to the metric, plus an absolute floor;
* ``slice_gate``: no slice where the challenger is significantly worse than the champion;
* ``text_audit_gate`` (text models): no unsafe, PII or secret rows in the training data;
* ``image_audit_gate`` (image sets, ``data.images``): no more corrupt, constant, duplicate or
  leaked images (and, when asked, label issues and outliers) than the pipeline allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from aiwarden.engine._frame import to_table
from aiwarden.engine.label_checks import check_labels
from aiwarden.engine.model_comparison import (
    PairedComparison,
    compare_abs_error,
    compare_accuracy,
    compare_roc_auc,
)
from aiwarden.engine.row_validation import validate_rows
from aiwarden.engine.slice_comparison import find_slice_regressions
from aiwarden.errors import check_param

__all__ = ["IMAGE_KINDS", "GateResult", "comparison_gate", "data_gate", "image_audit_gate",
           "label_gate", "overfit_gate", "slice_gate", "text_audit_gate"]

#: metrics where a lower value is better (gaps and floors flip sign)
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse", "log_loss", "error_rate"})


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: ``passed``, a sentence saying why, and the evidence behind it."""

    gate: str
    passed: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "reason": self.reason,
                "evidence": self.evidence}


def data_gate(reference: Any, data: Any, *, policy: Literal["block", "quarantine"] = "block",
              max_bad_share: float = 0.01, listed: int = 50,
              ids: Sequence[str] = ("prediction_id", "timestamp")) -> tuple[GateResult, Any]:
    """(verdict, the rows to train on). ``quarantine`` drops the bad rows and passes unless
    more than ``max_bad_share`` of the window is bad (then the source is broken, not a row).
    A bad row is named by its ``ids`` columns too, when the data has them (a position in an
    export nobody keeps finds nothing)."""
    check_param(policy in ("block", "quarantine"), "policy", "data_gate",
                "'block' or 'quarantine'", policy)
    table = to_table(data)
    found = validate_rows(reference, table)
    evidence = found.to_dict(limit=listed)
    if found.missing_columns:
        return GateResult("data", False, "the training data lacks the monitored column(s) "
                          + ", ".join(repr(c) for c in found.missing_columns), evidence), table
    if found.ok:
        return GateResult("data", True, f"all {found.n_rows} training rows pass the "
                          "reference's checks", evidence), table
    first = found.problems[0]
    id_cols = [c for c in ids if c in table.column_names]
    if id_cols:
        rows = [p["row"] for p in evidence["problems"]]
        values = {c: table.column(c).take(pa.array(rows, pa.int64())).to_pylist()
                  for c in id_cols}
        for i, p in enumerate(evidence["problems"]):
            p.update({c: values[c][i] for c in id_cols})
    who = ", ".join(f"{c} {evidence['problems'][0][c]}" for c in id_cols)
    named = (f"{found.n_bad} corrupted row(s) of {found.n_rows}, first row {first.row}"
             f"{f' ({who})' if who else ''} column {first.column!r}: {first.value} is "
             f"{first.reason}")
    share = found.n_bad / max(found.n_rows, 1)
    if policy == "block":
        return GateResult("data", False, f"blocked: {named}", evidence), table
    kept = table.filter(~found.bad)
    evidence["quarantined_rows"] = np.flatnonzero(found.bad)[:listed].tolist()
    if share > max_bad_share:
        return GateResult("data", False, f"blocked: {named}; {share:.1%} of the window is "
                          f"more than the {max_bad_share:.1%} a quarantine may drop",
                          evidence), kept
    return GateResult("data", True, f"quarantined {named}; trained on the other "
                      f"{kept.num_rows} rows", evidence), kept


def label_gate(data: Any, target: str, *, features: Sequence[str] | None = None,
               reference_counts: Mapping[str, int] | None = None,
               **settings: Any) -> GateResult:
    found = check_labels(data, target, features=features, reference_counts=reference_counts,
                         **settings)
    problems = [f"{x['feature']!r} {x['how']}" for x in found.leaking]
    if found.balance.get("shifted"):
        b = found.balance
        shares = "; ".join(
            f"{c}: {b['training'][c] / max(sum(b['training'].values()), 1):.1%} vs "
            f"{b['reference'][c] / max(sum(b['reference'].values()), 1):.1%}"
            for c in b["training"])
        problems.append(f"the class balance moved by {b['total_variation']:.0%} (total "
                        f"variation) from the reference ({shares} in training vs reference)")
    reason = "labels look sane" if found.ok else "; ".join(problems)
    return GateResult("labels", found.ok, reason, found.to_dict())


def overfit_gate(train: Mapping[str, float], holdout: Mapping[str, float], *, metric: str,
                 max_gap: float) -> GateResult:
    """The training score may beat the holdout's by at most ``max_gap`` (absolute)."""
    if metric not in train or metric not in holdout:
        where = "training" if metric not in train else "holdout"
        return GateResult("overfit", False, f"the run reported no {metric!r} on its {where} "
                          "data, so overfitting cannot be judged", {"metric": metric})
    gap = float(train[metric]) - float(holdout[metric])
    if metric in LOWER_IS_BETTER:
        gap = -gap
    evidence = {"metric": metric, "train": float(train[metric]),
                "holdout": float(holdout[metric]), "gap": round(gap, 6), "max_gap": max_gap}
    if gap > max_gap:
        return GateResult("overfit", False, f"{metric} is {gap:.3g} better on the training "
                          f"data than on the holdout (limit {max_gap:.3g})", evidence)
    return GateResult("overfit", True, f"train/holdout {metric} gap {gap:.3g} within "
                      f"{max_gap:.3g}", evidence)


_PAIRED = {"accuracy": compare_accuracy, "roc_auc": compare_roc_auc, "mae": compare_abs_error}


def comparison_gate(y_true: Any, champion: Any, challenger: Any, *, metric: str,
                    alpha: float = 0.05, min_value: float | None = None,
                    require_better: bool = False) -> GateResult:
    """Refuse a challenger significantly worse than the champion on the same rows (or, with
    ``require_better``, one not significantly better), or below the absolute ``min_value``
    (above it, for a loss)."""
    check_param(metric in _PAIRED, "metric", "comparison_gate", " / ".join(_PAIRED), metric)
    res: PairedComparison = _PAIRED[metric](y_true, champion, challenger,
                                            confidence=1 - alpha)
    evidence = res.to_dict() | {"alpha": alpha, "min_value": min_value}
    said = (f"{metric} {res.challenger:.4g} vs the champion's {res.champion:.4g} "
            f"(p = {res.p_value:.3g}, {res.method})")
    if min_value is not None:
        loss = metric in LOWER_IS_BETTER
        if res.challenger > min_value if loss else res.challenger < min_value:
            limit = f"above the ceiling of {min_value}" if loss else (
                f"below the floor of {min_value}")
            return GateResult("comparison", False, f"{said}: {limit}", evidence)
    if res.significantly_worse(alpha):
        return GateResult("comparison", False, f"{said}: significantly worse", evidence)
    if require_better and not res.significantly_better(alpha):
        return GateResult("comparison", False, f"{said}: not significantly better", evidence)
    return GateResult("comparison", True, said, evidence)


def slice_gate(data: Any, y_true: Any, champion: Any, challenger: Any, *,
               task: Literal["classification", "regression"] = "classification",
               features: Sequence[str] | None = None, alpha: float = 0.05,
               min_drop: float = 0.02) -> GateResult:
    found = find_slice_regressions(data, y_true, champion, challenger, task=task,
                                   features=features, alpha=alpha, min_drop=min_drop)
    evidence = {"slices": [r.to_dict() for r in found], "alpha": alpha, "min_drop": min_drop}
    if not found:
        return GateResult("slices", True, "no slice where the challenger is significantly "
                          "worse than the champion", evidence)
    worst = found[0]
    c = worst.comparison
    return GateResult("slices", False, f"worse than the champion on {worst.description} "
                      f"({worst.support} rows): {c.metric} {c.challenger:.3g} vs "
                      f"{c.champion:.3g}", evidence)


def text_audit_gate(data: Any, columns: Sequence[str], evaluators: Sequence[Any], *,
                    listed: int = 50) -> GateResult:
    """A text model's training data holds no unsafe, PII, secret or injection rows (the
    seed's moral: sanitize your training data). Rows are named 1-based, excerpts redacted."""
    from aiwarden.llm.audit import audit_texts

    table = to_table(data)
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        return GateResult("text_audit", False, f"the training data lacks the text column(s) "
                          f"{absent}", {"columns": list(columns)})
    report = audit_texts({c: table.column(c).to_pylist() for c in columns}, list(evaluators))
    evidence = {"rows": report["rows"], "rows_flagged": report["rows_flagged"],
                "counts": report["counts"], "findings": report["findings"][:listed],
                "evaluators": [e.name for e in evaluators]}
    if not report["findings"]:
        return GateResult("text_audit", True, f"all {report['rows']} training rows are clean "
                          f"({', '.join(evidence['evaluators'])})", evidence)
    first = report["findings"][0]
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items())
    return GateResult("text_audit", False, f"{report['rows_flagged']} of {report['rows']} "
                      f"training rows hold unsafe text, PII or secrets ({counts}); first row "
                      f"{first['row']} column {first['column']!r}: "
                      f"{', '.join(first['categories'])}", evidence)


#: the image audit's reason codes a limit counts, by the limit's name (``max_<kind>``)
IMAGE_KINDS: dict[str, frozenset[str]] = {
    "corrupt": frozenset(("empty", "bad_base64", "not_an_image", "unreadable", "truncated",
                          "too_large_file", "too_many_pixels", "wrong_shape", "missing_file",
                          "non_finite", "garbled")),
    "constant": frozenset(("constant",)),
    "duplicate": frozenset(("exact_duplicate", "near_duplicate")),
    "leakage": frozenset(("leakage",)),
    "label_issues": frozenset(("label_issue",)),
    "outliers": frozenset(("outlier",)),
}

_SAID = {"corrupt": "corrupt", "constant": "constant", "duplicate": "duplicate",
         "leakage": "leaked", "label_issues": "mislabelled", "outliers": "outlier"}


def image_audit_gate(source: str, limits: Mapping[str, int | None], *, listed: int = 50,
                     **options: Any) -> GateResult:
    """An image training set (a folder or a manifest) holds no more problem images of each
    kind than ``limits`` allows (``{"max_corrupt": 0, ...}``; None: not checked). Images are
    named by path with the audit's reason; a missing ``images`` extra is a refusal naming it
    (an image set nobody could check is not a clean one)."""
    from aiwarden.errors import DataError
    from aiwarden.images import MissingExtraError, audit_images

    wanted = {k: limits.get(f"max_{k}") for k in IMAGE_KINDS}
    try:
        report = audit_images(source, label_issues=wanted["label_issues"] is not None,
                              outliers=wanted["outliers"] is not None, **options)
    except MissingExtraError as exc:
        return GateResult("image_audit", False, str(exc), {"source": source})
    except DataError as exc:  # no such folder, a bad manifest, no images
        return GateResult("image_audit", False, f"the image set cannot be audited: {exc}",
                          {"source": source})
    found = {k: [f for f in report.findings if f.reason in codes]
             for k, codes in IMAGE_KINDS.items()}
    counts = {k: len(v) for k, v in found.items()}
    over = [k for k, limit in wanted.items() if limit is not None and counts[k] > limit]
    shown = [f for f in report.findings if any(f.reason in IMAGE_KINDS[k] for k in over)]
    evidence = {"source": report.source, "images": report.images, "classes": report.classes,
                "counts": counts, "limits": wanted, "by_reason": report.by_reason(),
                "label_check": report.label_check, "notes": list(report.notes),
                "findings": [{"path": f.name, "reason": f.reason, "message": f.message,
                              **({"related": f.related_name} if f.related_name else {})}
                             for f in (shown or list(report.findings))[:listed]]}
    if not over:
        checked = ", ".join(f"{k} {counts[k]}/{wanted[k]}" for k in IMAGE_KINDS
                            if wanted[k] is not None)
        return GateResult("image_audit", True, f"{report.images} training images within "
                          f"the limits ({checked})", evidence)
    parts = []
    for k in over:
        first = found[k][0]
        parts.append(f"{counts[k]} {_SAID[k]} image(s) (limit {wanted[k]}), first "
                     f"{first.name}: {first.reason}")
    return GateResult("image_audit", False, f"blocked: {'; '.join(parts)}", evidence)
