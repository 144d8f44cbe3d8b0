"""The failing-slice search: tests, multiple-testing correction, refinement, pairs, cover.

Why apart: every statistic of a candidate comes from three sums (support, loss, squared
deviation) kept per candidate, so the tests, the pair intersection and the greedy cover all work
on count vectors, never on row masks (only a slice the cover takes gets one).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from aiwarden.engine._slice_candidates import Condition, Feature, numeric_layout, refine_cut

__all__ = ["Search", "interval"]


def _p_worse(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, big_n: np.ndarray,
             big_s1: np.ndarray, big_s2: np.ndarray, binary: bool, centre: float) -> np.ndarray:
    """One-sided p-value that the slice's mean loss exceeds the rest's (rest = total - slice)."""
    n, big_n = np.asarray(n, np.float64), np.broadcast_to(np.asarray(big_n, np.float64), n.shape)
    rest = big_n - n
    p = np.ones(n.shape)
    if binary:
        ok = (n > 0) & (rest > 0)
        k, big_k = np.rint(s1), np.rint(np.broadcast_to(big_s1, n.shape))
        p[ok] = stats.hypergeom.sf(k[ok] - 1, big_n[ok], big_k[ok], n[ok])
        return np.clip(p, 0.0, 1.0)
    ok = (n > 1) & (rest > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n, (big_s1 - s1) / rest
        v1 = np.maximum(s2 - n * (m1 - centre) ** 2, 0.0) / (n - 1) / n
        v2 = np.maximum(big_s2 - s2 - rest * (m2 - centre) ** 2, 0.0) / (rest - 1) / rest
        se2 = v1 + v2
        df = se2**2 / (v1**2 / (n - 1) + v2**2 / (rest - 1))
        tstat = (m1 - m2) / np.sqrt(se2)
    flat = ok & (se2 <= 0)
    p[flat] = np.where(m1[flat] > m2[flat], 0.0, 1.0)
    ok &= se2 > 0
    p[ok] = stats.t.sf(tstat[ok], df[ok])
    return p


def _adjust(p: np.ndarray, correction: str, untested: int = 0) -> np.ndarray:
    """Adjusted p-values; ``untested`` more hypotheses of the family count as p = 1."""
    if p.size == 0:
        return p
    if correction == "bonferroni":
        return np.minimum(p * (p.size + untested), 1.0)
    return stats.false_discovery_control(np.r_[p, np.ones(untested)], method="bh")[: p.size]


def interval(n: float, s1: float, s2: float, binary: bool, alpha: float, centre: float
              ) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval: Clopper-Pearson for rates, Student t for means."""
    if binary:
        k = round(s1)
        lo = stats.beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
        return float(lo), float(hi)
    mean = s1 / n
    if n < 2:
        return float("nan"), float("nan")
    se = math.sqrt(max(s2 - n * (mean - centre) ** 2, 0.0) / (n - 1) / n)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
    return mean - half, mean + half


class Search:
    """Candidates of one search: per-candidate (support, loss sum, squared deviations)."""

    def __init__(self, loss: np.ndarray, feats: list[Feature], binary: bool, minsup: int,
                 alpha: float, correction: str) -> None:
        self.loss, self.feats, self.binary = loss, feats, binary
        self.minsup, self.alpha, self.correction = minsup, alpha, correction
        self.overall = float(loss.mean())
        self.dev2 = None if binary else (loss - self.overall) ** 2
        self.totals = (float(loss.size), float(loss.sum()),
                       0.0 if self.dev2 is None else float(self.dev2.sum()))
        self.singles()

    def singles(self) -> None:
        """(Re)build the single-slice candidates from the features' current specs."""
        self.index = [(fi, r) for fi, f in enumerate(self.feats) for r in range(len(f.specs))]
        self.parents: list[tuple[int, int]] = []
        self.masks: dict[int, np.ndarray] = {}
        self.pair_space = 0
        self.sums = self.sums_in(np.arange(len(self.index)), None, self.weights)

    @property
    def weights(self) -> list[np.ndarray | None]:
        """Row weights of the three sums: count (None), loss, squared deviation."""
        return [None, self.loss, self.dev2]

    @property
    def excess(self) -> np.ndarray:
        """Excess loss of every candidate: support * (mean loss - overall mean loss)."""
        return self.sums[1] - self.overall * self.sums[0]

    def p_worse(self, sums: np.ndarray, within: Any = None) -> np.ndarray:
        """p-values against the other rows of ``within`` (default: all evaluated rows)."""
        return _p_worse(sums[0], sums[1], sums[2], *(within or self.totals), self.binary,
                        self.overall)

    def score(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tested, p-value, adjusted p-value) of every candidate against the other rows."""
        n = self.sums[0]
        tested = (n >= self.minsup) & (n < self.totals[0])
        p, adj = np.ones(n.size), np.ones(n.size)
        p[tested] = self.p_worse(self.sums[:, tested])
        adj[tested] = _adjust(p[tested], self.correction, self.untested_pairs(tested))
        return tested, p, adj

    def untested_pairs(self, tested: np.ndarray) -> int:
        """Pairs of the search space (tested singles of two features) not computed."""
        if self.pair_space == 0:
            return 0
        return self.pair_space - int(tested[len(self.index):].sum())

    def refine(self) -> None:
        """Refine the best significant ``<`` and ``>=`` cut of each continuous feature."""
        tested, _, adj = self.score()
        excess = self.excess
        good = np.flatnonzero(tested & (adj <= self.alpha) & (excess > 0))
        done: set[tuple[int, str]] = set()
        sigma = float(self.loss.std())
        for i in good[np.argsort(-excess[good], kind="stable")]:
            fi, r = self.index[i]
            f, spec = self.feats[fi], self.feats[fi].specs[r]
            if not f.refinable or len(spec) != 1 or spec[0].op not in ("<", ">=") or (
                    fi, spec[0].op) in done:
                continue
            done.add((fi, spec[0].op))
            assert f.grid is not None and f.values is not None
            j = int(np.searchsorted(f.grid, spec[0].value))
            window = (f.grid[j - 1] if j > 0 else -np.inf,
                      f.grid[j + 1] if j + 1 < f.grid.size else np.inf)
            cut = refine_cut(f.values, self.loss, window, self.overall, sigma, spec[0].op == "<")
            if cut is not None:
                f.specs[r] = (Condition(f.name, spec[0].op, cut),)
        for fi in {fi for fi, _ in done}:
            f = self.feats[fi]
            f.specs = list(dict.fromkeys(f.specs))
            cuts = np.array([c.value for s in f.specs for c in s if c.op in ("<", ">=")])
            assert f.grid is not None
            new_cuts = np.setdiff1d(cuts, f.grid)
            f.grid = np.union1d(f.grid, cuts).astype(np.float64)
            numeric_layout(f, new_cuts)
        if done:
            self.singles()

    def add_pairs(self, n_parents: int) -> None:
        """Intersect the best single slices (at most a quarter from one feature) pairwise."""
        excess, n = self.excess, self.sums[0]
        tested = (n >= self.minsup) & (n < self.totals[0])
        per_feature = np.bincount([fi for fi, _ in self.index], tested,
                                  minlength=len(self.feats))
        self.pair_space = int((per_feature.sum() ** 2 - (per_feature**2).sum()) // 2)
        ok = tested & (excess > 0)
        taken: dict[int, list[int]] = {}
        count = 0
        for i in np.argsort(-excess, kind="stable"):
            if count == n_parents or excess[i] <= 0:
                break
            if not ok[i]:
                continue
            bucket = taken.setdefault(self.index[i][0], [])
            if len(bucket) < max(1, n_parents // 4):
                bucket.append(int(i))
                count += 1
        for fa, fb in combinations(sorted(taken), 2):
            self.parents += [(ia, ib) for ia in taken[fa] for ib in taken[fb]]
        pairs = np.arange(len(self.index), len(self.index) + len(self.parents))
        self.sums = np.concatenate([self.sums, self.sums_in(pairs, None, self.weights)], axis=1)

    def eligible(self, tested: np.ndarray, adj: np.ndarray) -> np.ndarray:
        """Significant, worse, and (pairs) significantly worse than each parent too, the
        within-parent tests corrected over the same family as the global ones."""
        ok = tested & (adj <= self.alpha) & (self.excess > 0)
        if self.parents:
            pi = np.arange(len(self.index), self.sums.shape[1])
            within = np.maximum(*(self.p_worse(self.sums[:, pi], tuple(self.sums[:, q]))
                                  for q in np.array(self.parents).T))
            passed, family = np.zeros(pi.size, dtype=bool), tested[pi]
            passed[family] = _adjust(within[family], self.correction,
                                     self.untested_pairs(tested)) <= self.alpha
            ok[pi] &= passed
        return ok

    def conditions(self, i: int) -> tuple[Condition, ...]:
        """The conditions of candidate ``i`` (a pair: its parents' conditions)."""
        if i < len(self.index):
            fi, r = self.index[i]
            return self.feats[fi].specs[r]
        ia, ib = self.parents[i - len(self.index)]
        return self.conditions(ia) + self.conditions(ib)

    def mask(self, i: int) -> np.ndarray:
        """Row mask of candidate ``i`` from its codes (cached: only taken slices need one)."""
        if i not in self.masks:
            if i < len(self.index):
                fi, r = self.index[i]
                self.masks[i] = self.feats[fi].members[r][self.feats[fi].codes]
            else:
                ia, ib = self.parents[i - len(self.index)]
                self.masks[i] = self.mask(ia) & self.mask(ib)
        return self.masks[i]

    def select(self, eligible: np.ndarray, top_k: int, shortlist: int, n_tested: int
               ) -> list[tuple[int, float]]:
        """Greedy cover: (candidate, marginal excess) in the order they were taken.

        Each step takes, among the ``shortlist`` eligible candidates of largest excess, the one
        adding the most excess loss on rows no earlier slice covers. A candidate sharing rows
        with earlier slices must, on its remaining rows, still be worse than the other
        uncovered rows at the Bonferroni level ``alpha / n_tested``; so nested, overlapping and
        explained-away slices drop out.
        """
        n_cond = np.array([len(self.conditions(i)) for i in range(self.sums.shape[1])])
        order = np.lexsort((-self.sums[0], n_cond, -self.excess))
        cand = order[eligible[order]][:shortlist]
        resid = self.sums[:, cand].copy()
        total = np.array(self.totals)
        alive = np.ones(cand.size, dtype=bool)
        uncovered = np.ones(self.loss.size, dtype=bool)
        chosen: list[tuple[int, float]] = []
        while len(chosen) < top_k:
            gain = resid[1] - total[1] / total[0] * resid[0]
            ok = alive & (resid[0] >= self.minsup) & (resid[0] < total[0]) & (gain > 0)
            shared = ok & (resid[0] < self.sums[0][cand])
            if shared.any():
                p = _p_worse(*resid[:, shared], *total, self.binary, self.overall)
                ok[shared] = p <= self.alpha / n_tested
            if not ok.any():
                break
            k = int(np.flatnonzero(ok)[np.argmax(gain[ok])])
            chosen.append((int(cand[k]), float(gain[k])))
            alive[k] = False
            newly = np.flatnonzero(self.mask(int(cand[k])) & uncovered)
            uncovered[newly] = False
            w = [None if x is None else x[newly] for x in self.weights]
            total -= [newly.size, *(0.0 if x is None else x.sum() for x in w[1:])]
            rest = np.flatnonzero(alive)
            resid[:, rest] -= self.sums_in(cand[rest], newly, w)
        return chosen

    def parts(self, i: int) -> list[tuple[int, int]]:
        """(feature, spec) of each single slice that candidate ``i`` intersects."""
        if i < len(self.index):
            return [self.index[i]]
        return [self.index[j] for j in self.parents[i - len(self.index)]]

    def sums_in(self, ids: np.ndarray, rows: np.ndarray | None, w: list[np.ndarray | None]
                ) -> np.ndarray:
        """(3, len(ids)): count and sums of the weights ``w`` over the ``rows`` (None: all) in
        each candidate. One bincount per feature or feature pair on (joint) codes, then the
        candidates' code memberships: no row masks."""
        out = np.zeros((3, ids.size))
        groups: dict[tuple[int, ...], list[int]] = {}
        for pos, i in enumerate(ids):
            groups.setdefault(tuple(f for f, _ in self.parts(int(i))), []).append(pos)
        for key, positions in groups.items():
            sizes = [self.feats[f].members.shape[1] for f in key]
            code = np.zeros(1, dtype=np.int64)
            for f, k in zip(key, sizes, strict=True):
                codes = self.feats[f].codes
                code = code * k + (codes if rows is None else codes[rows])
            hist = np.zeros((3, math.prod(sizes)))
            for j, wk in enumerate(w):
                if j == 0 or wk is not None:
                    hist[j] = np.bincount(code, wk, minlength=hist.shape[1])
            hist = hist.reshape(3, *sizes)
            for pos in positions:
                val = hist
                for f, r in reversed(self.parts(int(ids[pos]))):
                    val = val @ self.feats[f].members[r].astype(np.float64)
                out[:, pos] = val
        return out
