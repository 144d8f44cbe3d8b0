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
    assert out.evidence["p95_ms"] >= 12 and out.evidence["calls"] == 50
    assert infra_gate(slow, rows, budget_ms=None).passed  # no budget: timed, never refused
    broken = Loaded(object(), b"x", "skops", "m.skops")
    assert "fails to predict" in infra_gate(broken, rows, budget_ms=5).reason


class _Stalled:
    """Fast, except that every call after the batch one lands in a stall, one in three: what
    a loaded machine does to a fast model (descheduled, another thread holding the GIL)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, rows: pd.DataFrame) -> list[int]:
        self.calls += 1
        if self.calls % 3 == 2:
            time.sleep(0.03)
        return [0] * len(rows)


def test_a_stall_of_the_machine_is_not_the_candidates_latency() -> None:
    """Each row's fastest of three calls is timed: one stalled call in three would put the
    p95 of single calls at 30 ms."""
    stalled = Loaded(_Stalled(), b"x", "skops", "m.skops")
    out = infra_gate(stalled, pd.DataFrame({"x": range(60)}), budget_ms=20)
    assert out.passed, out.reason
    assert stalled.predictor.calls == 1 + 50 * 3 and out.evidence["repeats"] == 3
    assert out.evidence["p95_ms"] < 20
