"""PCA reconstruction drift on wide references: a thin or randomized SVD of the rows, bounded
components, cancellable; checked against scikit-learn's exact PCA on the raw data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from aiwarden.engine.multivariate import PCAReconstructionDrift
from aiwarden.errors import Cancelled, ParameterError


def low_rank(n: int, d: int, seed: int, rank: int = 5, noise: float = 0.5) -> pd.DataFrame:
    """``d`` columns driven by ``rank`` latent factors plus independent noise."""
    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(99).normal(size=(rank, d))
    x = rng.normal(size=(n, rank)) @ loadings + noise * rng.normal(size=(n, d))
    return pd.DataFrame(x, columns=[f"c{i}" for i in range(d)])


def sklearn_reference(reference: pd.DataFrame, current: pd.DataFrame, n_components: int
                      ) -> tuple[PCA, np.ndarray]:
    scaler = StandardScaler().fit(reference)
    pca = PCA(n_components=n_components, svd_solver="full").fit(scaler.transform(reference))
    cur = scaler.transform(current)
    return pca, cur - pca.inverse_transform(pca.transform(cur))


@pytest.mark.parametrize("shape", [(200, 1200), (800, 900)], ids=["exact", "randomized"])
def test_wide_fit_matches_sklearns_exact_pca(shape: tuple[int, int]) -> None:
    n, d = shape
    reference, current = low_rank(n, d, 1), low_rank(300, d, 2)
    drift = PCAReconstructionDrift(variance=0.65, n_chunks=4).fit(reference)
    result = drift.compare(current)
    full = PCA(n_components=0.65, svd_solver="full").fit(
        StandardScaler().fit_transform(reference))
    pca, residual = sklearn_reference(reference, current, full.n_components_)
    assert result.n_components == full.n_components_
    assert result.explained_variance == pytest.approx(pca.explained_variance_ratio_.sum(),
                                                      rel=1e-6)
    assert result.error == pytest.approx(np.linalg.norm(residual, axis=1).mean(), rel=1e-4)
    got = dict(zip(result.features, result.current_errors, strict=True))
    want = dict(zip(reference.columns, (residual**2).mean(axis=0), strict=True))
    assert got == pytest.approx(want, rel=1e-3)


def test_components_are_bounded_and_the_explained_share_says_so() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(size=(600, 40)), columns=[f"c{i}" for i in range(40)])
    current = pd.DataFrame(rng.normal(size=(200, 40)), columns=reference.columns)
    result = PCAReconstructionDrift(max_components=5).fit(reference).compare(current)
    pca, residual = sklearn_reference(reference, current, 5)
    assert result.n_components == 5
    assert result.explained_variance == pytest.approx(pca.explained_variance_ratio_.sum(),
                                                      rel=1e-9)
    assert result.explained_variance < 0.65
    assert result.error == pytest.approx(np.linalg.norm(residual, axis=1).mean(), rel=1e-9)


def test_max_components_is_checked_and_stored() -> None:
    with pytest.raises(ParameterError, match="max_components"):
        PCAReconstructionDrift(max_components=0)
    fitted = PCAReconstructionDrift(max_components=3).fit(low_rank(100, 10, 0))
    again = PCAReconstructionDrift.from_dict(fitted.to_dict())
    assert again.max_components == 3
    assert again.compare(low_rank(50, 10, 1)) == fitted.compare(low_rank(50, 10, 1))


@pytest.mark.parametrize("calls_before_stop", [0, 1, 5])
def test_should_stop_cancels_between_svds(calls_before_stop: int) -> None:
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > calls_before_stop

    with pytest.raises(Cancelled, match="should_stop"):
        PCAReconstructionDrift(n_chunks=10).fit(low_rank(100, 20, 0), should_stop=should_stop)
    assert len(asked) == calls_before_stop + 1  # it stopped at the first True
    # asked once before the subspace and once per chunk: 11 times in a full fit
    counted = []
    PCAReconstructionDrift(n_chunks=10).fit(low_rank(100, 20, 0),
                                            should_stop=lambda: bool(counted.append(1)))
    assert len(counted) == 11
