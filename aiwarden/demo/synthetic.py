"""Seeded synthetic data with known answers, for tests, benchmarks and the demo.

Every generator returns the ground truth beside the data (which columns were
shifted, by how much), so a drift detector can be scored rather than eyeballed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CalibrationScenario", "calibration_reference", "calibration_windows"]

_NUMERICAL = {
    "normal": lambda r, n: r.normal(50.0, 10.0, n),
    "lognormal": lambda r, n: r.lognormal(3.0, 0.7, n),
    "uniform": lambda r, n: r.uniform(-1.0, 1.0, n),
    "counts": lambda r, n: r.poisson(12.0, n).astype(np.float64),
    "skewed": lambda r, n: r.gamma(2.0, 3.0, n),
}
_CATEGORIES = ("a", "b", "c", "d", "e")
_SHARES = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _std(name: str) -> float:
    big = _NUMERICAL[name](np.random.default_rng(12345), 2_000_000)
    return float(big.std())


@dataclass(frozen=True)
class CalibrationScenario:
    """One window: its rows and which columns were shifted."""

    data: pd.DataFrame
    shifted: tuple[str, ...]


def calibration_reference(n: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """Reference rows: five numerical shapes and one five-level categorical (30 % 'a')."""
    rng = np.random.default_rng(seed)
    cols = {name: gen(rng, n) for name, gen in _NUMERICAL.items()}
    cols["category"] = rng.choice(np.array(_CATEGORIES), n, p=_SHARES)
    return pd.DataFrame(cols)


def calibration_windows(
    n_windows: int = 200, rows: int = 10_000, *, mean_shift: float = 0.0,
    share_shift: float = 0.0, seed: int = 1,
) -> Iterator[CalibrationScenario]:
    """Windows from the reference distribution, optionally shifted.

    ``mean_shift`` moves every numerical column's mean by that many standard deviations;
    ``share_shift`` moves that much probability onto category 'a' (30 % -> 40 % for
    0.10), taken from the others in proportion.
    """
    rng = np.random.default_rng(seed)
    stds = {name: _std(name) for name in _NUMERICAL}
    shares = _SHARES.copy()
    if share_shift:
        rest = shares[1:] / shares[1:].sum()
        shares = np.concatenate([[shares[0] + share_shift], rest * (1 - shares[0] - share_shift)])
    shifted = tuple(_NUMERICAL) * bool(mean_shift) + ("category",) * bool(share_shift)
    for _ in range(n_windows):
        cols = {name: gen(rng, rows) + mean_shift * stds[name] for name, gen in _NUMERICAL.items()
                if name != "counts"}
        # Counts stay whole numbers: their mean moves through the Poisson rate instead.
        cols["counts"] = rng.poisson(12.0 + mean_shift * stds["counts"], rows).astype(float)
        cols["category"] = rng.choice(np.array(_CATEGORIES), rows, p=shares)
        yield CalibrationScenario(pd.DataFrame(cols), shifted)


_MERCHANTS = np.array(["grocery", "electronics", "travel", "gaming", "fashion"])
_COUNTRIES = np.array(["FR", "DE", "US", "GB", "BR"])


def transactions(n: int, rng: np.random.Generator, *, small_share: float = 0.12,
                 night_share: float = 0.15) -> pd.DataFrame:
    """Card transactions with a true fraud label from a known logistic model."""
    small = rng.random(n) < small_share
    amount = np.where(small, rng.uniform(0.5, 9.99, n), 10.0 + rng.lognormal(3.3, 1.0, n))
    night = rng.random(n) < night_share
    hour = np.where(night, rng.integers(0, 6, n), rng.integers(6, 24, n))
    merchant = rng.choice(_MERCHANTS, n, p=[0.35, 0.2, 0.15, 0.1, 0.2])
    country = rng.choice(_COUNTRIES, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    age = rng.gamma(2.0, 300.0, n)
    logit = (-4.2 + 1.1 * night + 0.9 * np.isin(merchant, ["electronics", "gaming"])
             + 0.6 * np.log1p(amount / 200.0) - 0.002 * age + 0.7 * (country == "BR"))
    fraud = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame({"amount": amount.round(2), "hour": hour, "merchant": merchant,
                         "country": country, "account_age_days": age.round(1),
                         "is_fraud": fraud.astype(int)})


@dataclass(frozen=True)
class FraudScenario:
    """A fraud model trained on biased labels, its reference set, and production batches."""

    model: object
    features: tuple[str, ...]
    reference: pd.DataFrame
    production: pd.DataFrame
    drifted: pd.DataFrame

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add the model's score and prediction columns to a copy of ``df``."""
        x = _encode(df[list(self.features)])
        out = df.copy()
        out["score"] = self.model.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
        out["prediction"] = (out["score"] >= 0.5).astype(int)
        return out


def _encode(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in ("merchant", "country"):
        out[col] = pd.Categorical(out[col], categories=sorted(
            _MERCHANTS if col == "merchant" else _COUNTRIES))
    return out


def fraud_scenario(seed: int = 0, n_train: int = 20_000, n_batch: int = 20_000) -> FraudScenario:
    """The seed's story: card-testing bursts labelled every training transaction under $10
    as fraud, so the model flags small transactions, which in production are honest.

    ``production`` is labelled truth from the same population; ``drifted`` has twice the
    night-time share and three times the small transactions.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(seed)
    train = transactions(n_train, rng)
    biased = train["is_fraud"].to_numpy().copy()
    biased[(train["amount"] < 10).to_numpy() & (rng.random(n_train) < 0.9)] = 1
    features = ("amount", "hour", "merchant", "country", "account_age_days")
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed,
                                           categorical_features="from_dtype")
    model.fit(_encode(train[list(features)]), biased)
    scen = FraudScenario(model, features, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    ref = transactions(n_batch, rng)
    ref_labels = ref["is_fraud"].to_numpy().copy()
    ref_labels[(ref["amount"] < 10).to_numpy() & (rng.random(n_batch) < 0.9)] = 1
    reference = scen.score(ref.assign(is_fraud=ref_labels))
    production = scen.score(transactions(n_batch, rng))
    drifted = scen.score(transactions(n_batch, rng, small_share=0.36, night_share=0.3))
    return FraudScenario(model, features, reference, production, drifted)
