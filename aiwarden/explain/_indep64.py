"""Interventional Tree SHAP in float64: shap's own algorithm, with its arithmetic widened.

shap 0.51's interventional Tree SHAP (``tree_shap_indep`` in its ``tree_shap.h``) copies
every node into a struct of ``float`` threshold and leaf value and keeps its partial sums
(``pos_lst``, ``neg_lst``) and its Shapley weights in ``float``: its values add up to the
trees' output only to float32 precision (measured 8e-5 on a LightGBM regressor predicting
~1,000), and a float64 threshold rounded to float32 can even send a row down the other
branch. This module computes the same values in float64 on the ensemble shap parsed
(``TreeExplainer.model``: float64 thresholds and leaf values), so they equal shap's to
float32 rounding and add up to the float64 sum of the same trees to ~1e-12.

Two traversals give the same sums (to ~1e-14): ``_walks`` is ``tree_shap_indep`` line for
line; ``_scans`` adds the same per-leaf terms from bit masks of the features a row and a
reference fail on the way to each leaf, which for trees of up to ``_SCAN_LEAVES`` leaves
costs about half of shap's C code (the walk cost 1.2-1.4x it; docs/explain.md). Larger
trees, and trees splitting on more than 64 distinct features, are walked.

Compiled with numba (a dependency of shap; also `aiwarden[fast]`) and cached on disk;
without numba the caller falls back to shap's own values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["interventional_values", "kernel"]

_FROM_NEITHER, _FROM_X_NOT_R, _FROM_R_NOT_X = 0, 1, 2


def _weights(max_depth: int) -> np.ndarray:
    """``w[n, m] = 1 / (n * C(n-1, m))``: the Shapley weight of a path with n features,
    m of them from x (shap's ``memoized_weights``, in float64)."""
    from math import comb

    w = np.zeros((max_depth + 2, max_depth + 2))
    for n in range(1, max_depth + 2):
        for m in range(0, n):
            w[n, m] = 1.0 / (n * comb(n - 1, m))
    return w


def _pop_py(hist: np.ndarray, pf: int, fl: int, n_: int, m_: int) -> tuple[int, int]:
    """Leaving a node whose parent splits on ``pf``: undo the parent's feature count on the
    path and, when the feature leaves the path, its share of (n, m). The tail every upward
    step of ``tree_shap_indep`` shares."""
    h = hist[pf]
    if h > 0:
        h -= 1
    elif h < 0:
        h += 1
    hist[pf] = h
    if h == 0:
        if fl == _FROM_X_NOT_R:
            n_ -= 1
            m_ -= 1
        elif fl == _FROM_R_NOT_X:
            n_ -= 1
    return n_, m_


def _tree_py(t: int, o: int, nodes: np.ndarray, value: np.ndarray, xgo: np.ndarray,
             rgo: np.ndarray, j: int, out: np.ndarray, pos: np.ndarray, neg: np.ndarray,
             hist: np.ndarray, w: np.ndarray, stack: np.ndarray, flag: np.ndarray) -> None:
    """Tree ``t``, output ``o``, the row against reference ``j``: ``tree_shap_indep`` of
    shap's tree_shap.h. ``nodes[t, node]`` holds (left, right, default, feature, parent,
    parent's feature); ``xgo[t, node]`` / ``rgo[j, t, node]`` the child the row / the
    reference goes to (shap's comparisons, made once per row and reference)."""
    nf = hist.shape[0]
    hist[:] = 0
    ns = 0
    node = 0
    if nodes[t, 0, 0] < 0:
        out[nf] += value[t, 0, o]
        return
    f = nodes[t, 0, 3]
    nx = xgo[t, 0]
    nr = rgo[j, t, 0]
    if nx != nr:
        flag[nx] = _FROM_X_NOT_R
        flag[nr] = _FROM_R_NOT_X
    else:
        flag[nx] = _FROM_NEITHER
    m_ = 0
    n_ = 0
    nxt = -1
    if nx == nr:
        nxt = nx
    if nxt < 0:
        nxt = nodes[t, 0, 0]
        if nr == nxt:
            n_ += 1
            hist[f] -= 1
        elif nx == nxt:
            m_ += 1
            n_ += 1
            hist[f] += 1
    stack[ns] = node
    ns += 1
    from_child = -1
    while True:
        node = nxt
        f = nodes[t, node, 3]
        c_l, c_r = nodes[t, node, 0], nodes[t, node, 1]
        pf = nodes[t, node, 5]
        fl = flag[node]
        if c_l < 0:
            if m_ == 0:
                out[nf] += value[t, node, o]
            if n_ != 0:
                if m_ != 0:
                    pos[node] = value[t, node, o] * w[n_, m_ - 1]
                if m_ != n_:
                    neg[node] = -value[t, node, o] * w[n_, m_]
            ns -= 1
            nxt = stack[ns]
            from_child = node
            n_, m_ = _pop(hist, pf, fl, n_, m_)
            continue
        nx = xgo[t, node]
        nr = rgo[j, t, node]
        if nx >= 0:
            if nx != nr:
                flag[nx] = _FROM_X_NOT_R
                flag[nr] = _FROM_R_NOT_X
            else:
                flag[nx] = _FROM_NEITHER
        if from_child == -1:
            stack[ns] = node
            ns += 1
            nxt = -1
            if hist[f] > 0:
                nxt = nx
                hist[f] += 1
            elif hist[f] < 0:
                nxt = nr
                hist[f] -= 1
            if nxt < 0 and nx == nr:
                nxt = nx
            if nxt >= 0:
                continue
            nxt = c_l
            if nr == nxt:
                n_ += 1
                hist[f] -= 1
            elif nx == nxt:
                m_ += 1
                n_ += 1
                hist[f] += 1
            from_child = -1
            continue
        nxt = -1
        if nr == nx or hist[f] != 0:
            nxt = nodes[t, node, 4]
        if nxt >= 0:
            if node == 0:
                break
            pos[node] = pos[from_child]
            neg[node] = neg[from_child]
            from_child = node
            ns -= 1
            n_, m_ = _pop(hist, pf, fl, n_, m_)
            continue
        if from_child == c_l:
            stack[ns] = node
            ns += 1
            nxt = c_r
            if nx == nxt:
                m_ += 1
                n_ += 1
                hist[f] += 1
            elif nr == nxt:
                n_ += 1
                hist[f] -= 1
            from_child = -1
            continue
        if from_child == c_r:
            pos_x = neg_x = pos_r = neg_r = 0.0
            if nx == c_r and nr == c_l:
                pos_x, neg_x, pos_r, neg_r = pos[c_r], neg[c_r], pos[c_l], neg[c_l]
            elif nx == c_l and nr == c_r:
                pos_x, neg_x, pos_r, neg_r = pos[c_l], neg[c_l], pos[c_r], neg[c_r]
            out[f] += pos_x + neg_r
            pos[node] = pos_x + pos_r
            neg[node] = neg_x + neg_r
            if node == 0:
                break
            ns -= 1
            nxt = stack[ns]
            from_child = node
            n_, m_ = _pop(hist, pf, fl, n_, m_)
            continue


def _directions_py(nodes: np.ndarray, thres: np.ndarray, x: np.ndarray, xm: np.ndarray,
                out: np.ndarray) -> None:
    """The child a row goes to at every split of every tree (shap's test: missing -> the
    default child, ``x > threshold`` -> right, else left)."""
    n_trees, max_nodes = thres.shape
    for t in range(n_trees):
        for node in range(max_nodes):
            if nodes[t, node, 0] < 0:
                continue
            f = nodes[t, node, 3]
            if xm[f]:
                out[t, node] = nodes[t, node, 2]
            elif x[f] > thres[t, node]:
                out[t, node] = nodes[t, node, 1]
            else:
                out[t, node] = nodes[t, node, 0]


def _walks(nodes: np.ndarray, thres: np.ndarray, values: np.ndarray, max_depth: int,
           x: np.ndarray, xm: np.ndarray, outs: np.ndarray, r: np.ndarray, rm: np.ndarray,
           w: np.ndarray, block: int, phi: np.ndarray) -> None:
    """shap's walk (``dense_independent``, identity link): every row against every
    reference, summed over the trees, for the output ``outs[i]`` of row i only, added to
    ``phi[i, :M]`` (values) and ``phi[i, M]`` (the leaves reached from the reference),
    summed over the references (the caller divides). References go in blocks of ``block``
    whose directions are kept (memory: block x trees x nodes)."""
    n_trees, max_nodes = thres.shape
    nf = x.shape[1]
    n_ref = r.shape[0]
    pos = np.zeros(max_nodes)
    neg = np.zeros(max_nodes)
    hist = np.zeros(nf, dtype=np.int32)
    stack = np.zeros(max_depth + 2, dtype=np.int32)
    flag = np.zeros(max_nodes, dtype=np.int8)
    tmp = np.zeros(nf + 1)
    xgo = np.zeros((n_trees, max_nodes), dtype=np.int32)
    rgo = np.zeros((min(block, n_ref), n_trees, max_nodes), dtype=np.int32)
    for j0 in range(0, n_ref, block):
        j1 = min(n_ref, j0 + block)
        for j in range(j0, j1):
            _directions(nodes, thres, r[j], rm[j], rgo[j - j0])
        for i in range(x.shape[0]):
            _directions(nodes, thres, x[i], xm[i], xgo)
            o = outs[i]
            for j in range(j1 - j0):
                tmp[:] = 0.0
                for t in range(n_trees):
                    _tree(t, o, nodes, values, xgo, rgo, j, tmp, pos, neg, hist, w, stack,
                          flag)
                for k in range(nf + 1):
                    phi[i, k] += tmp[k]


def _tables_py(nodes: np.ndarray, n_features: int, max_leaves: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                          np.ndarray, np.ndarray]:
    """What the leaf scan reads, per tree: its internal nodes parents first (``inner``,
    ``n_inner``), its leaves (``leaves``, ``n_leaves``), the bit of each split's feature
    (``bit``; bits number the tree's distinct features) and the feature of each bit
    (``feature``); ``scan[t]`` when the tree fits (at most 64 distinct features and
    ``max_leaves`` leaves), else it is walked."""
    n_trees, max_nodes = nodes.shape[0], nodes.shape[1]
    inner = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    n_inner = np.zeros(n_trees, dtype=np.int32)
    leaves = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    n_leaves = np.zeros(n_trees, dtype=np.int32)
    bit = np.zeros((n_trees, max_nodes), dtype=np.int32)
    feature = np.zeros((n_trees, 64), dtype=np.int32)
    scan = np.zeros(n_trees, dtype=np.bool_)
    bit_of = np.full(n_features, -1, dtype=np.int32)
    stack = np.zeros(max_nodes + 1, dtype=np.int32)
    for t in range(n_trees):
        bit_of[:] = -1
        bits = 0
        ns = 1
        stack[0] = 0
        while ns > 0:
            ns -= 1
            node = stack[ns]
            if nodes[t, node, 0] < 0:
                leaves[t, n_leaves[t]] = node
                n_leaves[t] += 1
                continue
            inner[t, n_inner[t]] = node
            n_inner[t] += 1
            f = nodes[t, node, 3]
            if bit_of[f] < 0:
                if bits < 64:
                    feature[t, bits] = f
                bit_of[f] = bits
                bits += 1
            bit[t, node] = bit_of[f]
            stack[ns] = nodes[t, node, 1]
            stack[ns + 1] = nodes[t, node, 0]
            ns += 2
        scan[t] = bits <= 64 and n_leaves[t] <= max_leaves
    return inner, n_inner, leaves, n_leaves, bit, feature, scan


def _masks_py(t: int, nodes: np.ndarray, thres: np.ndarray, inner: np.ndarray,
              n_inner: int, bit: np.ndarray, v: np.ndarray, vm: np.ndarray,
              mask: np.ndarray) -> None:
    """``mask[node]``: the bits of the features whose split on the way from the root to
    ``node`` the row ``v`` does not follow (shap's test: missing -> the default child,
    ``v > threshold`` -> right, else left). A leaf is reached taking each feature from x
    or from the reference iff no feature fails both."""
    one = np.uint64(1)
    mask[0] = 0
    for k in range(n_inner):
        p = inner[t, k]
        f = nodes[t, p, 3]
        cl, cr = nodes[t, p, 0], nodes[t, p, 1]
        if vm[f]:
            go = nodes[t, p, 2]
        elif v[f] > thres[t, p]:
            go = cr
        else:
            go = cl
        b = one << np.uint64(bit[t, p])
        mp = mask[p]
        mask[cl] = mp | b if go != cl else mp
        mask[cr] = mp | b if go != cr else mp


def _bits_py(q: np.uint64) -> int:
    """How many bits are set."""
    c = 0
    while q:
        q &= q - np.uint64(1)
        c += 1
    return c


def _scans(nodes: np.ndarray, thres: np.ndarray, values: np.ndarray, tables: tuple,
           x: np.ndarray, xm: np.ndarray, outs: np.ndarray, r: np.ndarray, rm: np.ndarray,
           w: np.ndarray, block: int, phi: np.ndarray) -> None:
    """The same sums as :func:`_walks` from the leaves instead of a walk: a leaf whose path
    the row x fails on features ``B`` and the reference on features ``A`` (disjoint, else
    the leaf is not reached) gives each feature of ``A`` (taken from x) ``v * w[n, m - 1]``
    and each of ``B`` ``-v * w[n, m]``, with ``m = |A|``, ``n = |A| + |B|``; the
    reference's own leaf (``A`` empty) goes to the base value. These are the terms
    ``tree_shap_indep`` adds up along its walk (its ``pos`` and ``neg``), summed per leaf
    instead of per subtree. A tree's references' leaf masks are computed once per block;
    each row's once per tree; the scan over leaves x references is branch-light."""
    inner, n_inner, leaves, n_leaves, bit, feature, _ = tables
    n_trees, max_nodes = thres.shape
    nf = x.shape[1]
    n_ref = r.shape[0]
    max_leaves = max(1, n_leaves.max())
    mask = np.zeros(max_nodes, dtype=np.uint64)
    xf = np.zeros(max_leaves, dtype=np.uint64)
    rf = np.zeros((n_trees, max_leaves, min(block, n_ref)), dtype=np.uint64)
    acc = np.zeros(nf + 1)
    one = np.uint64(1)
    for j0 in range(0, n_ref, block):
        nb = min(n_ref, j0 + block) - j0
        for j in range(nb):
            for t in range(n_trees):
                _masks(t, nodes, thres, inner, n_inner[t], bit, r[j0 + j], rm[j0 + j], mask)
                for leaf in range(n_leaves[t]):
                    rf[t, leaf, j] = mask[leaves[t, leaf]]
        for i in range(x.shape[0]):
            o = outs[i]
            acc[:] = 0.0
            for t in range(n_trees):
                _masks(t, nodes, thres, inner, n_inner[t], bit, x[i], xm[i], mask)
                for leaf in range(n_leaves[t]):
                    xf[leaf] = mask[leaves[t, leaf]]
                for leaf in range(n_leaves[t]):
                    fx = xf[leaf]
                    v = values[t, leaves[t, leaf], o]
                    n_x = _bits(fx)
                    for j in range(nb):
                        fr = rf[t, leaf, j]
                        if fx & fr:
                            continue
                        m = _bits(fr)
                        if m == 0:
                            acc[nf] += v
                            if n_x == 0:
                                continue
                        n = m + n_x
                        if m != 0:
                            share = v * w[n, m - 1]
                            q = fr
                            b = 0
                            while q:
                                if q & one:
                                    acc[feature[t, b]] += share
                                q >>= one
                                b += 1
                        if m != n:
                            share = -v * w[n, m]
                            q = fx
                            b = 0
                            while q:
                                if q & one:
                                    acc[feature[t, b]] += share
                                q >>= one
                                b += 1
            for k in range(nf + 1):
                phi[i, k] += acc[k]


def _pack(model: Any, limit: int) -> np.ndarray:
    """(trees, nodes, 6) int32: left, right, default, feature, parent, parent's feature."""
    cl, cr = model.children_left[:limit], model.children_right[:limit]
    feats = model.features[:limit]
    nodes = np.full((*cl.shape, 6), -1, dtype=np.int32)
    nodes[:, :, 0], nodes[:, :, 1] = cl, cr
    nodes[:, :, 2], nodes[:, :, 3] = model.children_default[:limit], feats
    nodes[:, :, 4] = 0
    for child in (cl, cr):
        t, j = np.nonzero(child >= 0)
        nodes[t, child[t, j], 4] = j
        nodes[t, child[t, j], 5] = feats[t, j]
    return nodes


_COMPILED: Any = None
# the compiled ones once kernel() ran: the ensemble loops call them
_pop: Any = _pop_py
_tree: Any = _tree_py
_directions: Any = _directions_py
_masks: Any = _masks_py
_bits: Any = _bits_py


def kernel() -> Any:
    """The compiled (tables, scans, walks) (numba, cached on disk), or None without numba."""
    global _COMPILED
    if _COMPILED is None:
        try:
            import numba
        except ImportError:
            _COMPILED = False
            return None
        inline = numba.njit(cache=True, nogil=True, inline="always")
        g = globals()
        g["_pop"] = inline(_pop_py)  # before _tree, which calls it
        g["_tree"] = inline(_tree_py)
        g["_masks"] = inline(_masks_py)
        g["_bits"] = inline(_bits_py)
        g["_directions"] = numba.njit(cache=True, nogil=True)(_directions_py)
        jit = numba.njit(cache=True, nogil=True)
        _COMPILED = (jit(_tables_py), jit(_scans), jit(_walks))
    return _COMPILED or None


#: per-block memory, in entries: the walk keeps block x trees x nodes int32 directions,
#: the scan block x trees x leaves uint64 masks (32 MB and 64 MB)
_DIRECTION_CELLS = 8_000_000
#: a tree with more leaves is walked: the scan visits every leaf for every reference, the
#: walk only the nodes the row and the reference can reach (measured break-even on deep
#: random forests: ~2,000 leaves; at 485 leaves the scan took 0.7x the walk's time)
_SCAN_LEAVES = 1024


def interventional_values(model: Any, x: np.ndarray, background: np.ndarray,
                          outs: np.ndarray | None = None, scan: bool = True
                          ) -> np.ndarray | None:
    """(rows, features + 1): each row's values for output ``outs[i]`` (default 0) then
    its base value, like shap's ``phi``, for shap's parsed ``TreeEnsemble`` ``model``
    (identity link) and float64 rows already cast the way the trees compare them. Trees
    that fit are scanned leaf by leaf (``_scans``), the others walked as shap does
    (``_walks``; ``scan=False`` walks all: the tests compare both). None without numba."""
    compiled = kernel()
    if compiled is None:
        return None
    tables_of, scans, walks = compiled
    x = np.ascontiguousarray(x, dtype=np.float64)
    r = np.ascontiguousarray(background, dtype=np.float64)
    limit = model.values.shape[0] if model.tree_limit is None else min(
        model.tree_limit, model.values.shape[0])
    outs = (np.zeros(len(x), dtype=np.int64) if outs is None
            else np.ascontiguousarray(outs, dtype=np.int64))
    n, nf = x.shape
    phi = np.zeros((n, nf + 1))
    depth = int(model.max_depth)
    nodes = _pack(model, limit)
    thres = np.ascontiguousarray(model.thresholds[:limit], dtype=np.float64)
    values = np.ascontiguousarray(model.values[:limit], dtype=np.float64)
    xm, rm, w = np.isnan(x), np.isnan(r), _weights(depth)
    tables = tables_of(nodes, max(nf, int(nodes[:, :, 3].max()) + 1), _SCAN_LEAVES)
    scanned = tables[-1] & scan
    if scanned.any():
        part = tuple(np.ascontiguousarray(a[scanned]) for a in tables)
        cells = int(scanned.sum()) * max(1, int(part[3].max()))
        block = max(1, min(len(r), _DIRECTION_CELLS // cells))
        scans(np.ascontiguousarray(nodes[scanned]), np.ascontiguousarray(thres[scanned]),
              np.ascontiguousarray(values[scanned]), part, x, xm, outs, r, rm, w, block, phi)
    if not scanned.all():
        walked = ~scanned
        t_nodes = np.ascontiguousarray(thres[walked])
        block = max(1, min(len(r), _DIRECTION_CELLS // max(1, t_nodes.size)))
        walks(np.ascontiguousarray(nodes[walked]), t_nodes,
              np.ascontiguousarray(values[walked]), depth, x, xm, outs, r, rm, w, block, phi)
    phi /= len(r)
    phi[:, nf] += np.asarray(model.base_offset, dtype=np.float64).reshape(-1)[outs]
    return phi
