from __future__ import annotations

from pathlib import Path

import pytest

from aiwarden.registry import Registry
from aiwarden.store.database import Database


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def registry(database: Database, artifacts: Path) -> Registry:
    return Registry(database, artifacts)
