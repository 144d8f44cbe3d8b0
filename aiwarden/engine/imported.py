"""References and profiles built elsewhere (a Spark or Dask job, ``aiwarden profile``), checked
before anything compares against them.

Why: a stored reference decides every later drift verdict, and a batch profile is added to
the windows every alert reads. A file edited by hand, truncated, or counted on other bins
would otherwise give wrong verdicts without any error. So nothing from the file is taken on
trust: the fingerprint is recomputed from the schema and bins, every column's counts must
fit its bins and add up to the rows, the trees of a stored performance model must be trees
(a cycle would loop forever on every ingest), and the result must pass the engine's own
comparison once before it is accepted. Errors name the field (``profile.columns.x.counts``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from aiwarden.engine._binning import CategoricalBinning, NumericalBinning
from aiwarden.engine._profiling import binned_kind
from aiwarden.engine.profile import (
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
    Profile,
)
from aiwarden.engine.reference import Reference
from aiwarden.errors import AiwardenError, DataError

__all__ = ["profile_from_dict_checked", "reference_from_dict_checked"]

MAX_CATEGORIES = 1_000_000  # Reference.fit's own bound on max_categories
MAX_EXAMPLES = 1_000  # example row positions kept per (column, finding)
MAX_UNSEEN_TOP = 1_000  # the engine keeps far fewer unseen values per column
_PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError)


def reference_from_dict_checked(d: Any) -> Reference:
    """A reference from ``Reference.to_dict()`` JSON, refused (``DataError``) unless sound."""
    if not isinstance(d, Mapping):
        raise DataError(f"reference: expected a JSON object (Reference.to_dict()); got "
                        f"{type(d).__name__}.", "reference")
    for key, kind in (("schema", Mapping), ("binnings", Mapping), ("profile", Mapping),
                      ("instability", Mapping), ("settings", Mapping)):
        if not isinstance(d.get(key), kind):
            raise DataError(f"reference.{key}: expected an object; got "
                            f"{_kind(d.get(key))}.", f"reference.{key}")
    names = [c.get("name") if isinstance(c, Mapping) else None
             for c in d["schema"].get("columns") or []]
    extra = sorted(str(k) for k in d["binnings"] if k not in names)
    if extra:
        raise DataError(f"reference.binnings: columns {extra[:5]} are not in the schema.",
                        "reference.binnings")
    _check_bins_raw(d["binnings"])
    ref = _parse(lambda: Reference.from_dict(d), "reference")
    ref.__dict__.pop("_fingerprint", None)  # recomputed from the schema and bins, not read
    for col in ref.schema_.columns:
        if col.name not in ref.binnings_:
            raise DataError(f"reference.binnings: no entry for column {col.name!r} (null for "
                            "an identifier-like column).", "reference.binnings")
        _check_binning(col, ref.binnings_[col.name])
    claimed = ref.profile_.reference
    if claimed is not None and claimed != ref.fingerprint:
        raise DataError(f"reference.profile.reference: the file says it was fitted as "
                        f"{claimed!r} but its schema and bins hash to {ref.fingerprint!r}: "
                        "it was changed after the fit; fit it again.", "reference.profile")
    if ref.profile_.n_rows < 1:
        raise DataError("reference.profile.n_rows: a reference needs at least one row.",
                        "reference.profile.n_rows")
    _check_profile(ref, ref.profile_, "reference.profile", need_columns=True)
    _check_model(ref.performance_model_)
    _check_floats(ref.instability_, "reference.instability")
    if ref.residual_edges_ is not None:
        _check_edges(ref.residual_edges_, "reference.residual_edges")
    ref.profile_ = replace(ref.profile_, reference=ref.fingerprint)
    _smoke(ref, ref.profile_, "reference")
    _smoke(ref, ref.profile(_probe_rows(ref)), "reference")  # what every ingest will do
    return ref


def profile_from_dict_checked(ref: Reference, d: Any) -> Profile:
    """A batch profile (``Profile.to_dict()``) counted on ``ref``'s bins, refused unless it
    fits them: same fingerprint, every column's counts on its bins and adding up."""
    if not isinstance(d, Mapping):
        raise DataError(f"profile: expected a JSON object (Profile.to_dict()); got "
                        f"{_kind(d)}.", "profile")
    prof = _parse(lambda: Profile.from_dict(d), "profile")
    if prof.reference != ref.fingerprint:
        raise DataError(f"profile.reference: counted on reference {prof.reference!r}, but "
                        f"this version's reference is {ref.fingerprint!r}: profile the data "
                        "with this version's reference (GET .../reference).",
                        "profile.reference")
    _check_profile(ref, prof, "profile", need_columns=prof.n_rows > 0)
    _smoke(ref, prof, "profile")
    return prof


def _parse(build: Any, what: str) -> Any:
    try:
        return build()
    except AiwardenError as exc:
        raise DataError(f"{what}: {exc}", getattr(exc, "field", None) or what) from None
    except _PARSE_ERRORS as exc:
        detail = f"the key {exc} is missing" if isinstance(exc, KeyError) else str(exc)
        raise DataError(f"{what}: cannot be read ({type(exc).__name__}: {detail}).",
                        what) from None


def _check_bins_raw(binnings: Mapping[str, Any]) -> None:
    """Shapes from_dict would otherwise coerce or index blindly."""
    for name, b in binnings.items():
        where = f"reference.binnings.{name}"
        if b is None:
            continue
        if not isinstance(b, Mapping) or b.get("kind") not in ("numerical", "categorical"):
            raise DataError(f"{where}: expected null or an object of kind 'numerical' or "
                            "'categorical'.", where)
        if b["kind"] == "categorical":
            cats = b.get("categories")
            if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                raise DataError(f"{where}.categories: expected a list of strings.", where)
            if len(cats) > MAX_CATEGORIES:
                raise DataError(f"{where}.categories: {len(cats)} categories; at most "
                                f"{MAX_CATEGORIES}.", where)
        elif not isinstance(b.get("edges"), list) or len(b["edges"]) < 2:
            raise DataError(f"{where}.edges: expected a list of at least 2 numbers.", where)


def _check_binning(col: Any, binning: Any) -> None:
    where = f"reference.binnings.{col.name}"
    kind = binned_kind(col)
    want = {"numerical": NumericalBinning, "text": NumericalBinning,
            "categorical": CategoricalBinning}.get(kind)
    if want is None:
        if binning is not None:
            raise DataError(f"{where}: column {col.name!r} ({col.dtype}, {col.role}) is not "
                            "binned; expected null.", where)
        return
    if not isinstance(binning, want):
        raise DataError(f"{where}: column {col.name!r} is {col.dtype}; expected a "
                        f"{'numerical' if want is NumericalBinning else 'categorical'} "
                        "binning.", where)
    if isinstance(binning, CategoricalBinning):
        if len(set(binning.categories)) != len(binning.categories):
            raise DataError(f"{where}.categories: repeated categories.", where)
        return
    _check_edges(binning.edges, f"{where}.edges")
    if not (math.isfinite(binning.std) and binning.std >= 0):
        raise DataError(f"{where}.std: expected a finite number >= 0; got {binning.std}.",
                        where)
    if binning.atoms is not None:
        _check_edges(binning.atoms, f"{where}.atoms")


def _check_edges(edges: np.ndarray, where: str) -> None:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or not np.isfinite(e).all():
        raise DataError(f"{where}: expected finite numbers.", where)
    if e.size > 1 and not (np.diff(e) > 0).all():
        raise DataError(f"{where}: expected strictly increasing values.", where)


def _check_profile(ref: Reference, prof: Profile, where: str, *, need_columns: bool) -> None:
    n = prof.n_rows
    if n < 0 or prof.duplicates < 0 or prof.duplicates > n:
        raise DataError(f"{where}: n_rows {n} and duplicates {prof.duplicates} are not "
                        "counts of one batch (0 <= duplicates <= n_rows).", f"{where}.n_rows")
    if any(v < 0 or v > n for v in prof.extra_columns.values()):
        raise DataError(f"{where}.extra_columns: counts must lie in [0, n_rows].",
                        f"{where}.extra_columns")
    names = set(ref.schema_.names)
    unknown = sorted(set(prof.columns) - names)
    if unknown:
        raise DataError(f"{where}.columns: {unknown[:5]} are not in the reference's schema.",
                        f"{where}.columns")
    if not need_columns and not prof.columns:
        return
    for col in ref.schema_.columns:
        cw = f"{where}.columns.{col.name}"
        cp = prof.columns.get(col.name)
        if cp is None:
            raise DataError(f"{cw}: missing (every schema column is profiled; an absent "
                            "column is counted as missing).", cw)
        _check_column(ref.binnings_[col.name], cp, n, cw)


def _check_column(binning: Any, cp: Any, n: int, where: str) -> None:
    want = (PresenceProfile if binning is None else NumericalProfile
            if isinstance(binning, NumericalBinning) else CategoricalProfile)
    if not isinstance(cp, want):
        raise DataError(f"{where}: kind {cp.kind!r}; the reference's bins need "
                        f"{want.kind!r}.", where)
    ints = {f: getattr(cp, f) for f in cp._INT_FIELDS}
    if any(v < 0 for v in ints.values()):
        raise DataError(f"{where}: counts must be >= 0; got {ints}.", where)
    if cp.n != n:
        raise DataError(f"{where}.n: {cp.n}, but the profile has {n} rows.", f"{where}.n")
    if cp.absent > cp.missing:
        raise DataError(f"{where}.absent: {cp.absent} > missing {cp.missing} (an absent "
                        "value is a missing one).", f"{where}.absent")
    for key, rows in cp.examples.items():
        if len(rows) > MAX_EXAMPLES or any(not 0 <= r < max(n, 1) for r in rows):
            raise DataError(f"{where}.examples.{key}: at most {MAX_EXAMPLES} row positions "
                            f"in [0, n_rows).", f"{where}.examples")
    if isinstance(cp, PresenceProfile):
        if cp.missing > n:
            raise DataError(f"{where}.missing: {cp.missing} > n {n}.", f"{where}.missing")
        return
    if cp.counts.ndim != 1 or len(cp.counts) != binning.n_bins:
        raise DataError(f"{where}.counts: {cp.counts.size} counts, but the bins need "
                        f"{binning.n_bins}.", f"{where}.counts")
    if (cp.counts < 0).any():
        raise DataError(f"{where}.counts: counts must be >= 0.", f"{where}.counts")
    counted = int(cp.counts.sum()) + sum(ints[f] for f in ("missing", "nan", "posinf",
                                                            "neginf", "invalid") if f in ints)
    if counted != n:
        raise DataError(f"{where}: bins, missing and invalid values add up to {counted} "
                        f"rows, not n = {n}.", where)
    if isinstance(cp, CategoricalProfile):
        if len(cp.unseen_top) > MAX_UNSEEN_TOP or any(
                v < 0 or v > cp.unseen for v in cp.unseen_top.values()):
            raise DataError(f"{where}.unseen_top: at most {MAX_UNSEEN_TOP} values, each "
                            "counted at most the unseen count.", f"{where}.unseen_top")
        return
    count = cp.count
    if cp.negative > count:
        raise DataError(f"{where}.negative: {cp.negative} > {count} counted values.",
                        f"{where}.negative")
    if count and not (cp.min <= cp.max):
        raise DataError(f"{where}: min {cp.min} > max {cp.max}.", f"{where}.min")
    if not (np.isnan(cp.m2) or cp.m2 >= 0):  # NaN/inf only from an overflow, kept as such
        raise DataError(f"{where}.m2: a sum of squares is >= 0; got {cp.m2}.", f"{where}.m2")


def _check_model(model: Any) -> None:
    """A stored DLE's trees must be trees: every child after its parent, in range."""
    for trees in (getattr(model, "abs_models_", ()), getattr(model, "sq_models_", ())):
        for i, t in enumerate(trees):
            where = f"reference.performance_model.trees[{i}]"
            nd = t.nodes
            size = len(nd["left"])
            if any(len(v) != size for v in nd.values()) or size == 0:
                raise DataError(f"{where}: node arrays differ in length.", where)
            roots = np.asarray(t.roots)
            if ((roots < 0) | (roots >= size)).any():
                raise DataError(f"{where}: a root is out of range.", where)
            idx = np.arange(size)
            inner = nd["left"] >= 0
            for side in ("left", "right"):
                child = nd[side][inner]
                if ((child <= idx[inner]) | (child >= size)).any():
                    raise DataError(f"{where}: a {side} child is not a later node (a "
                                    "cycle or out of range).", where)
            feat = nd["feature"][inner]
            if ((feat < 0) | (feat >= t.n_features)).any():
                raise DataError(f"{where}: a split names a feature out of range.", where)


def _check_floats(d: Mapping[str, Mapping[str, float]], where: str) -> None:
    for name, stats in d.items():
        for key, v in stats.items():
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise DataError(f"{where}.{name}.{key}: expected a finite number; got {v!r}.",
                                where)


def _smoke(ref: Reference, prof: Profile, what: str) -> None:
    """The engine's own comparison must run on it: what every alert cycle will do."""
    try:
        ref.compare(prof)
        ref.check_quality(prof)
        ref.realised_performance(prof)
        ref.estimated_performance(prof)
    except (AiwardenError, *_PARSE_ERRORS, FloatingPointError) as exc:
        raise DataError(f"{what}: inconsistent, the engine cannot compare with it "
                        f"({type(exc).__name__}: {exc}).", what) from None


def _probe_rows(ref: Reference) -> pa.Table:
    """A few rows on the reference's own grid (edges, categories, classes), so profiling
    them runs the bins and the performance model the way ingest will."""
    cols: dict[str, pa.Array] = {}
    rows = 8
    for col in ref.schema_.columns:
        b = ref.binnings_[col.name]
        kind = binned_kind(col)
        if kind == "numerical" and isinstance(b, NumericalBinning):
            cols[col.name] = pa.array(np.resize(b.interior, rows), pa.float64())
        elif kind == "categorical" and isinstance(b, CategoricalBinning) and b.categories:
            labelled = col.role.value in ("prediction", "target") and ref.schema_.classes
            values = list(ref.schema_.classes if labelled else b.categories)
            cols[col.name] = pa.array([values[i % len(values)] for i in range(rows)])
        elif kind == "text":
            cols[col.name] = pa.array(["probe"] * rows)
        else:  # identifiers, timestamps: present, not binned
            cols[col.name] = pa.array([f"probe-{i}" for i in range(rows)])
    return pa.table(cols)


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__
