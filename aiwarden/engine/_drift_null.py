"""The drift rule's noise floor: what a column's distance looks like when nothing changed.

Computed once when the reference is fitted, stored with it, and read at every compare
(a cold alert cycle after a restart then costs what a warm one does).

Wasserstein-1 (the default numerical method) has an analytic null. Between two samples
of one distribution, the CDF difference at the reference's bin edges is, to first order,
a Brownian bridge ``B(F)`` scaled by ``1 / sqrt(n_eff)``, ``n_eff = n_ref n_cur / (n_ref +
n_cur)``. The distance is a weighted sum of ``|B(F_j)|``, whose mean and variance are
exact sums over pairs of edges (``E|X||Y| = 2/pi (sqrt(1 - r^2) + r asin r)`` for unit
normals with correlation ``r``), and a lognormal with those two moments gives its tail
(a gamma, as used before, was twice too liberal at the 0.999 level; tested against
40,000 simulated windows per shape and size).

Small windows: a window of ``n`` rows cannot estimate the reference's outer ``5 / n`` of
mass on either side, and a single value there (a heavy tail, or one value beyond the
reference's range) moved the whole distance. The deciding distance therefore integrates
``|F - G|`` only between the reference quantiles ``a`` and ``1 - a``, ``a = 5 / n``
(the ``span``): values beyond count as being at its edge, like every other value there,
so one tail value cannot decide. Once ``a`` is below one reference row, nothing is
trimmed and mass beyond the reference's range counts in full. Spans are fixed on a grid
of window sizes (powers of two), so the null and the measured distance always
use the same one.

Other methods (Jensen–Shannon for categories, or any method chosen per column) use a
Monte Carlo null on the same grid: two samples of the grid size drawn from the reference
histogram (with the Good–Turing unseen mass for categories), a gamma fit of the squared
distance, and the ``sqrt(n_eff)`` scaling between grid sizes, which is exact in the
Gaussian regime where the simulation stops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["GRID", "ColumnNull", "bridge_null", "simulated_null", "trim_level"]

TRIM = 5.0  # outer mass per side a window cannot estimate: TRIM / n rows
MAX_TRIM = 0.25
GRID = tuple(2**i for i in range(28))  # window sizes 1 .. 134M rows


def grid_index(n_cur: int) -> int:
    """The largest grid size not above ``n_cur`` (the first for smaller windows)."""
    return max(int(np.searchsorted(GRID, n_cur, side="right")) - 1, 0)


def trim_level(n: int) -> float:
    return min(TRIM / n, MAX_TRIM)


def _n_eff(n_ref: int, n_cur: int) -> float:
    return n_ref * n_cur / (n_ref + n_cur)


@dataclass(frozen=True, eq=False)
class ColumnNull:
    """One column's null for one method over the window-size grid.

    ``kind`` "bridge": ``mean``/``var`` are per unit ``n_eff`` and ``spans`` the trimmed
    term range per grid size (``None`` where nothing is trimmed). ``kind`` "simulated":
    ``mean``/``var`` are the moments of the distance to ``power`` at each grid size;
    sizes past the last one scale by ``sqrt(n_eff)``.
    """

    method: str
    kind: str
    n_ref: int
    mean: np.ndarray
    var: np.ndarray
    spans: tuple[tuple[int, int] | None, ...] = ()
    power: float = 2.0
    n_simulations: int = 0

    def span(self, n_cur: int) -> tuple[int, int] | None:
        if self.kind != "bridge":
            return None
        return self.spans[min(grid_index(n_cur), len(self.spans) - 1)]

    def quantile(self, n_cur: int, q: float) -> float:
        """The ``q`` quantile of the distance between same-source samples of these sizes."""
        if n_cur <= 0 or self.n_ref <= 0:
            return 0.0
        g = grid_index(n_cur)
        if self.kind == "bridge":
            g = min(g, len(self.mean) - 1)
            m, v = self.mean[g], self.var[g]
            if m <= 0:
                return 0.0
            sigma2 = np.log1p(v / (m * m))
            scale = m / np.sqrt(_n_eff(self.n_ref, n_cur))
            return float(scale * np.exp(np.sqrt(sigma2) * special.ndtri(q) - sigma2 / 2))
        last = len(self.mean) - 1
        if g >= last:  # beyond the simulated sizes: the Gaussian regime, 1/sqrt(n_eff)
            stretch = np.sqrt(_n_eff(self.n_ref, GRID[last]) / _n_eff(self.n_ref, n_cur))
            return _gamma_quantile(self.mean[last], self.var[last], q, self.power) * float(stretch)
        # Between two simulated sizes: log-linear in the size.
        lo = _gamma_quantile(self.mean[g], self.var[g], q, self.power)
        hi = _gamma_quantile(self.mean[g + 1], self.var[g + 1], q, self.power)
        t = float(np.log2(max(n_cur, GRID[0]) / GRID[g]))
        return float(lo ** (1 - t) * hi**t) if lo > 0 and hi > 0 else max(lo, hi)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "n_ref": self.n_ref,
                "mean": self.mean.tolist(), "var": self.var.tolist(),
                "spans": [None if s is None else list(s) for s in self.spans],
                "power": self.power, "n_simulations": self.n_simulations}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnNull:
        return cls(str(d["method"]), str(d["kind"]), int(d["n_ref"]),
                   np.asarray(d["mean"], dtype=np.float64),
                   np.asarray(d["var"], dtype=np.float64),
                   tuple(None if s is None else (int(s[0]), int(s[1])) for s in d["spans"]),
                   float(d["power"]), int(d["n_simulations"]))


def _gamma_quantile(mean: float, var: float, q: float, power: float) -> float:
    """Quantile of a distance whose ``power``-th power is gamma with these moments."""
    if mean <= 0:
        return 0.0
    if var <= 0:
        return float(mean ** (1.0 / power))
    shape, scale = mean * mean / var, var / mean
    return float(special.gammaincinv(shape, q) * scale) ** (1.0 / power)


def _spans(cdf: np.ndarray, discrete: bool, n_ref: int) -> list[tuple[int, int] | None]:
    """Term range kept at each grid size: terms whose CDF points lie in ``[a, 1 - a]``.

    A continuous term ``t`` is the bin between edges ``t`` and ``t + 1``; a discrete term
    ``t`` is the step after atom ``t`` (CDF point ``t + 1``). The term holding the median
    is always kept, so a two-level column with a rare level is still measured.
    """
    pts = np.stack([cdf[:-1], cdf[1:]]) if not discrete else np.stack([cdf[1:], cdf[1:]])
    lo_pt, hi_pt = pts.min(axis=0), pts.max(axis=0)
    middle = int(np.argmin(np.abs(0.5 * (lo_pt + hi_pt) - 0.5)))
    out: list[tuple[int, int] | None] = []
    for n in GRID:
        a = trim_level(n)
        if a * n_ref < 1.0:
            out.append(None)
            break
        keep = np.flatnonzero((lo_pt >= a - 1e-12) & (hi_pt <= 1.0 - a + 1e-12))
        lo = min(int(keep[0]), middle) if len(keep) else middle
        hi = max(int(keep[-1]), middle) + 1 if len(keep) else middle + 1
        out.append((lo, hi))
    return out


def bridge_null(ref_counts: np.ndarray, widths: np.ndarray, discrete: bool,
                scale: float) -> ColumnNull:
    """Analytic Wasserstein null from the reference's collapsed counts
    ``[below, bins..., above]`` and the bin widths (or, discrete, the gaps between atoms)."""
    n_ref = int(ref_counts.sum())
    p = ref_counts / max(n_ref, 1)
    cdf = np.clip(np.cumsum(p)[:-1], 0.0, 1.0)  # at each interior edge
    spans = _spans(cdf, discrete, n_ref)
    w = np.asarray(widths, dtype=np.float64) / scale
    sd = np.sqrt(cdf * (1.0 - cdf))
    lo_f, hi_f = np.minimum.outer(cdf, cdf), np.maximum.outer(cdf, cdf)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sqrt(lo_f * (1.0 - hi_f) / (hi_f * (1.0 - lo_f)))
    rho = np.clip(np.nan_to_num(rho, nan=0.0), 0.0, 1.0)
    pair = (2.0 / np.pi) * (np.sqrt(1.0 - rho * rho) + rho * np.arcsin(rho))
    means, variances = [], []
    cache: dict[tuple[int, int] | None, tuple[float, float]] = {}
    for span in spans:
        if span not in cache:
            lo, hi = (0, len(w)) if span is None else span
            c = np.zeros(len(cdf))
            if discrete:
                c[lo + 1:hi + 1] = w[lo:hi]
            else:
                c[lo:hi] += w[lo:hi] / 2
                c[lo + 1:hi + 1] += w[lo:hi] / 2
            cs = c * sd
            m = float(np.sqrt(2.0 / np.pi) * cs.sum())
            cache[span] = (m, max(float(cs @ pair @ cs) - m * m, 0.0))
        means.append(cache[span][0])
        variances.append(cache[span][1])
    return ColumnNull("wasserstein", "bridge", n_ref, np.array(means), np.array(variances),
                      tuple(spans))


def simulated_null(
    method: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], p_ref: np.ndarray,
    p_cur: np.ndarray, n_ref: int, n_sim: int, power: float,
    rng_for: Callable[[int], np.random.Generator],
) -> ColumnNull:
    """Monte Carlo moments at each grid size until every used bin expects 50+ counts."""
    from aiwarden.engine.drift import null_moments  # the sampler, shared with instability

    means, variances = [], []
    used = p_cur > 0
    p_min = float((p_cur[used] / p_cur.sum()).min(initial=1.0))
    for n in GRID:
        (m, v), = null_moments(p_ref, n_ref, n, {method: fn}, n_sim, rng_for(n),
                               p_cur).values()
        means.append(m)
        variances.append(v)
        if n * p_min >= 50 and n_ref * p_min >= 50:
            break
    return ColumnNull(method, "simulated", n_ref, np.array(means), np.array(variances),
                      power=power, n_simulations=n_sim)
