from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden.registry import Registry
from aiwarden.store.database import Database


@pytest.fixture(scope="module")
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def registry(database: Database, artifacts: Path) -> Registry:
    return Registry(database, artifacts)
