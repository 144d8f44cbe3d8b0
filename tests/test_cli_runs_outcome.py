"""`aiwarden runs list` tells what became of a canary after its run ended (the run's reason
was written when the canary started, and still said "promoted when it holds")."""

from __future__ import annotations

from aiwarden.commands.training import _outcome

CANARY = "version 3 in canary at 10% for 1h; promoted when it holds"


def test_a_settled_canary_says_how_it_ended() -> None:
    for state, said in (("promoted", "promoted"), ("superseded", "superseded"),
                        ("rolled_back", "rolled back")):
        run = {"reason": CANARY, "result": {"promotion": {"state": state}}}
        assert _outcome(run) == f"{CANARY}; then {said}"
    holding = {"reason": CANARY, "result": {"promotion": {"state": "canary"}}}
    assert _outcome(holding) == CANARY
    assert _outcome({"reason": None, "result": None}) == ""
