"""Aliases: atomic moves, an append-only history, the previous version one call away,
conditional moves, and concurrent movers that leave a consistent chain."""

from __future__ import annotations

import itertools
import threading

import pytest

from aiwarden.errors import ParameterError
from aiwarden.registry import Registry
from aiwarden.store import models_repo as repo
from tests.registry.models import fitted, skops_bytes


@pytest.fixture(scope="module")
def three(registry: Registry) -> str:
    for seed in range(3):
        registry.register("ranker", skops_bytes(fitted(seed=seed)), format="skops")
    return "ranker"


def test_move_history_and_previous(registry: Registry, three: str) -> None:
    assert registry.previous(three, "champion") is None
    first = registry.set_alias(three, "champion", "1", reason="first model", actor="alice")
    assert first is not None and (first.from_version, first.to_version) == (None, "1")
    assert registry.set_alias(three, "champion", "1", reason="again", actor="alice") is None
    registry.set_alias(three, "challenger", "2", reason="try v2", actor="bob")
    moved = registry.set_alias(three, "champion", "2", reason="v2 won the A/B test",
                               actor="bob", kind="promote")
    assert moved is not None and (moved.from_version, moved.to_version) == ("1", "2")
    assert registry.aliases(three) == {"challenger": "2", "champion": "2"}
    assert registry.get(three, alias="champion").version == "2"
    assert registry.get(three, "2").aliases == ["challenger", "champion"]
    assert registry.previous(three, "champion").version == "1"
    history = registry.history(three, "champion")
    assert [(e.from_version, e.to_version, e.actor, e.reason, e.kind) for e in history] == [
        ("1", "2", "bob", "v2 won the A/B test", "promote"),
        (None, "1", "alice", "first model", "set")]
    assert history[0].at >= history[1].at
    assert len(registry.history(three)) == 3  # every alias
    gone = registry.delete_alias(three, "challenger", reason="test over", actor="bob")
    assert (gone.from_version, gone.to_version, gone.kind) == ("2", None, "delete")
    assert "challenger" not in registry.aliases(three)
    with pytest.raises(repo.NotFound):
        registry.get(three, alias="challenger")


def test_conditional_move(registry: Registry, three: str) -> None:
    registry.set_alias(three, "canary", "3", reason="canary", actor="ci")
    with pytest.raises(repo.Conflict, match="points at 3, not 2") as err:
        registry.set_alias(three, "canary", "1", reason="rollback", expected="2", kind="rollback")
    assert err.value.field == "expected_version"
    ev = registry.set_alias(three, "canary", "1", reason="rollback", expected="3",
                            kind="rollback")
    assert ev is not None and ev.kind == "rollback"
    with pytest.raises(repo.Conflict, match="points at nothing"):
        registry.set_alias(three, "fresh", "1", reason="x", expected="1")
    assert registry.set_alias(three, "fresh", "1", reason="x", expected=None) is not None


def test_bad_alias_requests(registry: Registry, three: str) -> None:
    with pytest.raises(ParameterError) as err:
        registry.set_alias(three, "champion", "1", reason="  ")
    assert err.value.field == "reason"
    with pytest.raises(ParameterError, match="alias: expected a letter"):
        registry.set_alias(three, "42", "1", reason="numbers are versions")
    with pytest.raises(repo.NotFound, match="no registered version '9'"):
        registry.set_alias(three, "champion", "9", reason="missing")
    with pytest.raises(ParameterError) as err:
        registry.set_alias(three, "champion", "1", reason="r", kind="stage")
    assert err.value.field == "kind"


def test_concurrent_moves_end_consistent(registry: Registry, three: str) -> None:
    """Eight threads move one alias at once: every move is recorded, each from the
    version the previous move left, and the alias ends where the last one put it."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def mover(i: int) -> None:
        try:
            start.wait()
            for j in range(5):
                registry.set_alias(three, "hot", str((i + j) % 3 + 1), reason=f"t{i}-{j}",
                                   actor=f"t{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = list(reversed(registry.history(three, "hot", limit=1000)))
    assert events[0].from_version is None
    for before, after in itertools.pairwise(events):
        assert after.from_version == before.to_version
        assert after.from_version != after.to_version
    assert registry.aliases(three)["hot"] == events[-1].to_version
    # no-op moves record nothing, so there are at most 40 events
    assert 2 <= len(events) <= 40
