"""The candidate's trial load and the infra gate: safe formats only, a latency budget."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pandas as pd
import skops.io as sio

from aiwarden.training.candidate import Loaded, infra_gate, load_candidate
from tests.registry.models import fitted, frame


def test_a_skops_candidate_loads_and_a_pickle_is_refused(tmp_path: Path) -> None:
    model = fitted()
    (tmp_path / "m.skops").write_bytes(sio.dumps(model))
    loaded, refused = load_candidate(str(tmp_path / "m.skops"), None, [])
    assert refused is None and loaded.format == "skops"
    x, _ = frame(20)
    assert list(loaded.predictor.predict(x)) == list(model.predict(x))
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    loaded, refused = load_candidate(str(tmp_path / "m.pkl"), None, [])
    assert loaded is None and not refused.passed
    assert "runs code when loaded" in refused.reason
    (tmp_path / "broken.skops").write_bytes(b"not a zip")
    loaded, refused = load_candidate(str(tmp_path / "broken.skops"), None, [])
    assert loaded is None and "does not load" in refused.reason


class _Slow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, rows: pd.DataFrame) -> list[int]:
        time.sleep(self.seconds)
        return [0] * len(rows)


def test_the_infra_gate_holds_one_row_predictions_to_the_budget() -> None:
    rows = pd.DataFrame({"x": range(60)})
    slow = Loaded(_Slow(0.012), b"x", "skops", "m.skops")
    out = infra_gate(slow, rows, budget_ms=5)
    assert not out.passed and out.reason.startswith("too slow")
    # four rows over the budget put the p95 of fifty over it: the timing stops there
    assert out.evidence["p95_ms"] >= 12 and out.evidence["calls"] == 4
    assert out.evidence["rows_over_budget"] == 4
    free = infra_gate(slow, rows, budget_ms=None)  # no budget: all timed, never refused
    assert free.passed and free.evidence["calls"] == 50


class _SlowOnSome:
    """Slow on the rows whose x is in ``slow`` (a model with an expensive branch)."""

    def __init__(self, slow: set[int]) -> None:
        self.slow = slow

    def predict(self, rows: pd.DataFrame) -> list[int]:
        if len(rows) == 1 and int(rows["x"].iloc[0]) in self.slow:
            time.sleep(0.02)
        return [0] * len(rows)


def test_the_early_stop_never_refuses_what_the_full_p95_would_pass() -> None:
    """Two slow rows of fifty leave the p95 under the budget: all fifty are timed and it
    passes; three put it over, found once all fifty are timed (interpolation); a fourth
    refuses it as soon as that row is timed."""
    rows = pd.DataFrame({"x": range(60)})

    def gate(slow: set[int]):
        return infra_gate(Loaded(_SlowOnSome(slow), b"x", "skops", "m.skops"), rows,
                          budget_ms=10)

    two = gate({3, 20})
    assert two.passed and two.evidence["calls"] == 50, two.evidence
    three = gate({3, 20, 40})
    assert not three.passed and three.evidence["calls"] == 50, three.evidence
    assert three.evidence["rows_over_budget"] == 3
    four = gate({3, 20, 30, 40})
    assert not four.passed and four.evidence["calls"] == 41, four.evidence
    assert four.evidence["p95_ms"] > 10
