"""The engine's public surface is pinned: removing or renaming a name is a decision."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

import aiwarden.engine as engine

EXPECTED = {
    "ADWIN", "CBPE", "CBPEResult", "CategoricalProfile", "ClassificationStats", "Column",
    "ColumnDrift", "ColumnType", "Condition", "DDM", "DLE", "DLEResult", "DomainClassifierDrift",
    "DomainClassifierResult", "DriftDetector", "DriftReport", "DriftSettings",
    "ExpectedClassificationStats", "ExpectedRegressionStats", "Finding", "MetricEstimate",
    "NumericalProfile", "PCAReconstructionDrift", "PCAReconstructionResult", "PageHinkley",
    "PresenceProfile", "Profile", "QualityReport", "QualitySettings", "RealisedPerformance",
    "Reference",
    "RegressionStats", "Role", "Schema", "Slice", "SliceReport", "Task", "find_failing_slices",
    "infer_schema", "make_detector",
}


def test_all_is_pinned() -> None:
    assert set(engine.__all__) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(engine, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def test_engine_never_imports_server_side_packages() -> None:
    code = ("import sys, aiwarden.engine as e; [getattr(e, n) for n in e.__all__]; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'sqlalchemy', 'uvicorn', 'httpx', 'requests', 'river')]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_the_engine_does_not_import_sklearn() -> None:
    code = "import sys, aiwarden.engine; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", [
    "aiwarden.engine", "aiwarden.engine.reference", "aiwarden.engine.schema",
    "aiwarden.engine.performance", "aiwarden.engine.cbpe", "aiwarden.engine.slices",
])
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
