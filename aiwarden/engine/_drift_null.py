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
Monte Carlo null at window sizes 1, 4, 16, ... rows: samples drawn from the reference
histogram (with the Good–Turing unseen mass for categories), a gamma fit of the squared
distance, log-linear between the two sizes around a window. The fit simulates sizes up to
``FIT_SIZES_UP_TO`` rows for columns of at most ``FIT_MAX_BINS`` bins; a larger window (or
a wider column, whose simulation costs ~25 ms a size at 1,000 categories) simulates its
own size (rounded to 5 %, so windows within 5 % share it) on first use, kept with the
reference; once every bin expects 50+ counts the distance scales exactly as
``1 / sqrt(n_eff)`` and nothing more is simulated.
(An analytic chi-square null for Jensen–Shannon was tried and rejected: on sparse
many-category columns it was off by a factor of two either way.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from aiwarden.engine.drift import _multinomial  # the sampler, shared with instability

__all__ = ["GRID", "ColumnNull", "bridge_null", "simulated_null", "trim_level"]

TRIM = 5.0  # outer mass per side a window cannot estimate: TRIM / n rows
MAX_TRIM = 0.25
GRID = tuple(2**i for i in range(28))  # window sizes 1 .. 134M rows
FIT_SIZES_UP_TO = 4096
FIT_MAX_BINS = 64
GAUSSIAN_COUNT = 50  # every bin expecting this many counts: the distance scales as 1/sqrt(n)


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
    sizes: tuple[int, ...] = ()  # "simulated": the window sizes simulated
    gaussian: bool = False  # "simulated": the last size is in the Gaussian regime

    def covers(self, n_cur: int) -> bool:
        """Whether this null answers for ``n_cur`` rows without simulating another size."""
        if self.kind == "bridge" or (self.gaussian and n_cur >= self.sizes[-1]):
            return True
        return sized(n_cur) in self.sizes or all(n in self.sizes for n in bracket(n_cur))

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
        sizes = self.sizes
        own = sized(n_cur)
        if own in sizes:
            i = sizes.index(own)
            return _gamma_quantile(self.mean[i], self.var[i], q, self.power)
        if n_cur >= sizes[-1]:  # beyond the simulated sizes: the Gaussian regime
            stretch = np.sqrt(_n_eff(self.n_ref, sizes[-1]) / _n_eff(self.n_ref, n_cur))
            return _gamma_quantile(self.mean[-1], self.var[-1], q, self.power) * float(stretch)
        g = min(max(int(np.searchsorted(sizes, n_cur, side="right")) - 1, 0), len(sizes) - 2)
        lo = _gamma_quantile(self.mean[g], self.var[g], q, self.power)
        hi = _gamma_quantile(self.mean[g + 1], self.var[g + 1], q, self.power)
        t = float(np.log(max(n_cur, sizes[0]) / sizes[g]) / np.log(sizes[g + 1] / sizes[g]))
        return float(lo ** (1 - t) * hi**t) if lo > 0 and hi > 0 else max(lo, hi)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "n_ref": self.n_ref,
                "mean": self.mean.tolist(), "var": self.var.tolist(),
                "spans": [None if s is None else list(s) for s in self.spans],
                "power": self.power, "n_simulations": self.n_simulations,
                "sizes": list(self.sizes), "gaussian": self.gaussian}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnNull:
        return cls(str(d["method"]), str(d["kind"]), int(d["n_ref"]),
                   np.asarray(d["mean"], dtype=np.float64),
                   np.asarray(d["var"], dtype=np.float64),
                   tuple(None if s is None else (int(s[0]), int(s[1])) for s in d["spans"]),
                   float(d["power"]), int(d["n_simulations"]),
                   tuple(int(n) for n in d.get("sizes", ())), bool(d.get("gaussian", False)))


def sized(n_cur: int) -> int:
    """``n_cur`` rounded to a 5 % step: the size simulated for it on first use."""
    return max(1, round(float(np.exp(round(np.log(max(n_cur, 1)) * 20) / 20))))


def bracket(n_cur: int) -> tuple[int, ...]:
    """The simulated sizes (powers of 4) a window of ``n_cur`` rows is interpolated between."""
    lo = 4 ** int(np.floor(np.log(max(n_cur, 1)) / np.log(4) + 1e-9))
    return (lo,) if lo == n_cur else (lo, 4 * lo)


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
    # corr(B(F_i), B(F_j)) = sqrt(odds_i / odds_j) for F_i <= F_j, odds = F / (1 - F)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_odds = np.log(cdf) - np.log1p(-cdf)
        rho = np.exp(-0.5 * np.abs(np.subtract.outer(log_odds, log_odds)))
    rho = np.nan_to_num(rho, nan=0.0)  # edges at F = 0 or 1: no variance, any correlation
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
    rng_for: Callable[[int], np.random.Generator], sizes: tuple[int, ...],
    previous: ColumnNull | None = None,
) -> ColumnNull:
    """Monte Carlo moments at ``sizes`` (added to ``previous``); sizes past the first in
    the Gaussian regime are skipped. Each size has its own seed, so its moments never
    depend on which sizes were simulated before.

    A column of more than ``FIT_MAX_BINS`` bins uses ``n_sim * FIT_MAX_BINS / bins`` draws
    (at least 50): its squared distance is a sum over many bins, nearly normal, whose
    quantile needs fewer draws for the same accuracy (at 1,000 bins the spread is ~5 % of
    the mean, so 50 draws place the 0.999 quantile within ~2 %)."""
    if n_ref <= 0 or p_ref.sum() <= 0 or p_cur.sum() <= 0:  # nothing to compare with
        return ColumnNull(method, "simulated", 0, np.zeros(1), np.zeros(1), power=power,
                          n_simulations=n_sim, sizes=(1,), gaussian=True)
    p = p_ref / p_ref.sum()
    q = p_cur / p_cur.sum()
    cum = np.cumsum(q)
    q_min = float(q[q > 0].min(initial=1.0))
    p_min = float(p[p > 0].min(initial=1.0))
    done = dict(zip(previous.sizes, zip(previous.mean, previous.var, strict=True),
                    strict=True)) if previous else {}
    todo = [n for n in sorted(set(sizes)) if n not in done]
    draws = n_sim if len(q) <= FIT_MAX_BINS else max(50, n_sim * FIT_MAX_BINS // len(q))
    draws = min(draws, n_sim)
    ref = _multinomial(max(n_ref, 1), p, draws, rng_for(0)) if todo else None
    for n in todo:
        rng = rng_for(n)
        if n < len(q):  # few rows: draw the rows themselves, cheaper than the bins
            idx = np.minimum(np.searchsorted(cum, rng.random((draws, n)) * cum[-1]), len(q) - 1)
            flat = idx + (np.arange(draws) * len(q))[:, None]
            cur = np.bincount(flat.ravel(), minlength=draws * len(q)).reshape(draws, len(q))
        else:
            cur = _multinomial(n, q, draws, rng)
        d = fn(ref, cur.astype(np.float64)) ** power
        done[n] = (float(d.mean()), float(d.var()))
        if n * q_min >= GAUSSIAN_COUNT and n_ref * p_min >= GAUSSIAN_COUNT:
            break  # larger windows scale as 1/sqrt(n_eff)
    keys = sorted(done)
    last = keys[-1] if keys else 0
    return ColumnNull(method, "simulated", n_ref, np.array([done[n][0] for n in keys]),
                      np.array([done[n][1] for n in keys]), power=power, n_simulations=n_sim,
                      sizes=tuple(keys),
                      gaussian=bool(keys) and last * q_min >= GAUSSIAN_COUNT
                      and n_ref * p_min >= GAUSSIAN_COUNT)


def fit_sizes(n_bins: int) -> tuple[int, ...]:
    """Sizes simulated when the reference is fitted: 1, 4, ... 4096 rows for narrow columns."""
    if n_bins > FIT_MAX_BINS:
        return ()
    return tuple(4**i for i in range(int(np.log(FIT_SIZES_UP_TO) / np.log(4)) + 1))
