from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sdk import Receiver, serve


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on a free loopback port, stopped after the test."""
    with serve() as rec:
        yield rec
