"""The evaluation loop on real stores: defaults installed, drift fires on the shifted
feature only, state survives a restart, one evaluator per lease, errors are contained."""

from __future__ import annotations

import time
import uuid

import pyarrow as pa
import pytest

from aiwarden.alerting.evaluator import Evaluator, install_defaults
from aiwarden.alerting.rules import default_rules
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo, models_repo
from aiwarden.store.tables import leases
from tests.server.conftest import HINTS, json_rows, scored_frame

HOUR = 3600.0


@pytest.fixture(autouse=True)
def _no_lease(monitor: Monitor) -> None:
    """Each test starts with the evaluator lease free."""
    with monitor.db.write() as conn:
        conn.execute(leases.delete())


def _model(mon: Monitor, end: float, shifted_hours: set[int]) -> str:
    name = f"ev-{uuid.uuid4().hex[:6]}"
    mon.create_model(name, task="binary")
    mon.upload_reference(name, "v1", pa.Table.from_pandas(scored_frame(4000),
                                                          preserve_index=False), HINTS)
    for h in range(4):
        df = scored_frame(600, seed=20 + h, shift=1.0 if h in shifted_hours else 0.0)
        mon.log_predictions(name, json_rows(df, end - (4 - h) * HOUR + 1, prefix=f"h{h}-",
                                            spacing=5.9))
    return name


def _put(mon: Monitor, model: str, spec: dict) -> None:
    with mon.db.write() as conn:
        alerts_repo.upsert_rule(conn, model, spec["name"], {"model": model, **spec}, "api")


def _firing(mon: Monitor, model: str) -> dict[str, dict]:
    with mon.db.read() as conn:
        m = mon.model(model)
        return {inst.labels.get("column") or inst.labels["rule"]: inst.state
                for inst in alerts_repo.list_instances(conn, m.id)
                if inst.state["phase"] == "firing"}


def test_defaults_are_installed_once_and_never_overwrite_edits(monitor: Monitor) -> None:
    name = f"d-{uuid.uuid4().hex[:6]}"
    monitor.create_model(name, task="binary")
    added = install_defaults(monitor, name, "binary")
    assert added == [r.name for r in default_rules("binary")]
    _put(monitor, name, {"name": "drift-share", "metric": "drift", "critical": 0.9})
    assert install_defaults(monitor, name, "binary") == []
    with monitor.db.read() as conn:
        edited = [r for r in alerts_repo.list_rules(conn, name) if r.name == "drift-share"]
    assert edited[0].spec["critical"] == 0.9 and edited[0].source == "api"


def test_drift_fires_on_the_shifted_feature_only_and_survives_a_restart(
        monitor: Monitor) -> None:
    end = (time.time() // HOUR) * HOUR
    name = _model(monitor, end, shifted_hours={3})
    _put(monitor, name, {"name": "feature-drift", "metric": "drift", "column": "*",
                         "window": "1h", "critical": 1.0, "for": "10m"})
    first = Evaluator(monitor, holder="a")
    first.evaluate_once(now=end - HOUR)  # the window before the shift: quiet
    assert _firing(monitor, name) == {}
    r1 = first.evaluate_once(now=end)
    assert [e.kind for _, e in r1.transitions if e.kind != "cancelled"] == ["pending"]
    restarted = Evaluator(monitor, holder="a")  # same holder after a restart
    r2 = restarted.evaluate_once(now=end + 900)
    fired = [(labels["column"], e.kind) for labels, e in r2.transitions]
    assert fired == [("x", "firing")]  # exactly the shifted feature, once
    assert set(_firing(monitor, name)) == {"x"}
    r3 = restarted.evaluate_once(now=end + 960)
    assert not [e for _, e in r3.transitions if e.kind == "firing"]  # no re-page


def test_one_evaluator_holds_the_lease_until_it_expires(monitor: Monitor) -> None:
    t = time.time() + 10 * HOUR  # far from other tests' lease times
    a, b = Evaluator(monitor, holder="a", lease_ttl=60), Evaluator(monitor, holder="b",
                                                                   lease_ttl=60)
    assert a.evaluate_once(now=t).evaluated
    assert not b.evaluate_once(now=t + 30).evaluated
    assert a.evaluate_once(now=t + 50).evaluated  # renewing
    assert b.evaluate_once(now=t + 200).evaluated  # a went quiet: b takes over
    assert not a.evaluate_once(now=t + 210).evaluated


def test_a_broken_rule_is_an_error_state_and_others_still_run(monitor: Monitor) -> None:
    end = (time.time() // HOUR) * HOUR
    name = _model(monitor, end, shifted_hours={3})
    _put(monitor, name, {"name": "ghost", "metric": "drift", "column": "no_such_column",
                         "stat": "severity", "critical": 1.0})
    _put(monitor, name, {"name": "x-drift", "metric": "drift", "column": "x",
                         "critical": 1.0})
    report = Evaluator(monitor, holder="c").evaluate_once(now=end)
    kinds = {(labels["rule"], e.kind) for labels, e in report.transitions
             if labels["model"] == name}
    assert ("ghost", "error") in kinds and ("x-drift", "pending") in kinds


def test_every_version_that_served_is_evaluated_and_the_latest_always(
        monitor: Monitor) -> None:
    """A canary and its champion both serve: each gets its own alert instance. A version
    that served only long ago is left alone; the newest one is watched even when silent."""
    end = (time.time() // HOUR) * HOUR
    name = _model(monitor, end, shifted_hours={3})  # v1: four hours of traffic
    ref = pa.Table.from_pandas(scored_frame(4000), preserve_index=False)
    for v in ("v2", "v3", "v4"):
        monitor.upload_reference(name, v, ref, HINTS)
    rows = json_rows(scored_frame(300, seed=3, shift=1.0), end - 1800, prefix="v2-",
                     spacing=5)
    monitor.log_predictions(name, [r | {"version": "v2"} for r in rows])
    old = json_rows(scored_frame(50, seed=4), end - 3 * 86400, prefix="v3-", spacing=5)
    monitor.log_predictions(name, [r | {"version": "v3"} for r in old])
    _put(monitor, name, {"name": "busy", "metric": "volume", "window": "1h", "op": ">",
                         "critical": 0})
    _put(monitor, name, {"name": "silent", "metric": "volume", "window": "1h", "op": "<",
                         "critical": 1})
    report = Evaluator(monitor, holder="v").evaluate_once(now=end)
    fired = {(labels["rule"], labels["version"]): e.value for labels, e in report.transitions
             if labels["rule"] in ("busy", "silent") and e.kind == "firing"}
    # v1 and v2 served in the hour; v4 is the newest and silent; v3 (silent too) served
    # three days ago only and is not evaluated at all
    assert fired == {("busy", "v1"): 600.0, ("busy", "v2"): 300.0, ("silent", "v4"): 0.0}


def _segmented_model(mon: Monitor, end: float) -> str:
    name = f"w-{uuid.uuid4().hex[:6]}"
    mon.create_model(name, task="binary", segment_columns=["c"])
    mon.upload_reference(name, "v1", pa.Table.from_pandas(scored_frame(2000),
                                                          preserve_index=False), HINTS)
    for h in range(2):
        mon.log_predictions(name, json_rows(scored_frame(300, seed=40 + h),
                                            end - (2 - h) * HOUR + 1, prefix=f"w{h}-",
                                            spacing=11.9))
    install_defaults(mon, name, "binary")
    _put(mon, name, {"name": "drift-by-c", "metric": "drift", "segment_by": "c",
                     "window": "1h", "critical": 0.9})
    return name


def test_warm_up_leaves_the_first_cycle_nothing_to_decode(monitor: Monitor) -> None:
    """A restarted process warms before its first cycle (EvaluationLoop): references
    loaded, every window's partials decoded, the model's and its segments'."""
    end = (time.time() // HOUR) * HOUR
    name = _segmented_model(monitor, end)
    restarted = Monitor(monitor.db)  # nothing decoded, no reference loaded
    ev = Evaluator(restarted, holder="warm")
    assert ev.warm(now=end) > 0
    assert any(len(k) == 5 for k in restarted.tiles._items)  # segment partials too
    with monitor.db.read() as conn:
        v = models_repo.get_version(conn, models_repo.get_model(conn, name))
    assert v.id in restarted.refs._cache
    decoded = restarted.tiles.misses
    warmed = ev.evaluate_once(now=end)
    assert restarted.tiles.misses == decoded  # the cycle found every partial decoded
    with monitor.db.write() as conn:
        conn.execute(leases.delete())
    unwarmed = Evaluator(Monitor(monitor.db), holder="warm").evaluate_once(now=end)
    assert warmed.instances == unwarmed.instances > 0 and warmed.errors == unwarmed.errors


def test_the_loop_warms_before_its_first_cycle(monitor: Monitor) -> None:
    from aiwarden.alerting.evaluator import EvaluationLoop

    _segmented_model(monitor, (time.time() // HOUR) * HOUR)
    restarted = Monitor(monitor.db)
    cycles = []
    loop = EvaluationLoop(Evaluator(restarted, holder="loop"), every=3600,
                          after=cycles.append)
    loop.start()
    try:
        deadline = time.monotonic() + 120
        while not len(restarted.tiles) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(restarted.tiles) > 0 and cycles == []  # warmed, no cycle yet
    finally:
        loop.stop.set()
        loop.join(timeout=120)
    assert not loop.is_alive() and cycles == []
