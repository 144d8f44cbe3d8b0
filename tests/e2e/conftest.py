from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.live import database_url


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """A fresh database per module and backend (same as tests/server/conftest.py)."""
    with database_url(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url
