"""The concept-drift feed's ownership: a step planned from a state another process has
advanced since is refused at commit, so no outcome is fed twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from aiwarden.engine.detectors import ADWIN
from aiwarden.monitoring.concept_drift import ConceptDrift, FeedReport
from aiwarden.monitoring.service import Monitor
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, scored_frame
from tests.server.live import database_url

N = 1200


@pytest.fixture(params=["sqlite", "postgresql"])
def monitor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Monitor]:
    with database_url(request.param, tmp_path) as url:
        mon = Monitor(Database(url))
        mon.db.migrate()
        yield mon
        mon.db.dispose()


def _model(mon: Monitor, errors: np.ndarray, t0: float) -> Any:
    mon.create_model("m")
    mon.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(2000),
                                                         preserve_index=False), HINTS)
    mon.log_predictions("m", [{"prediction_id": f"p{i}", "timestamp": t0 + i,
                               "features": {"x": 0.1, "c": "a"}, "prediction": 1,
                               "scores": 0.7} for i in range(N)])
    mon.log_labels("m", [{"prediction_id": f"p{i}", "label": int(1 - errors[i])}
                         for i in range(N)])
    mon.concept = ConceptDrift(mon.db, mon.refs)
    mon.concept.put_settings("m", {"label_delay": "0s"})
    return mon.model("m")


@pytest.mark.parametrize("first", [False, True])
def test_a_stale_step_is_refused_and_the_other_process_state_stands(
        monitor: Monitor, first: bool) -> None:
    """``first``: the race is over creating the state; else over advancing it."""
    rng = np.random.default_rng(4)
    errors = np.concatenate([rng.random(600) < 0.1, rng.random(N - 600) < 0.45]).astype(float)
    t0 = time.time() - 2 * N
    m = _model(monitor, errors, t0)
    a = ConceptDrift(monitor.db, monitor.refs)  # two processes on one database
    b = ConceptDrift(monitor.db, monitor.refs)
    if not first:
        a.feed_model(m, t0 + 300, FeedReport())
    stale = a.plan(m, t0 + N)
    assert stale is not None
    report = FeedReport()
    b.feed_model(m, t0 + N, report)
    assert report.outcomes == (N if first else N - 300) and report.conflicts == 0
    old, new, points, _ = stale
    assert points  # the stale step found the change too, and must not store it again
    assert not a.commit(m, old, new, t0 + N)
    with monitor.db.read() as conn:
        state = b.state(conn, m.id)
    assert state["versions"][next(iter(state["versions"]))]["fed"] == N
    positions = [p["position"] for p in state["change_points"]]
    assert positions == ADWIN().detect(errors)
    again = FeedReport()  # the next cycle of either finds nothing left to feed
    a.feed_model(m, t0 + N, again)
    assert again.outcomes == 0 and again.conflicts == 0
