"""Fixtures shared by the server, end-to-end and README tests: real databases, real servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.file_order import load_costs, longest_first
from tests.server.live import ThreadServer, database_url, settings_for


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """A fresh database per module and backend."""
    with database_url(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"))) as srv:
        yield srv


@pytest.fixture(scope="module")
def monitor(db_url: str) -> Iterator[Any]:
    """The monitoring service on a fresh database, without a server around it."""
    from aiwarden.monitoring.service import Monitor
    from aiwarden.store.database import Database

    mon = Monitor(Database(db_url))
    mon.db.migrate()
    yield mon
    mon.db.dispose()


@pytest.fixture(scope="module")
def database(db_url: str) -> Iterator[Any]:
    """A migrated database handle on the module's fresh database (registry, gateway)."""
    from aiwarden.store.database import Database

    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first (tests/file_order.py): the workers finish together."""
    items[:] = longest_first(items, load_costs())
