"""A profile as a handful of arrays, so a window of many buckets merges in a few numpy calls.

An engine :class:`Profile` is a dict of per-column objects: right for the engine, slow
for the server, which decodes and merges hundreds of bucket partials per evaluation
cycle. Here the columns of one kind sit side by side (the bin counts of every numerical
column in one vector, their scalars in one table), so decoding is ``np.frombuffer``
and merging K buckets is one sum over a K-row matrix. The few irregular parts (examples,
unseen heavy hitters, performance accumulators) merge with the engine's own helpers, and
a window is turned back into a :class:`Profile` once, after merging.

Example row positions are not kept: they index the batch a profile was made from, and a
bucket mixes batches, so in a window they would point nowhere. Whoever needs the rows
behind a finding (the RCA) re-reads the raw events and names them by prediction id.
Count arrays keep whatever integer type they were stored in until a merge sums them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aiwarden.engine.profile import (
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
    Profile,
    combine_moments,
    merge_heavy_hitters,
)
from aiwarden.monitoring.stored_accumulators import (
    Stored,
    as_dict,
    merge_accumulators,
    stored_estimated,
    stored_performance,
)

__all__ = ["Packed"]

_NUM_INTS = NumericalProfile._INT_FIELDS
_NUM_FLOATS = ("min", "max", "mean", "m2", "below_sum", "above_sum")
_CAT_INTS = CategoricalProfile._INT_FIELDS
_PRES_INTS = ("n", "missing", "absent")
_ARRAYS = ("num_counts", "num_ints", "num_floats", "cat_counts", "cat_ints", "pres_ints")


@dataclass(frozen=True, eq=False)
class Packed:
    n_rows: int
    order: tuple[str, ...]  # the profile's column order
    num_names: tuple[str, ...]
    num_offsets: np.ndarray  # bins of column i: num_counts[off[i]:off[i+1]]
    num_counts: np.ndarray
    num_ints: np.ndarray  # (columns, _NUM_INTS)
    num_floats: np.ndarray  # (columns, _NUM_FLOATS)
    cat_names: tuple[str, ...]
    cat_offsets: np.ndarray
    cat_counts: np.ndarray
    cat_ints: np.ndarray  # (columns, _CAT_INTS)
    cat_top: dict[str, dict[str, int]]  # only columns with unseen values
    pres_names: tuple[str, ...]
    pres_ints: np.ndarray  # (columns, _PRES_INTS)
    extra_columns: dict[str, int]
    duplicates: int
    # engine accumulators, or read from the store and not yet decoded (:class:`Stored`):
    # a window merges them undecoded and decodes its merge in :meth:`to_profile`
    performance: Any
    estimated: Any
    reference: str | None

    # ----------------------------------------------------------- conversion
    @classmethod
    def from_profile(cls, p: Profile) -> Packed:
        num = [(k, c) for k, c in p.columns.items() if isinstance(c, NumericalProfile)]
        cat = [(k, c) for k, c in p.columns.items() if isinstance(c, CategoricalProfile)]
        pres = [(k, c) for k, c in p.columns.items() if isinstance(c, PresenceProfile)]
        return cls(
            n_rows=p.n_rows, order=tuple(p.columns),
            num_names=tuple(k for k, _ in num), num_offsets=_offsets([c for _, c in num]),
            num_counts=_concat([c for _, c in num]),
            num_ints=_table(num, _NUM_INTS, np.int64),
            num_floats=_table(num, _NUM_FLOATS, np.float64),
            cat_names=tuple(k for k, _ in cat), cat_offsets=_offsets([c for _, c in cat]),
            cat_counts=_concat([c for _, c in cat]), cat_ints=_table(cat, _CAT_INTS, np.int64),
            cat_top={k: dict(c.unseen_top) for k, c in cat if c.unseen_top},
            pres_names=tuple(k for k, _ in pres), pres_ints=_table(pres, _PRES_INTS, np.int64),
            extra_columns=dict(p.extra_columns), duplicates=p.duplicates,
            performance=p.performance, estimated=p.estimated, reference=p.reference)

    def to_profile(self) -> Profile:
        cols: dict[str, Any] = {}
        num_counts, cat_counts = _int64(self.num_counts), _int64(self.cat_counts)
        for i, name in enumerate(self.num_names):
            ints, fl = self.num_ints[i].tolist(), self.num_floats[i].tolist()
            cols[name] = NumericalProfile(
                num_counts[self.num_offsets[i]:self.num_offsets[i + 1]],
                **dict(zip(_NUM_INTS, ints, strict=True)),
                **dict(zip(_NUM_FLOATS, fl, strict=True)))
        for i, name in enumerate(self.cat_names):
            cols[name] = CategoricalProfile(
                cat_counts[self.cat_offsets[i]:self.cat_offsets[i + 1]],
                unseen_top=self.cat_top.get(name, {}),
                **dict(zip(_CAT_INTS, self.cat_ints[i].tolist(), strict=True)))
        for i, name in enumerate(self.pres_names):
            n, missing, absent = self.pres_ints[i].tolist()
            cols[name] = PresenceProfile(n, missing, absent)
        return Profile(n_rows=self.n_rows, columns={k: cols[k] for k in self.order},
                       extra_columns=dict(self.extra_columns), duplicates=self.duplicates,
                       performance=_decoded(self.performance),
                       estimated=_decoded(self.estimated), reference=self.reference)

    # -------------------------------------------------------------- storage
    def header(self) -> dict[str, Any]:
        """The irregular parts, as JSON; the arrays travel beside it (:meth:`arrays`)."""
        return {
            "n_rows": self.n_rows, "order": self.order, "num_names": self.num_names,
            "num_offsets": self.num_offsets.tolist(), "cat_names": self.cat_names,
            "cat_offsets": self.cat_offsets.tolist(), "cat_top": self.cat_top,
            "pres_names": self.pres_names,
            "extra_columns": self.extra_columns, "duplicates": self.duplicates,
            "performance": as_dict(self.performance, kind=True),
            "estimated": as_dict(self.estimated, kind=False),
            "reference": self.reference,
        }

    def arrays(self) -> list[np.ndarray]:
        return [getattr(self, a) for a in _ARRAYS]

    @classmethod
    def from_parts(cls, h: dict[str, Any], arrays: list[np.ndarray]) -> Packed:
        num_names, cat_names, pres_names = (_intern(h[k]) for k in
                                            ("num_names", "cat_names", "pres_names"))
        a = dict(zip(_ARRAYS, arrays, strict=True))
        return cls(
            n_rows=int(h["n_rows"]), order=_intern(h["order"]),
            num_names=num_names, num_offsets=np.asarray(h["num_offsets"], np.int64),
            num_counts=a["num_counts"],
            num_ints=a["num_ints"].reshape(len(num_names), len(_NUM_INTS)),
            num_floats=a["num_floats"].reshape(len(num_names), len(_NUM_FLOATS)),
            cat_names=cat_names, cat_offsets=np.asarray(h["cat_offsets"], np.int64),
            cat_counts=a["cat_counts"],
            cat_ints=a["cat_ints"].reshape(len(cat_names), len(_CAT_INTS)),
            cat_top=h["cat_top"],  # fresh from the JSON parser: no copy needed
            pres_names=pres_names,
            pres_ints=a["pres_ints"].reshape(len(pres_names), len(_PRES_INTS)),
            extra_columns=h["extra_columns"],
            duplicates=int(h["duplicates"]), performance=stored_performance(h["performance"]),
            estimated=stored_estimated(h["estimated"]), reference=h["reference"])

    # ---------------------------------------------------------------- merge
    def layout(self) -> tuple[Any, ...]:
        return (self.order, self.num_names, self.cat_names, self.pres_names,
                self.num_offsets.tobytes(), self.cat_offsets.tobytes())

    @staticmethod
    def merge_all(parts: list[Packed]) -> Packed:
        """The exact merge of ``parts`` (as :meth:`Profile.merge_all` would give it)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        if any(p.layout() != first.layout() for p in parts[1:]):
            # Columns differ (rare: a schema change inside one window): the engine decides.
            return Packed.from_profile(Profile.merge_all([p.to_profile() for p in parts]))
        refs = {p.reference for p in parts} - {None}
        if len(refs) > 1:  # the engine's message names them
            Profile.merge_all([p.to_profile() for p in parts])
        num_counts = np.stack([p.num_counts for p in parts])
        floats = np.stack([p.num_floats for p in parts])  # (K, columns, fields)
        per_col = _per_column(num_counts, first.num_offsets)
        mean, m2 = combine_moments(per_col, floats[:, :, 2], floats[:, :, 3])
        with np.errstate(over="ignore", invalid="ignore"):
            merged_floats = np.column_stack([
                floats[:, :, 0].min(axis=0), floats[:, :, 1].max(axis=0), mean, m2,
                floats[:, :, 4].sum(axis=0), floats[:, :, 5].sum(axis=0)]
            ) if first.num_names else first.num_floats
        top = {}
        for name in {k for p in parts for k in p.cat_top}:
            top[name] = merge_heavy_hitters([p.cat_top.get(name, {}) for p in parts])
        extra: dict[str, int] = {}
        for p in parts:
            for k, v in p.extra_columns.items():
                extra[k] = extra.get(k, 0) + v
        perf = merge_accumulators([p.performance for p in parts])
        est = merge_accumulators([p.estimated for p in parts])
        return Packed(
            n_rows=sum(p.n_rows for p in parts), order=first.order,
            num_names=first.num_names, num_offsets=first.num_offsets,
            num_counts=num_counts.sum(axis=0, dtype=np.int64),
            num_ints=_total([p.num_ints for p in parts]), num_floats=merged_floats,
            cat_names=first.cat_names, cat_offsets=first.cat_offsets,
            cat_counts=_total([p.cat_counts for p in parts]),
            cat_ints=_total([p.cat_ints for p in parts]), cat_top=top,
            pres_names=first.pres_names, pres_ints=_total([p.pres_ints for p in parts]),
            extra_columns=extra,
            duplicates=sum(p.duplicates for p in parts), performance=perf, estimated=est,
            reference=next((p.reference for p in parts if p.reference), None))


_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _intern(names: list[str]) -> tuple[str, ...]:
    """One shared tuple per distinct column list: thousands of cached partials of one
    model then hold one copy of its names, and comparing layouts is an identity check."""
    key = tuple(names)
    if len(_NAMES) > 10_000:
        _NAMES.clear()
    return _NAMES.setdefault(key, key)


def _decoded(acc: Any) -> Any:
    return acc.value() if type(acc) is Stored else acc


def _total(arrays: list[np.ndarray]) -> np.ndarray:
    return np.sum(arrays, axis=0, dtype=np.int64)


def _int64(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.int64 else a.astype(np.int64)


def _per_column(counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each part's total count of each column: (parts, bins) -> (parts, columns)."""
    if len(offsets) < 2:
        return np.zeros((len(counts), 0), np.int64)
    if np.all(np.diff(offsets) > 0):
        return np.add.reduceat(counts, offsets[:-1], axis=1, dtype=np.int64)
    cum = np.concatenate([np.zeros((len(counts), 1), np.int64),
                          np.cumsum(counts, axis=1, dtype=np.int64)], axis=1)
    return cum[:, offsets[1:]] - cum[:, offsets[:-1]]


def _offsets(cols: list[Any]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(c.counts) for c in cols], dtype=np.int64)]
                          ).astype(np.int64)


def _concat(cols: list[Any]) -> np.ndarray:
    if not cols:
        return np.zeros(0, np.int64)
    return np.concatenate([np.asarray(c.counts, np.int64) for c in cols])


def _table(cols: list[tuple[str, Any]], fields: tuple[str, ...], dtype: Any) -> np.ndarray:
    out = np.zeros((len(cols), len(fields)), dtype)
    for i, (_, c) in enumerate(cols):
        out[i] = [getattr(c, f) for f in fields]
    return out
