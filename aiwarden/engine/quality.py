"""Data-quality findings: what is broken in a batch, with counts and example rows.

Two kinds of checks. *Hard* checks fire on a single bad value because one
corrupted record is already an incident: wrong types, infinities, values far
outside anything the reference has seen, a column that disappeared, a category
in a boolean. *Rate* checks compare with what the reference makes expected
(missing values, values just outside the reference range, unseen categories,
duplicate rows) and fire only when the excess is statistically clear and large
enough to matter, so ordinary noise does not page anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from aiwarden.engine._binning import NumericalBinning
from aiwarden.engine.profile import CategoricalProfile, NumericalProfile, Profile
from aiwarden.engine.schema import ColumnType, Role
from aiwarden.errors import check_param

__all__ = ["Finding", "QualityReport", "QualitySettings", "check_quality"]

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the rate checks; hard checks have none by design."""

    alpha: float = 0.001
    min_rate_increase: float = 0.01
    min_rows_constant: int = 20

    def __post_init__(self) -> None:
        owner = "QualitySettings"
        check_param(0 < self.alpha < 1, "alpha", owner, "a float in (0, 1)", self.alpha)
        check_param(0 <= self.min_rate_increase < 1, "min_rate_increase", owner,
                    "a float in [0, 1)", self.min_rate_increase)
        check_param(isinstance(self.min_rows_constant, int) and self.min_rows_constant >= 2,
                    "min_rows_constant", owner, "an int >= 2", self.min_rows_constant)


@dataclass(frozen=True)
class Finding:
    """One problem: which column, which check, how many rows, and where to look."""

    check: str
    severity: str
    column: str | None
    count: int
    rate: float
    reference_rate: float
    message: str
    examples: tuple[int, ...] = ()
    values: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "column": self.column,
                "count": self.count, "rate": self.rate, "reference_rate": self.reference_rate,
                "message": self.message, "examples": list(self.examples),
                "values": dict(self.values)}


@dataclass(frozen=True)
class QualityReport:
    """All findings for a window, most severe first."""

    findings: tuple[Finding, ...]
    n_rows: int

    @property
    def ok(self) -> bool:
        return not any(f.severity in ("warning", "error") for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    def for_column(self, column: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.column == column)

    def checks(self) -> set[tuple[str | None, str]]:
        """``{(column, check)}`` of every finding: handy in tests and rules."""
        return {(f.column, f.check) for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "ok": self.ok,
                "findings": [f.to_dict() for f in self.findings]}

    def to_pandas(self) -> Any:
        import pandas as pd

        cols = ["check", "severity", "column", "count", "rate", "reference_rate", "message"]
        return pd.DataFrame([f.to_dict() for f in self.findings], columns=[*cols, "examples",
                                                                           "values"])

    def _repr_html_(self) -> str:
        """Jupyter view: one row per finding (values escaped)."""
        from aiwarden.engine._results import report_html

        cols = ["check", "severity", "column", "count", "rate", "message"]
        return report_html(f"Data quality ({self.n_rows:,} rows, "
                           f"{'ok' if self.ok else 'problems found'})", self.to_pandas()[cols])


def _binom_excess(count: int, n: int, p0: float, alpha: float, min_increase: float) -> bool:
    """Is ``count`` of ``n`` clearly and materially above a rate of ``p0``?"""
    if n == 0 or count == 0:
        return False
    if count / n - p0 < min_increase:
        return False
    # bdtrc is binom.sf without scipy.stats' per-call overhead (~40x faster, same value)
    return float(special.bdtrc(count - 1, n, min(max(p0, 1e-12), 1.0))) < alpha


def _poisson_excess(count: int, expected: float, alpha: float) -> bool:
    if count == 0:
        return False
    return float(special.pdtrc(count - 1, max(expected, 1e-12))) < alpha  # poisson.sf


def check_quality(reference: Any, current: Profile,
                  settings: QualitySettings | None = None) -> QualityReport:
    """Findings for ``current`` against a fitted :class:`~aiwarden.engine.Reference`."""
    st = settings or QualitySettings()
    found: list[Finding] = []
    ref_profile: Profile = reference.profile_
    for col in reference.schema_.columns:
        cur = current.columns.get(col.name)
        ref = ref_profile.columns[col.name]
        if cur is None:
            continue
        if col.role != Role.TARGET:  # labels arrive later: their absence is normal
            found.extend(_presence(col.name, ref, cur, st))
        if isinstance(cur, NumericalProfile) and not reference.binnings_[col.name].empty:
            found.extend(_numerical(col.name, reference.binnings_[col.name], ref, cur, st))
        elif isinstance(cur, CategoricalProfile):
            found.extend(_categorical(col.name, col.dtype, ref, cur, st))
    for name, n in sorted(current.extra_columns.items()):
        found.append(Finding("extra_column", "warning", name, n, 1.0, 0.0,
                             f"Column {name!r} is not in the schema; its values are ignored."))
    found.extend(_duplicates(reference.duplicate_rate_, current, st))
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    found.sort(key=lambda f: (order[f.severity], f.column or "", f.check))
    return QualityReport(tuple(found), current.n_rows)


def _presence(name: str, ref: Any, cur: Any, st: QualitySettings) -> list[Finding]:
    out = []
    if cur.absent:
        out.append(Finding("missing_column", "error", name, cur.absent, cur.absent / cur.n, 0.0,
                           f"Column {name!r} is missing from the data ({cur.absent} rows)."))
    missing = cur.missing - cur.absent
    present_n = cur.n - cur.absent
    if missing and present_n:
        rate, ref_rate = missing / present_n, ref.missing / max(ref.n, 1)
        ex = tuple(cur.examples.get("missing", ()))
        if ref.missing == 0:
            out.append(Finding("missing_values", "warning", name, missing, rate, 0.0,
                               f"{missing} missing value(s) in {name!r}, which had none in the "
                               "reference.", ex))
        elif _binom_excess(missing, present_n, ref_rate, st.alpha, st.min_rate_increase):
            out.append(Finding("missing_values", "warning", name, missing, rate, ref_rate,
                               f"Missing rate of {name!r} rose to {rate:.1%} from "
                               f"{ref_rate:.1%} in the reference.", ex))
    return out


def _numerical(name: str, binning: NumericalBinning, ref: NumericalProfile,
               cur: NumericalProfile, st: QualitySettings) -> list[Finding]:
    out = []
    n = max(cur.n - cur.absent, 1)
    ref_n = max(ref.n, 1)
    if cur.invalid:
        out.append(Finding("invalid_type", "error", name, cur.invalid, cur.invalid / n,
                           ref.invalid / ref_n,
                           f"{cur.invalid} value(s) in numerical column {name!r} are not numbers.",
                           tuple(cur.examples.get("invalid", ()))))
    if cur.nan:
        sev = "warning" if ref.nan else "error"
        if ref.nan == 0 or _binom_excess(cur.nan, n, ref.nan / ref_n, st.alpha,
                                         st.min_rate_increase):
            out.append(Finding("nan", sev, name, cur.nan, cur.nan / n, ref.nan / ref_n,
                               f"{cur.nan} NaN value(s) in {name!r}.",
                               tuple(cur.examples.get("nan", ()))))
    # A sign flip in a never-negative column is an error even just below the range; far
    # below it, far_out_of_range already says so.
    if cur.negative and ref.negative == 0 and ref.count and cur.counts[0] == 0:
        out.append(Finding("negative_values", "error", name, cur.negative, cur.negative / n, 0.0,
                           f"{cur.negative} negative value(s) in {name!r}, which was never "
                           "negative in the reference.", tuple(cur.examples.get("negative", ()))))
    inf = cur.posinf + cur.neginf
    if inf and (ref.posinf + ref.neginf) == 0:
        ex = tuple((cur.examples.get("posinf", []) + cur.examples.get("neginf", []))[:5])
        out.append(Finding("infinite", "error", name, inf, inf / n, 0.0,
                           f"{inf} infinite value(s) in {name!r}.", ex))
    far = int(cur.counts[0] + cur.counts[-1])
    if far:
        lo, hi = binning.interior[0], binning.interior[-1]
        ex = tuple((cur.examples.get("far_below_range", [])
                    + cur.examples.get("far_above_range", []))[:5])
        out.append(Finding("far_out_of_range", "error", name, far, far / n, 0.0,
                           f"{far} value(s) of {name!r} lie far outside the reference range "
                           f"[{lo:.6g}, {hi:.6g}] (min seen {cur.min:.6g}, max {cur.max:.6g}).",
                           ex))
    near = int(cur.counts[1] + cur.counts[-2])
    valid = cur.count
    expected = valid * 2.0 / (ref.count + 1)
    if near and _poisson_excess(near, expected, st.alpha):
        ex = tuple((cur.examples.get("below_range", []) + cur.examples.get("above_range", []))[:5])
        out.append(Finding("out_of_range", "warning", name, near, near / max(valid, 1),
                           2.0 / (ref.count + 1),
                           f"{near} value(s) of {name!r} lie outside the reference range, "
                           f"{expected:.2g} expected.", ex))
    if (valid >= st.min_rows_constant and cur.min == cur.max and ref.max > ref.min):
        out.append(Finding("constant", "warning", name, valid, 1.0, 0.0,
                           f"Column {name!r} holds the single value {cur.min:.6g} in "
                           f"{valid} rows; it varies in the reference."))
    return out


def _categorical(name: str, dtype: ColumnType, ref: CategoricalProfile,
                 cur: CategoricalProfile, st: QualitySettings) -> list[Finding]:
    out = []
    valid = cur.count
    unseen = cur.unseen
    if unseen:
        # Good–Turing: the reference's singletons estimate how often new values appear.
        # The estimate is itself noisy and new values repeat, so a long-tailed column
        # must also exceed it by ``min_rate_increase`` before it is called a problem.
        singletons = int(np.count_nonzero(ref.counts[:-1] == 1))
        ref_n = max(ref.count, 1)
        ref_rate = (ref.unseen + singletons) / ref_n
        upper = float(stats.gamma.ppf(1 - st.alpha, ref.unseen + singletons + 1)) / ref_n
        hard = dtype == ColumnType.BOOLEAN or ref_rate == 0
        rate = unseen / max(valid, 1)
        if hard or (rate - upper >= st.min_rate_increase
                    and _poisson_excess(unseen, valid * upper, st.alpha)):
            top = ", ".join(repr(k) for k in list(cur.unseen_top)[:5])
            out.append(Finding(
                "unseen_category", "error" if dtype == ColumnType.BOOLEAN else "warning", name,
                unseen, unseen / max(valid, 1), ref_rate,
                f"{unseen} value(s) of {name!r} were never seen in the reference"
                + (f" (e.g. {top})." if top else "."),
                tuple(cur.examples.get("unseen", ())), dict(cur.unseen_top)))
    if valid >= st.min_rows_constant and np.count_nonzero(cur.counts) == 1 and np.count_nonzero(
            ref.counts) > 1:
        out.append(Finding("constant", "warning", name, valid, 1.0, 0.0,
                           f"Column {name!r} holds a single value in {valid} rows; it varies in "
                           "the reference."))
    return out


def _duplicates(ref_rate: float, current: Profile, st: QualitySettings) -> list[Finding]:
    d, n = current.duplicates, current.n_rows
    if _binom_excess(d, n, ref_rate, st.alpha, st.min_rate_increase):
        return [Finding("duplicate_rows", "warning", None, d, d / n, ref_rate,
                        f"{d} duplicate row(s) ({d / n:.1%}; {ref_rate:.1%} in the reference).")]
    return []
