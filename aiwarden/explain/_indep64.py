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
reference fail on the way to each node, visiting a tree in preorder and jumping over every
subtree neither can reach: it visits the walk's nodes at a load and an AND each, 0.3-0.5x
shap's CPU on trees of 15 to 4,000+ leaves (the walk: 1.2-1.6x; bench/explain.py). Only
trees with a path over 64 distinct features are walked.

Compiled with numba (a dependency of shap; also `aiwarden[fast]`) and cached on disk;
without numba the caller falls back to shap's own values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from aiwarden.engine._once import once

__all__ = ["interventional_values", "kernel"]

_FROM_NEITHER, _FROM_X_NOT_R, _FROM_R_NOT_X = 0, 1, 2


@lru_cache(maxsize=8)
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


def _preorder_py(t: int, nodes: np.ndarray, thres: np.ndarray, seen: np.ndarray,
                 path: np.ndarray, stack: np.ndarray, pre: np.ndarray, skip: np.ndarray,
                 right: np.ndarray, bit: np.ndarray, leaf: np.ndarray, leaf_feat: np.ndarray,
                 feat: np.ndarray, thr: np.ndarray, left_default: np.ndarray,
                 new: np.ndarray) -> tuple[int, int, bool]:
    """Tree ``t`` in preorder, what the scan reads: ``pre[k]`` the node at position k (its
    left child is at k + 1, its right at ``right[k]``, ``skip[k]`` is the position after
    its subtree), ``leaf[k]`` the leaf's number (-1 for a split), the split's feature,
    threshold and whether missing values go left, and ``bit[k]`` the bit of the split's
    feature on its path: bits number the distinct features of one root-to-leaf path in
    the order they first appear, so a tree may split on any number of features as long as
    no path has more than 64 (else ``ok`` is False and the tree is walked). Leaf ``l``'s
    bit b is feature ``leaf_feat[l, b]``. Returns (positions, leaves, ok)."""
    seen[:] = -1
    k_n = 0
    l_n = 0
    nb = 0
    ns = 1
    stack[0, 0], stack[0, 1], stack[0, 2] = 0, -1, 0  # (node, parent, 0 left/1 right/2 done)
    while ns > 0:
        ns -= 1
        node, parent, kind = stack[ns, 0], stack[ns, 1], stack[ns, 2]
        if kind == 2:  # leaving the subtree at position ``node``
            skip[node] = k_n
            if new[node]:
                nb -= 1
                seen[path[nb]] = -1
            continue
        k = k_n
        k_n += 1
        pre[k] = node
        if kind == 1:
            right[parent] = k
        if nodes[t, node, 0] < 0:
            leaf[k] = l_n
            for b in range(nb):
                leaf_feat[l_n, b] = path[b]
            l_n += 1
            skip[k] = k + 1
            continue
        leaf[k] = -1
        f = nodes[t, node, 3]
        feat[k] = f
        thr[k] = thres[t, node]
        left_default[k] = nodes[t, node, 2] == nodes[t, node, 0]
        new[k] = seen[f] < 0
        if new[k]:
            if nb == 64:
                return k_n, l_n, False
            seen[f] = nb
            path[nb] = f
            nb += 1
        bit[k] = seen[f]
        stack[ns, 0], stack[ns, 1], stack[ns, 2] = k, -1, 2
        stack[ns + 1, 0], stack[ns + 1, 1], stack[ns + 1, 2] = nodes[t, node, 1], k, 1
        stack[ns + 2, 0], stack[ns + 2, 1], stack[ns + 2, 2] = nodes[t, node, 0], k, 0
        ns += 3
    return k_n, l_n, True


def _fails_py(k_n: int, leaf: np.ndarray, feat: np.ndarray, thr: np.ndarray,
              left_default: np.ndarray, right: np.ndarray, bit: np.ndarray, v: np.ndarray,
              vm: np.ndarray, mask: np.ndarray, count: np.ndarray) -> None:
    """``mask[k]``: the bits of the features whose split on the way from the root to
    position k the row ``v`` does not follow (shap's test: missing -> the default child,
    ``v > threshold`` -> right, else left), ``count[k]`` how many. A leaf is reached
    taking each feature from x or from the reference iff no feature fails both."""
    one = np.uint64(1)
    mask[0] = 0
    count[0] = 0
    for k in range(k_n):
        if leaf[k] >= 0:
            continue
        f = feat[k]
        go_left = left_default[k] if vm[f] else not v[f] > thr[k]
        b = one << np.uint64(bit[k])
        mk = mask[k]
        ck = count[k]
        failed = ck if mk & b else ck + 1
        fail, follow = (right[k], k + 1) if go_left else (k + 1, right[k])
        mask[follow] = mk
        count[follow] = ck
        mask[fail] = mk | b
        count[fail] = failed


def _ctz_py(q: np.uint64) -> int:
    """The lowest set bit's index."""
    return (int(q) & -int(q)).bit_length() - 1


def _scans(nodes: np.ndarray, thres: np.ndarray, values: np.ndarray, x: np.ndarray,
           xm: np.ndarray, outs: np.ndarray, r: np.ndarray, rm: np.ndarray, w: np.ndarray,
           block: int, phi: np.ndarray) -> np.ndarray:
    """The same sums as :func:`_walks`, per leaf instead of per subtree: a leaf whose path
    the row x fails on features ``B`` and the reference on features ``A`` (disjoint, else
    the leaf is not reached) gives each feature of ``A`` (taken from x) ``v * w[n, m - 1]``
    and each of ``B`` ``-v * w[n, m]``, with ``m = |A|``, ``n = |A| + |B|``; the
    reference's own leaf (``A`` empty) goes to the base value. These are the terms
    ``tree_shap_indep`` adds up along its walk (its ``pos`` and ``neg``). Per tree, the
    fail masks of every node are computed once per reference (a block of ``block`` at a
    time) and once per row; each row-reference pair then scans the tree in preorder,
    jumping over a subtree as soon as x and the reference fail the same feature on the way
    to it: the nodes visited are the walk's, each a load and an AND. Returns which trees
    were scanned (the others have a path over 64 distinct features: walk them)."""
    n_trees, max_nodes = thres.shape
    nf = x.shape[1]
    n_ref = r.shape[0]
    n_out = values.shape[2]
    width = min(64, max(1, w.shape[0] - 2))  # distinct features on a path <= depth
    seen = np.full(max(nf, nodes[:, :, 3].max() + 1), -1, dtype=np.int32)
    path = np.zeros(64, dtype=np.int32)
    stack = np.zeros((max_nodes + 3, 3), dtype=np.int32)
    pre = np.zeros(max_nodes, dtype=np.int32)
    skip = np.zeros(max_nodes, dtype=np.int32)
    right = np.zeros(max_nodes, dtype=np.int32)
    bit = np.zeros(max_nodes, dtype=np.int32)
    leaf = np.zeros(max_nodes, dtype=np.int32)
    feat = np.zeros(max_nodes, dtype=np.int32)
    thr = np.zeros(max_nodes)
    left_default = np.zeros(max_nodes, dtype=np.bool_)
    new = np.zeros(max_nodes, dtype=np.bool_)
    max_leaves = max_nodes // 2 + 1
    leaf_feat = np.zeros((max_leaves, width), dtype=np.int32)
    leaf_value = np.zeros((max_leaves, n_out))
    nb_max = min(block, n_ref)
    mr = np.zeros((nb_max, max_nodes), dtype=np.uint64)
    cr = np.zeros((nb_max, max_nodes), dtype=np.uint8)
    mx = np.zeros(max_nodes, dtype=np.uint64)
    cx = np.zeros(max_nodes, dtype=np.uint8)
    own = np.zeros(n_out)
    one = np.uint64(1)
    scanned = np.zeros(n_trees, dtype=np.bool_)
    for t in range(n_trees):
        k_n, _, ok = _preorder(t, nodes, thres, seen, path, stack, pre, skip, right, bit,
                               leaf, leaf_feat, feat, thr, left_default, new)
        if not ok:
            continue
        scanned[t] = True
        for k in range(k_n):
            if leaf[k] >= 0:
                for o in range(n_out):
                    leaf_value[leaf[k], o] = values[t, pre[k], o]
        for j0 in range(0, n_ref, block):
            nb = min(n_ref, j0 + block) - j0
            own[:] = 0.0
            for j in range(nb):
                _fails(k_n, leaf, feat, thr, left_default, right, bit, r[j0 + j],
                       rm[j0 + j], mr[j], cr[j])
                for k in range(k_n):
                    if leaf[k] >= 0 and mr[j, k] == 0:  # the reference's own leaf
                        for o in range(n_out):
                            own[o] += leaf_value[leaf[k], o]
            for i in range(x.shape[0]):
                _fails(k_n, leaf, feat, thr, left_default, right, bit, x[i], xm[i], mx, cx)
                o = outs[i]
                acc = phi[i]
                acc[nf] += own[o]
                for j in range(nb):
                    k = 0
                    while k < k_n:
                        fr = mr[j, k]
                        fx = mx[k]
                        if fx & fr:
                            k = skip[k]
                            continue
                        lf = leaf[k]
                        k += 1
                        if lf < 0:
                            continue
                        m = np.int64(cr[j, k - 1])
                        n = m + cx[k - 1]
                        v = leaf_value[lf, o]
                        if m != 0:
                            share = v * w[n, m - 1]
                            q = fr
                            while q:
                                acc[leaf_feat[lf, _ctz(q)]] += share
                                q &= q - one
                        if m != n:
                            share = -v * w[n, m]
                            q = fx
                            while q:
                                acc[leaf_feat[lf, _ctz(q)]] += share
                                q &= q - one
    return scanned


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


# the compiled ones once kernel() ran: the ensemble loops call them
_pop: Any = _pop_py
_tree: Any = _tree_py
_directions: Any = _directions_py
_preorder: Any = _preorder_py
_fails: Any = _fails_py
_ctz: Any = _ctz_py


def kernel() -> Any:
    """The compiled (scans, walks) (numba, cached on disk), or None without numba."""
    return _compiled() or None


@once  # explanations run in several threads: one compiles, the others wait for it
def _compiled() -> Any:
    try:
        import numba
        from numba.cpython.unsafe.numbers import trailing_zeros
    except ImportError:
        return False
    inline = numba.njit(cache=True, nogil=True, inline="always")
    jit = numba.njit(cache=True, nogil=True)
    g = globals()
    g["_pop"] = inline(_pop_py)  # before _tree, which calls it
    g["_tree"] = inline(_tree_py)
    g["_fails"] = inline(_fails_py)
    g["_ctz"] = trailing_zeros
    g["_directions"] = jit(_directions_py)
    g["_preorder"] = jit(_preorder_py)
    return (jit(_scans), jit(_walks))


#: per-block memory, in entries: the walk keeps block x trees x nodes int32 directions
#: (32 MB), the scan block x nodes uint64 masks and uint8 counts of one tree (36 MB)
_DIRECTION_CELLS = 8_000_000
_MASK_CELLS = 4_000_000


def interventional_values(model: Any, x: np.ndarray, background: np.ndarray,
                          outs: np.ndarray | None = None, scan: bool = True
                          ) -> np.ndarray | None:
    """(rows, features + 1): each row's values for output ``outs[i]`` (default 0) then
    its base value, like shap's ``phi``, for shap's parsed ``TreeEnsemble`` ``model``
    (identity link) and float64 rows already cast the way the trees compare them. Trees
    are scanned (``_scans``) unless a path splits on more than 64 distinct features: those
    are walked as shap does (``_walks``; ``scan=False`` walks all: the tests compare
    both). None without numba."""
    compiled = kernel()
    if compiled is None:
        return None
    scans, walks = compiled
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
    xm, rm, w = np.isnan(x), np.isnan(r), _weights(max(depth, 64))
    scanned = np.zeros(limit, dtype=np.bool_)
    if scan:
        block = max(1, min(len(r), _MASK_CELLS // max(1, thres.shape[1])))
        scanned = scans(nodes, thres, values, x, xm, outs, r, rm, w, block, phi)
    if not scanned.all():
        walked = ~scanned
        t_nodes = np.ascontiguousarray(thres[walked])
        block = max(1, min(len(r), _DIRECTION_CELLS // max(1, t_nodes.size)))
        walks(np.ascontiguousarray(nodes[walked]), t_nodes,
              np.ascontiguousarray(values[walked]), depth, x, xm, outs, r, rm, w, block, phi)
    phi /= len(r)
    phi[:, nf] += np.asarray(model.base_offset, dtype=np.float64).reshape(-1)[outs]
    return phi
