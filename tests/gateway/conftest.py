from __future__ import annotations

import pytest

from aiwarden.monitoring.service import Monitor
from aiwarden.registry import Registry
from aiwarden.store.database import Database


@pytest.fixture(scope="module")
def registry(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(database, tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def mon(database: Database) -> Monitor:
    return Monitor(database)
