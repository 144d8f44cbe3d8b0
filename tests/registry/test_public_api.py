"""The registry's public surface is pinned: removing or renaming a name is a decision."""

from __future__ import annotations

import doctest

import aiwarden.registry as registry
from aiwarden.registry import artifacts

EXPECTED = {
    "FORMATS", "UNSET", "AliasEvent", "ArtifactFormat", "ArtifactFormatError",
    "ArtifactIntegrityError", "ArtifactStore", "ArtifactStoreError", "FsspecStore",
    "LocalStore", "Predictor", "Registry", "RegistryError", "UntrustedArtifactError",
    "VersionInfo", "default_artifacts_url", "open_store",
}


def test_all_is_pinned() -> None:
    assert set(registry.__all__) == EXPECTED
    assert all(hasattr(registry, name) for name in EXPECTED)


def test_docstring_examples_run() -> None:
    for module in (registry, artifacts):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
