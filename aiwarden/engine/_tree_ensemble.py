"""Gradient-boosted regression trees as plain arrays: stored in a reference, run with numpy.

Why: a fitted :class:`~sklearn.ensemble.HistGradientBoostingRegressor` can only be
stored with pickle, which is unsafe to load from a database and breaks when
scikit-learn is upgraded. Its trees are small arrays (feature, threshold,
children, leaf value, missing-value direction, category bitsets), so
:meth:`TreeEnsemble.from_hgb` copies them out, :meth:`to_dict` stores them
(base64 of little-endian arrays: exact and compact) and :meth:`predict` walks
every tree of a row chunk at once, one depth level per numpy step, with no
thread pool. Predictions equal scikit-learn's ``predict`` up to float summation
order (tested to 1e-12), following its rules: ``x <= threshold`` goes left, a
missing value goes where the split sent missing values, a category goes left
when it is in the split's bitset, and an unknown category counts as missing.

It reads private attributes of the fitted scikit-learn model
(``_predictors``, ``_preprocessor``, ``_bin_mapper``, ``_baseline_prediction``);
the equality test is what notices when a scikit-learn release moves them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiwarden.errors import DataError, ParameterError

__all__ = ["TreeEnsemble"]

_CELLS = 1 << 20  # rows x trees walked per step: bounds the memory of a large batch


def _pack(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _unpack(s: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=dtype).copy()


_FIELDS = {"feature": "<i4", "threshold": "<f8", "missing_left": "u1", "left": "<i4",
           "right": "<i4", "is_leaf": "u1", "value": "<f8", "is_categorical": "u1",
           "bitset": "<i4"}


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """All trees of one boosted regressor; node arrays of every tree concatenated.

    ``order[j]`` is the input column that model column ``j`` reads; ``categories[j]``
    the sorted known values of a categorical model column (None: numerical), encoded
    as their position; ``known[j]`` the bitset of categories seen in training.
    ``left`` / ``right`` are global node indices; ``bitset`` indexes ``bitsets``
    (the left-going categories of a categorical split, -1 elsewhere).
    """

    baseline: float
    n_features: int
    order: np.ndarray
    categories: tuple[np.ndarray | None, ...]
    known: np.ndarray
    roots: np.ndarray
    depth: int
    nodes: dict[str, np.ndarray]
    bitsets: np.ndarray

    @classmethod
    def from_hgb(cls, model: Any, n_features: int) -> TreeEnsemble:
        """Copy the trees of a fitted squared-error HistGradientBoostingRegressor."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        if not isinstance(model, HistGradientBoostingRegressor) or model.loss != "squared_error":
            raise ParameterError("Only a HistGradientBoostingRegressor with loss='squared_error' "
                                 f"can be stored as trees; got {model!r}.")
        pre = model._preprocessor
        if pre is None:
            order = np.arange(n_features)
            categories: list[np.ndarray | None] = [None] * n_features
        else:
            mask = np.asarray(model.is_categorical_, dtype=bool)
            order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
            enc = pre.named_transformers_["encoder"]
            categories = [np.asarray(c, dtype=np.float64)[~np.isnan(np.asarray(c, np.float64))]
                          for c in enc.categories_]
            categories += [None] * int((~mask).sum())
        known = np.zeros((len(order), 8), dtype=np.uint32)
        if pre is not None:
            bits, f_map = model._bin_mapper.make_known_categories_bitsets()
            for j in np.flatnonzero(model._bin_mapper.is_categorical_):
                known[j] = bits[f_map[j]]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _FIELDS}
        roots, bitsets, offset, n_bits, depth = [], [], 0, 0, 0
        for iteration in model._predictors:
            (tree,) = iteration
            nd = tree.nodes
            roots.append(offset)
            leaf = nd["is_leaf"].astype(bool)
            cat = nd["is_categorical"].astype(bool) & ~leaf
            parts["feature"].append(np.where(leaf, 0, nd["feature_idx"]))
            parts["threshold"].append(nd["num_threshold"])
            parts["missing_left"].append(nd["missing_go_to_left"])
            parts["left"].append(np.where(leaf, -1, nd["left"].astype(np.int64) + offset))
            parts["right"].append(np.where(leaf, -1, nd["right"].astype(np.int64) + offset))
            parts["is_leaf"].append(leaf)
            parts["value"].append(np.where(leaf, nd["value"], 0.0))
            parts["is_categorical"].append(cat)
            parts["bitset"].append(np.where(cat, nd["bitset_idx"].astype(np.int64) + n_bits, -1))
            raw = np.asarray(tree.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
            bitsets.append(raw)
            n_bits += len(raw)
            offset += len(nd)
            depth = max(depth, int(nd["depth"].max()))
        nodes = {k: np.concatenate(v).astype(_FIELDS[k]) if v else np.zeros(0, _FIELDS[k])
                 for k, v in parts.items()}
        return cls(float(np.asarray(model._baseline_prediction).ravel()[0]), n_features, order,
                   tuple(categories), known, np.asarray(roots, dtype=np.int64), depth, nodes,
                   np.concatenate(bitsets) if bitsets else np.zeros((0, 8), np.uint32))

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """Input columns in model order, categories as their positions (unknown: NaN)."""
        out = np.empty((len(X), len(self.order)), dtype=np.float64)
        for j, col in enumerate(self.order):
            v = X[:, col]
            cats = self.categories[j]
            if cats is None:
                out[:, j] = v
                continue
            pos = np.searchsorted(cats, v)
            hit = pos < len(cats)
            hit[hit] = cats[pos[hit]] == v[hit]
            out[:, j] = np.where(hit, pos, np.nan)
        return out

    def predict(self, X: Any) -> np.ndarray:
        """The ensemble's prediction for each row of ``X`` (floats, input column order)."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise DataError(f"TreeEnsemble needs {self.n_features} columns. Got shape {x.shape}.")
        enc = self._encode(x)
        out = np.full(len(x), self.baseline)
        n_trees = len(self.roots)
        if n_trees == 0 or len(x) == 0:
            return out
        step = max(1, _CELLS // n_trees)
        for start in range(0, len(x), step):
            chunk = enc[start:start + step]
            out[start:start + step] += self._walk(chunk).sum(axis=1)
        return out

    def _walk(self, chunk: np.ndarray) -> np.ndarray:
        """Leaf values ``(rows, trees)`` of a chunk of encoded rows.

        Each step moves only the cells (row, tree) still at an inner node, so the cost
        follows the depth actually reached, not the deepest tree.
        """
        nd = self.nodes
        n_rows, n_trees, width = len(chunk), len(self.roots), chunk.shape[1]
        flat = chunk.ravel()
        node = np.tile(self.roots, n_rows)
        base = np.repeat(np.arange(n_rows) * width, n_trees)
        active = np.flatnonzero(nd["left"][node] >= 0)
        while active.size:
            at = node[active]
            v = flat[base[active] + nd["feature"][at]]
            miss_left = nd["missing_left"][at].astype(bool)
            missing = np.isnan(v)
            left = (v <= nd["threshold"][at]) | (missing & miss_left)
            if self._categorical:
                cat = nd["is_categorical"][at].astype(bool) & ~missing
                if cat.any():
                    left[cat] = self._category_left(v[cat], at[cat], miss_left[cat])
            at = np.where(left, nd["left"][at], nd["right"][at])
            node[active] = at
            active = active[nd["left"][at] >= 0]
        return nd["value"][node].reshape(n_rows, n_trees)

    def _category_left(self, v: np.ndarray, at: np.ndarray, miss_left: np.ndarray
                       ) -> np.ndarray:
        """Left or right at categorical splits: unknown or negative codes count as missing."""
        nd = self.nodes
        invalid = v < 0
        c = np.clip(v, 0, 255).astype(np.int64)
        word, bit = c >> 5, (c & 31).astype(np.uint32)
        in_left = (self.bitsets[nd["bitset"][at], word] >> bit) & 1 == 1
        in_known = (self.known[nd["feature"][at], word] >> bit) & 1 == 1
        return np.where(invalid, miss_left,
                        np.where(in_left, True, np.where(in_known, False, miss_left)))

    @property
    def _categorical(self) -> bool:
        return bool(self.bitsets.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; arrays travel as base64 of their little-endian bytes (exact)."""
        return {
            "kind": "TreeEnsemble", "baseline": self.baseline, "n_features": self.n_features,
            "order": self.order.tolist(),
            "categories": [None if c is None else c.tolist() for c in self.categories],
            "known": _pack(self.known, "<u4"), "roots": _pack(self.roots, "<i4"),
            "depth": self.depth, "nodes": {k: _pack(v, _FIELDS[k]) for k, v in self.nodes.items()},
            "bitsets": _pack(self.bitsets, "<u4"),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TreeEnsemble:
        order = np.asarray(d["order"], dtype=np.int64)
        return cls(
            float(d["baseline"]), int(d["n_features"]), order,
            tuple(None if c is None else np.asarray(c, dtype=np.float64)
                  for c in d["categories"]),
            _unpack(d["known"], "<u4").reshape(len(order), 8),
            _unpack(d["roots"], "<i4").astype(np.int64), int(d["depth"]),
            {k: _unpack(d["nodes"][k], t) for k, t in _FIELDS.items()},
            _unpack(d["bitsets"], "<u4").reshape(-1, 8),
        )
