"""Tests for multivariate drift: domain classifier and PCA reconstruction error."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy.stats import ks_2samp, norm, rankdata
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from aiwarden.engine import multivariate
from aiwarden.engine.multivariate import (
    DomainClassifierDrift,
    DomainClassifierResult,
    PCAReconstructionDrift,
    PCAReconstructionResult,
)
from aiwarden.engine.schema import infer_schema
from aiwarden.errors import DataError, NotFittedError, ParameterError, SchemaError


def gaussian(n: int, seed: int, shift: float = 0.0, rho: float = 0.8) -> pd.DataFrame:
    """Five numerical columns; x1 and x2 correlated with coefficient ``rho``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5))
    frame = pd.DataFrame(z, columns=[f"x{i}" for i in range(5)])
    frame["x2"] = rho * z[:, 1] + np.sqrt(1 - rho**2) * z[:, 2]
    frame["x0"] += shift
    return frame


def mixed(n: int, seed: int, probs: tuple[float, ...] = (0.2,) * 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = gaussian(n, seed)[["x0", "x1", "x2"]]
    frame["colour"] = rng.choice(list("abcde"), size=n, p=probs)
    frame["flag"] = rng.random(n) < 0.3
    return frame


# --- statistics against scipy / scikit-learn -------------------------------------------------


def test_rank_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=500)
    score = np.round(rng.normal(size=500) + 0.5 * y, 1)  # many ties
    assert multivariate._auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_noise_bound_is_the_inflated_null_auc_quantile() -> None:
    """The bound is sqrt(2) x the (1 - alpha) excess of the AUC of random scores at n a side."""
    n, alpha = 60, 0.01
    result = DomainClassifierDrift(max_rows=n, alpha=alpha).fit(gaussian(n, 1))
    result = result.compare(gaussian(n, 2))
    rng = np.random.default_rng(0)
    ranks = rankdata(rng.random((20_000, 2 * n)), axis=1)[:, n:].sum(axis=1)
    null_auc = (ranks - n * (n + 1) / 2) / (n * n)
    excess = (result.noise_bound - 0.5) / np.sqrt(2)
    assert excess == pytest.approx(np.quantile(null_auc, 1 - alpha) - 0.5, abs=0.006)
    se0 = np.sqrt(2) * np.sqrt((2 * n + 1) / (12 * n * n))
    assert result.noise_bound == pytest.approx(0.5 + norm.ppf(1 - alpha) * se0, rel=1e-12)
    # At 60 rows per side the noise bound, not min_auc, sets the threshold.
    assert result.threshold == result.noise_bound > 0.55


def test_pca_matches_sklearn_on_standardised_data() -> None:
    reference, current = gaussian(2000, 1), gaussian(500, 2, rho=-0.8)
    drift = PCAReconstructionDrift(variance=0.65, n_chunks=4).fit(reference)
    result = drift.compare(current)

    scaler = StandardScaler().fit(reference)
    ref_std = scaler.transform(reference)
    pca = PCA(n_components=0.65, svd_solver="full").fit(ref_std)
    cur_std = scaler.transform(current)
    residual = cur_std - pca.inverse_transform(pca.transform(cur_std))
    assert result.n_components == pca.n_components_
    assert result.explained_variance == pytest.approx(pca.explained_variance_ratio_.sum())
    assert result.error == pytest.approx(np.linalg.norm(residual, axis=1).mean(), rel=1e-9)
    per_column = dict(zip(reference.columns, (residual**2).mean(axis=0), strict=True))
    got = dict(zip(result.features, result.current_errors, strict=True))
    assert got == pytest.approx(per_column, rel=1e-9)

    # The band comes from out-of-chunk fits: chunk 0 is judged by a PCA of chunks 1..3.
    rest = PCA(n_components=pca.n_components_, svd_solver="full").fit(ref_std[500:])
    chunk = ref_std[:500]
    res0 = chunk - rest.inverse_transform(rest.transform(chunk))
    assert drift.chunk_errors_[0] == pytest.approx(np.linalg.norm(res0, axis=1).mean(), rel=1e-9)


# --- behaviour --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_distributions_are_not_flagged(seed: int) -> None:
    reference, current = gaussian(1500, 10 + seed), gaussian(1500, 100 + seed)
    dc = DomainClassifierDrift(max_rows=1500, random_state=seed).fit(reference).compare(current)
    assert not dc.drift_detected
    assert abs(dc.auc - 0.5) < 0.05
    assert dc.auc_ci[0] < 0.5 + 0.05
    pca = PCAReconstructionDrift().fit(reference).compare(current)
    assert not pca.drift_detected
    assert pca.lower <= pca.error <= pca.upper


def test_shift_in_one_feature_is_flagged_and_ranked_first() -> None:
    reference, current = gaussian(1500, 1), gaussian(1500, 2, shift=0.75)
    result = DomainClassifierDrift(max_rows=1500).fit(reference).compare(current)
    assert result.drift_detected
    assert result.auc > 0.6
    assert result.auc_ci[0] < result.auc < result.auc_ci[1]
    assert result.features[0] == "x0"
    assert result.importances[0] > 0.5
    assert sum(result.importances) == pytest.approx(1.0)
    assert list(result.importances) == sorted(result.importances, reverse=True)
    assert result.importance_reason is None
    # the shifted column's share stands clear of its fold-to-fold spread; the others' do not
    assert len(result.importance_std) == len(result.features) == 5
    assert result.importances[0] > 3 * result.importance_std[0]
    assert all(i < 0.2 for i in result.importances[1:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_importances_without_drift(seed: int) -> None:
    """Undrifted samples: the classifier learned noise, so no shares that sum to 1."""
    reference, current = gaussian(1500, 20 + seed), gaussian(1500, 200 + seed)
    result = DomainClassifierDrift(max_rows=1500, random_state=seed).fit(reference).compare(
        current)
    assert not result.drift_detected
    assert result.features == tuple(reference.columns)  # the columns compared, in order
    assert result.importances == result.importance_std == ()
    assert "no drift detected" in result.importance_reason
    assert result.to_pandas()["importance"].isna().all()
    off = DomainClassifierDrift(importance=False).fit(reference).compare(
        gaussian(1500, 3, shift=1.0))
    assert off.drift_detected and off.importances == ()
    assert off.importance_reason.startswith("importance=False")


def test_correlation_flip_caught_by_pca_but_not_univariate_tests() -> None:
    reference, current = gaussian(3000, 1, rho=0.8), gaussian(3000, 2, rho=-0.8)
    for column in reference.columns:  # every marginal is unchanged
        assert ks_2samp(reference[column], current[column]).pvalue > 0.01
    result = PCAReconstructionDrift().fit(reference).compare(current)
    assert result.drift_detected
    assert result.error > result.upper
    assert set(result.features[:2]) == {"x1", "x2"}
    table = result.to_pandas()
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc[table["feature"].isin(["x1", "x2"]), "excess"].min() > 0.1


def test_large_samples_without_drift_are_not_flagged() -> None:
    reference, current = gaussian(200_000, 5), gaussian(200_000, 6)
    dc = DomainClassifierDrift().fit(reference).compare(current)
    assert not dc.drift_detected
    assert dc.threshold == 0.55  # the minimum effect, not the (tiny) noise bound, decides
    assert dc.noise_bound < 0.52
    assert dc.n_reference == dc.n_current == 5000
    pca = PCAReconstructionDrift().fit(reference).compare(current)
    assert not pca.drift_detected


def test_mixed_numerical_and_categorical() -> None:
    reference = mixed(1500, 1)
    same = mixed(1500, 2)
    shifted = mixed(1500, 3, probs=(0.6, 0.1, 0.1, 0.1, 0.1))
    dc = DomainClassifierDrift(max_rows=1500, max_categories=3).fit(reference)
    assert not dc.compare(same).drift_detected
    result = dc.compare(shifted)
    assert result.drift_detected
    assert result.features[0] == "colour"
    pca = PCAReconstructionDrift(max_categories=3).fit(reference)
    assert not pca.compare(same).drift_detected
    unseen = same.assign(colour="zzz")  # pooled into "other", not an error
    assert np.isfinite(pca.compare(unseen).error)
    assert dc.compare(unseen).features[0] == "colour"


def test_missing_values_are_imputed_and_their_rise_is_drift() -> None:
    rng = np.random.default_rng(7)

    def with_gaps(frame: pd.DataFrame, share: float) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[rng.random(len(frame)) < 0.05, "x0"] = np.nan
        frame.loc[rng.random(len(frame)) < share, "x1"] = np.nan
        frame.loc[rng.random(len(frame)) < 0.05, "colour"] = None
        return frame

    reference = with_gaps(mixed(1500, 1), 0.05)
    same, gappy = with_gaps(mixed(1500, 2), 0.05), with_gaps(mixed(1500, 3), 0.5)
    dc = DomainClassifierDrift(max_rows=1500).fit(reference)
    assert not dc.compare(same).drift_detected
    result = dc.compare(gappy)
    assert result.drift_detected
    assert result.features[0] == "x1"
    pca = PCAReconstructionDrift().fit(reference)
    assert not pca.compare(same).drift_detected
    result_pca = pca.compare(gappy)
    assert result_pca.drift_detected
    assert result_pca.features[0] == "x1"


def test_error_below_the_band_is_drift_too() -> None:
    reference = gaussian(2000, 1)
    flat = reference * 0.1  # rows collapse toward the centre: far less to reconstruct
    result = PCAReconstructionDrift().fit(reference).compare(flat)
    assert result.drift_detected
    assert result.error < result.lower


def test_band_widens_for_a_current_smaller_than_a_chunk() -> None:
    drift = PCAReconstructionDrift(n_chunks=10, k=3.0).fit(gaussian(2000, 1))
    result = drift.compare(gaussian(50, 2))
    assert result.upper - result.reference_mean == pytest.approx(
        3.0 * result.reference_std * np.sqrt(200 / 50)
    )


def test_threshold_auc_overrides_the_decision_rule() -> None:
    reference, current = gaussian(500, 1), gaussian(500, 2, shift=0.75)
    result = DomainClassifierDrift(max_rows=500, threshold_auc=0.99).fit(reference)
    result = result.compare(current)
    assert result.threshold == 0.99
    assert not result.drift_detected


# --- inputs, outputs, errors --------------------------------------------------------------


def test_fit_returns_self() -> None:
    reference = gaussian(200, 1)
    dc, pca = DomainClassifierDrift(), PCAReconstructionDrift()
    assert dc.fit(reference) is dc
    assert pca.fit(reference) is pca


def test_deterministic_when_seeded() -> None:
    reference, current = gaussian(800, 1), gaussian(800, 2, shift=0.3)
    first = DomainClassifierDrift(random_state=4).fit(reference).compare(current).to_dict()
    second = DomainClassifierDrift(random_state=4).fit(reference).compare(current).to_dict()
    assert first == second
    pca = PCAReconstructionDrift()
    assert pca.fit(reference).compare(current) == pca.fit(reference).compare(current)


def test_polars_and_arrow_inputs_match_pandas() -> None:
    reference, current = mixed(600, 1), mixed(600, 2)
    expected_dc = DomainClassifierDrift().fit(reference).compare(current)
    expected_pca = PCAReconstructionDrift().fit(reference).compare(current)
    for convert in (pl.from_pandas, pa.Table.from_pandas):
        ref, cur = convert(reference), convert(current)
        assert DomainClassifierDrift().fit(ref).compare(cur) == expected_dc
        assert PCAReconstructionDrift().fit(ref).compare(cur) == expected_pca


def test_features_restrict_the_columns() -> None:
    reference, current = gaussian(800, 1), gaussian(800, 2, shift=2.0)
    kept = ["x1", "x2", "x3"]
    result = DomainClassifierDrift(features=kept).fit(reference).compare(current[kept])
    assert set(result.features) == set(kept)
    assert not result.drift_detected
    pca = PCAReconstructionDrift(features=kept).fit(reference).compare(current[kept])
    assert set(pca.features) == set(kept)


def test_results_serialise() -> None:
    reference, current = mixed(500, 1), mixed(500, 2)
    dc = DomainClassifierDrift().fit(reference).compare(current)
    pca = PCAReconstructionDrift().fit(reference).compare(current)
    assert isinstance(dc, DomainClassifierResult)
    assert isinstance(pca, PCAReconstructionResult)
    for result in (dc, pca):
        as_dict = result.to_dict()
        assert json.loads(json.dumps(as_dict)) == as_dict
        for value in as_dict.values():
            assert type(value) in (float, int, bool, list, str, type(None))
    assert list(dc.to_pandas().columns) == ["feature", "importance", "importance_std"]
    assert list(pca.to_pandas().columns) == [
        "feature",
        "reference_error",
        "current_error",
        "excess",
        "share",
    ]
    with pytest.raises(AttributeError):
        dc.auc = 0.9  # type: ignore[misc]


DETECTORS = [DomainClassifierDrift, PCAReconstructionDrift]


@pytest.mark.parametrize("cls", DETECTORS)
def test_no_common_columns_names_the_column(cls: type) -> None:
    drift = cls().fit(pd.DataFrame({"age": np.arange(100.0), "score": np.arange(100.0) ** 2}))
    with pytest.raises(SchemaError, match="'age'") as info:
        drift.compare(pd.DataFrame({"height": np.arange(100.0)}))
    assert info.value.column == "age"


@pytest.mark.parametrize("cls", DETECTORS)
def test_unknown_feature_names_the_column(cls: type) -> None:
    with pytest.raises(SchemaError, match="'weight'") as info:
        cls(features=["x0", "weight"]).fit(gaussian(100, 1))
    assert info.value.column == "weight"


@pytest.mark.parametrize("cls", DETECTORS)
def test_empty_inputs_raise_data_error(cls: type) -> None:
    with pytest.raises(DataError, match="empty"):
        cls().fit(gaussian(100, 1).iloc[:0])
    with pytest.raises(DataError, match="empty"):
        cls().fit(gaussian(100, 1)).compare(gaussian(100, 1).iloc[:0])
    with pytest.raises(DataError, match="ndarray"):
        cls().fit(np.zeros((10, 2)))


@pytest.mark.parametrize("cls", DETECTORS)
def test_compare_before_fit_raises(cls: type) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        cls().compare(gaussian(100, 1))


@pytest.mark.parametrize("cls", DETECTORS)
def test_column_problems_name_the_column(cls: type) -> None:
    reference = mixed(100, 1)
    with pytest.raises(SchemaError, match="'colour'") as info:
        cls().fit(reference).compare(reference.assign(colour=1.5))
    assert info.value.column == "colour"
    with pytest.raises(DataError, match="'x1'") as info_nan:
        cls().fit(reference.assign(x1=np.nan))
    assert info_nan.value.column == "x1"
    with pytest.raises(SchemaError, match="'when'"):
        cls().fit(reference.assign(when=pd.Timestamp("2024-01-01")))


def test_too_few_rows_raise() -> None:
    with pytest.raises(DataError, match="n_splits=5"):
        DomainClassifierDrift().fit(gaussian(100, 1)).compare(gaussian(6, 2))
    with pytest.raises(DataError, match="n_chunks=10"):
        PCAReconstructionDrift().fit(gaussian(12, 1))
    with pytest.raises(DataError, match="varies"):
        PCAReconstructionDrift().fit(pd.DataFrame({"a": np.ones(50)}))


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (DomainClassifierDrift, {"n_splits": 1}, "n_splits"),
        (DomainClassifierDrift, {"max_rows": 5.5}, "max_rows"),
        (DomainClassifierDrift, {"alpha": 0.0}, "alpha"),
        (DomainClassifierDrift, {"min_auc": 1.2}, "min_auc"),
        (DomainClassifierDrift, {"threshold_auc": 0.3}, "threshold_auc"),
        (DomainClassifierDrift, {"random_state": -1}, "random_state"),
        (DomainClassifierDrift, {"importance": "yes"}, "importance"),
        (DomainClassifierDrift, {"features": []}, "features"),
        (DomainClassifierDrift, {"n_threads": 0}, "n_threads"),
        (PCAReconstructionDrift, {"variance": 1.0}, "variance"),
        (PCAReconstructionDrift, {"n_chunks": 1}, "n_chunks"),
        (PCAReconstructionDrift, {"k": -1.0}, "k"),
        (PCAReconstructionDrift, {"max_categories": 0}, "max_categories"),
    ],
)
def test_bad_parameters(cls: type, kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ParameterError, match=rf"The '{name}' parameter of {cls.__name__} must"):
        cls(**kwargs)


def test_module_example_runs() -> None:
    failures, tried = doctest.testmod(multivariate, raise_on_error=False)
    assert tried > 0
    assert failures == 0


def test_public_surface_is_pinned() -> None:
    assert multivariate.__all__ == [
        "DomainClassifierDrift",
        "DomainClassifierResult",
        "PCAReconstructionDrift",
        "PCAReconstructionResult",
    ]
    for name in multivariate.__all__:
        assert getattr(multivariate, name).__name__ == name


# --- consistency with the rest of the engine ------------------------------------------------


def _both(reference: object, current: object, **kwargs: object) -> tuple[object, object]:
    dc = DomainClassifierDrift(**kwargs).fit(reference).compare(current)  # type: ignore[arg-type]
    pca = PCAReconstructionDrift(**kwargs).fit(reference).compare(current)  # type: ignore[arg-type]
    return dc, pca


def test_list_of_dicts_and_dict_of_columns_match_pandas() -> None:
    reference, current = mixed(300, 1), mixed(300, 2)
    expected = _both(reference, current)
    records = _both(reference.to_dict("records"), current.to_dict("records"))
    columns = _both(reference.to_dict("list"), current.to_dict("list"))
    assert records == expected
    assert columns == expected
    for cls in DETECTORS:
        with pytest.raises(DataError, match="dict"):
            cls().fit([1, 2, 3])
        with pytest.raises(DataError, match="dict of columns"):
            cls().fit({"a": 1.0, "b": 2.0})  # scalars cannot form a table
        with pytest.raises(DataError, match="empty"):
            cls().fit([])


def with_model_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(frame)
    return frame.assign(
        target=rng.integers(0, 2, n),
        prediction=rng.integers(0, 2, n),
        score=rng.random(n),
        id=np.arange(n) + 1000 * seed,
    )


@pytest.mark.parametrize("cls", DETECTORS)
def test_default_features_are_the_feature_role_columns(cls: type) -> None:
    reference = with_model_columns(mixed(400, 1), 1)
    unlabelled = mixed(400, 2)  # no target, prediction, score or id yet
    result = cls().fit(reference).compare(unlabelled)
    assert set(result.features) == {"x0", "x1", "x2", "colour", "flag"}
    # An explicit list still overrides the schema, and then the column is required.
    drift = cls(features=["x0", "target"]).fit(reference)
    with pytest.raises(SchemaError, match="'target'") as info:
        drift.compare(unlabelled)
    assert info.value.column == "target"
    # A chosen feature absent from the batch is still named.
    with pytest.raises(SchemaError, match="'colour'") as info:
        cls().fit(reference).compare(unlabelled.drop(columns="colour"))
    assert info.value.column == "colour"


@pytest.mark.parametrize("cls", DETECTORS)
def test_schema_and_schema_hints_choose_the_features(cls: type) -> None:
    reference = mixed(400, 1).assign(churn=np.random.default_rng(0).integers(0, 2, 400))
    unlabelled = mixed(400, 2)
    expected = {"x0", "x1", "x2", "colour", "flag"}
    assert set(cls().fit(reference, target="churn").compare(unlabelled).features) == expected
    schema = infer_schema(reference, target="churn")
    assert set(cls().fit(reference, schema=schema).compare(unlabelled).features) == expected
    with pytest.raises(ParameterError, match="targt"):
        cls().fit(reference, targt="churn")
    with pytest.raises(SchemaError, match="either a schema or schema hints"):
        cls().fit(reference, schema=schema, target="churn")
    with pytest.raises(SchemaError, match="no feature columns"):
        cls().fit(reference[["churn"]].assign(prediction=1), target="churn")


@pytest.mark.parametrize("cls", DETECTORS)
def test_unparsable_numbers_are_missing_and_counted(cls: type) -> None:
    reference, current = mixed(400, 1), mixed(400, 2)
    broken = current.astype({"x1": object})
    broken.loc[[3, 10, 11], "x1"] = ["oops", "nan", "2.5"]  # one invalid, one NaN, one number
    as_nan = current.copy()
    as_nan.loc[[3, 10, 11], "x1"] = [np.nan, np.nan, 2.5]
    drift = cls().fit(reference)
    result, expected = drift.compare(broken), drift.compare(as_nan)
    assert result.n_invalid == 1
    assert result.to_dict()["n_invalid"] == 1
    assert expected.n_invalid == 0
    assert replace(result, n_invalid=0) == expected
    # A column sent entirely as text parses like the engine's profiles do.
    assert drift.compare(current.astype({"x0": str})) == drift.compare(current)


def test_invalid_values_are_counted_on_the_whole_batch() -> None:
    reference, current = mixed(400, 1), mixed(4000, 2).astype({"x0": object})
    current.loc[::100, "x0"] = "n/a"
    result = DomainClassifierDrift(max_rows=200).fit(reference).compare(current)
    assert result.n_invalid == 40
    assert result.n_current == 200


@pytest.mark.parametrize("cls", DETECTORS)
def test_booleans_sent_as_numbers_or_text_match_the_reference(cls: type) -> None:
    reference, current = mixed(400, 1), mixed(400, 2)
    drift = cls().fit(reference)
    expected = drift.compare(current)
    flag = current["flag"]
    spellings = [
        flag.astype(int),
        flag.astype(float),
        flag.map({True: "True", False: "False"}),
        flag.map({True: "TRUE", False: "false"}),
        flag.map({True: "1", False: "0"}),
        pl.from_pandas(current.assign(flag=flag.astype(int))),
    ]
    for spelling in spellings:
        batch = spelling if isinstance(spelling, pl.DataFrame) else current.assign(flag=spelling)
        assert drift.compare(batch) == expected
    # With a missing value the boolean reference column accepts 0/1 floats too.
    gap = current.astype({"flag": object})
    gap.loc[0, "flag"] = None
    assert drift.compare(gap) == drift.compare(gap.assign(flag=gap["flag"].astype(float)))
    # Values that are no boolean are an unseen category, not an error.
    assert drift.compare(current.assign(flag=2)).n_current == 400


@pytest.mark.parametrize("cls", DETECTORS)
def test_dates_in_a_numerical_column_still_raise(cls: type) -> None:
    reference = mixed(100, 1)
    with pytest.raises(SchemaError, match="'x1'") as info:
        cls().fit(reference).compare(reference.assign(x1=pd.Timestamp("2024-01-01")))
    assert info.value.column == "x1"


def test_fitted_pca_round_trips_through_json() -> None:
    """A stored fit compares exactly as the fitted detector does (no refit)."""
    reference, current = mixed(800, 1), mixed(600, 2, probs=(0.4, 0.3, 0.1, 0.1, 0.1))
    pca = PCAReconstructionDrift().fit(reference)
    stored = json.loads(json.dumps(pca.to_dict()))
    assert PCAReconstructionDrift.from_dict(stored).compare(current) == pca.compare(current)
    with pytest.raises(NotFittedError):
        PCAReconstructionDrift().to_dict()


# --- every component kept (issue 12 pt 1) -------------------------------------------------------


def independent(n: int, seed: int, k: int) -> pd.DataFrame:
    """``k`` independent standard normal columns x1..xk."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, k)), columns=[f"x{i + 1}" for i in range(k)])


def with_new_correlation(n: int, seed: int, k: int) -> pd.DataFrame:
    """Like :func:`independent`, but the last column is now -x1 plus a little noise."""
    frame = independent(n, seed, k)
    noise = np.random.default_rng(seed + 100).normal(size=n)
    frame[f"x{k}"] = -frame["x1"] + 0.1 * noise
    return frame


def sklearn_error(reference: pd.DataFrame, current: pd.DataFrame, n_components: int) -> float:
    scaler = StandardScaler().fit(reference)
    pca = PCA(n_components=n_components, svd_solver="full").fit(scaler.transform(reference))
    cur = scaler.transform(current)
    residual = cur - pca.inverse_transform(pca.transform(cur))
    return float(np.linalg.norm(residual, axis=1).mean())


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_new_correlation_between_independent_features_is_caught(k: int, seed: int) -> None:
    # 65 % of two independent columns needs both components; keeping both rebuilt every row
    # exactly (error 1.8e-16 against a band of 6e-16, decided by rounding noise).
    # With three columns 65 % needs two components; 95 % needs all three.
    variance = 0.65 if k == 2 else 0.95
    reference = independent(3000, seed, k)
    current = with_new_correlation(1000, seed + 50, k)
    result = PCAReconstructionDrift(variance=variance).fit(reference).compare(current)

    wanted = PCA(n_components=variance, svd_solver="full").fit(
        StandardScaler().fit_transform(reference)).n_components_
    assert wanted == k  # without the cap every component would be kept
    assert result.n_components == k - 1
    assert result.reason is None
    assert result.error == pytest.approx(sklearn_error(reference, current, k - 1), rel=1e-9)
    # The band is a real residual, not rounding noise; the error leaves it above (the new
    # direction is off the kept subspace) or below (it is the kept component).
    assert result.reference_mean > 0.3
    assert result.drift_detected
    assert not result.lower <= result.error <= result.upper


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_features_unchanged_are_not_flagged(k: int, seed: int) -> None:
    reference, current = independent(3000, seed, k), independent(1000, seed + 50, k)
    result = PCAReconstructionDrift(variance=0.65 if k == 2 else 0.95).fit(
        reference).compare(current)
    assert result.n_components == k - 1
    assert result.error == pytest.approx(sklearn_error(reference, current, k - 1), rel=1e-9)
    assert result.lower <= result.error <= result.upper
    assert not result.drift_detected


def test_one_varying_feature_gives_no_verdict_and_says_why() -> None:
    reference = independent(500, 0, 2).assign(x2=1.0)
    detector = PCAReconstructionDrift().fit(reference)
    result = detector.compare(with_new_correlation(200, 1, 2))
    assert result.reason is not None and "at least 2 features that vary" in result.reason
    assert "got 1 (x1)" in result.reason
    assert (result.error, result.lower, result.upper) == (None, None, None)
    assert not result.drift_detected and result.n_components == 0
    assert result.features == () and result.to_pandas().empty
    assert json.loads(json.dumps(result.to_dict()))["reason"] == result.reason
    back = PCAReconstructionDrift.from_dict(json.loads(json.dumps(detector.to_dict())))
    assert back.compare(reference).reason == result.reason


def test_collinear_features_give_no_verdict_and_say_why() -> None:
    # x2 = 2 x1: one component explains everything, so nothing is left to reconstruct.
    reference = independent(500, 0, 1).assign(x2=lambda f: 2 * f["x1"])
    result = PCAReconstructionDrift().fit(reference).compare(with_new_correlation(200, 1, 2))
    assert result.reason is not None and "explains all" in result.reason
    assert result.error is None and not result.drift_detected


def test_stored_state_keeping_every_component_gives_no_verdict() -> None:
    # A fit stored before the cap (every component kept) must not decide on rounding noise.
    state = PCAReconstructionDrift().fit(independent(500, 0, 2)).to_dict()
    state.pop("reason")
    state["explained_variance"] = 1.0
    result = PCAReconstructionDrift.from_dict(state).compare(independent(200, 1, 2))
    assert result.reason is not None and "fit the reference again" in result.reason
    assert result.error is None and not result.drift_detected
