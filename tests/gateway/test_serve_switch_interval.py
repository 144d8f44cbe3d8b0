"""``aiwarden serve`` hands the GIL to a waiting request sooner than CPython's default."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from aiwarden.commands.serve import SWITCH_INTERVAL, latency_first


@pytest.fixture
def restored() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_latency_first_shortens_the_switch_interval_below_the_default(restored: None) -> None:
    sys.setswitchinterval(0.005)  # CPython's default
    latency_first()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert sys.getswitchinterval() < 0.005 / 5
