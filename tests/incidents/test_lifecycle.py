"""The pure rules: every status pair, monotonic times, escalation over simulated time,
MTTA/MTTR against hand-computed values, and the postmortem draft."""

from __future__ import annotations

import itertools

import pytest

from aiwarden.errors import ParameterError
from aiwarden.incidents import (
    DueStep,
    EscalationPolicy,
    EscalationStep,
    Incident,
    IncidentAlert,
    Progress,
    Status,
    TimelineEntry,
    draft,
    due_steps,
    response_times,
    transition,
)
from aiwarden.incidents.postmortem import describe, format_duration

T0 = 1_700_000_000.0
S = Status

# Written out by hand (not derived from TRANSITIONS) so the test pins the rules.
ALLOWED = {
    (S.TRIGGERED, S.ACKNOWLEDGED), (S.TRIGGERED, S.MITIGATED), (S.TRIGGERED, S.RESOLVED),
    (S.TRIGGERED, S.DECLINED),
    (S.ACKNOWLEDGED, S.MITIGATED), (S.ACKNOWLEDGED, S.RESOLVED), (S.ACKNOWLEDGED, S.DECLINED),
    (S.MITIGATED, S.RESOLVED),
}

PATH = {  # how to reach each status from triggered
    S.TRIGGERED: [], S.ACKNOWLEDGED: [S.ACKNOWLEDGED],
    S.MITIGATED: [S.ACKNOWLEDGED, S.MITIGATED],
    S.RESOLVED: [S.ACKNOWLEDGED, S.MITIGATED, S.RESOLVED], S.DECLINED: [S.DECLINED],
}


def _incident(status: Status = S.TRIGGERED) -> Incident:
    inc = Incident(id=7, model="fraud", key="drift", title="t", severity="warning",
                   status=S.TRIGGERED, created_at=T0)
    for i, s in enumerate(PATH[status], start=1):
        inc = transition(inc, s, T0 + 60 * i)
    assert inc.status == status
    return inc


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(Status, Status)))
def test_every_pair_of_statuses(src: Status, dst: Status) -> None:
    inc = _incident(src)
    at = inc.last_transition_at + 10
    if (src, dst) in ALLOWED:
        moved = transition(inc, dst, at)
        assert moved.status == dst
        assert moved.last_transition_at == at
        assert inc.status == src  # the input is untouched
    else:
        with pytest.raises(ParameterError) as err:
            transition(inc, dst.value, at)
        assert err.value.field == "status"
        assert f"Got {dst.value!r} instead" in str(err.value)
        assert f"when it is {src.value!r}" in str(err.value)


def test_unknown_status_names_the_field() -> None:
    with pytest.raises(ParameterError, match="must be one of") as err:
        transition(_incident(), "fixed", T0 + 1)
    assert err.value.field == "status"


def test_timestamps_each_status_sets() -> None:
    inc = _incident()
    acked = transition(inc, "acknowledged", T0 + 30)
    assert (acked.acknowledged_at, acked.mitigated_at, acked.resolved_at) == (T0 + 30, None, None)
    mitigated = transition(inc, S.MITIGATED, T0 + 40)  # mitigating implies acknowledging
    assert (mitigated.acknowledged_at, mitigated.mitigated_at) == (T0 + 40, T0 + 40)
    resolved = transition(acked, S.RESOLVED, T0 + 90)
    assert (resolved.acknowledged_at, resolved.resolved_at) == (T0 + 30, T0 + 90)
    auto = transition(inc, S.RESOLVED, T0 + 50)  # resolved by itself: never acknowledged
    assert auto.acknowledged_at is None and auto.resolved_at == T0 + 50
    declined = transition(acked, S.DECLINED, T0 + 35)
    assert declined.declined_at == T0 + 35 and declined.resolved_at is None
    assert declined.status.closed and resolved.status.closed and not mitigated.status.closed


def test_times_are_monotonic() -> None:
    acked = transition(_incident(), S.ACKNOWLEDGED, T0 + 100)
    with pytest.raises(ParameterError, match="must not be earlier") as err:
        transition(acked, S.MITIGATED, T0 + 99)
    assert err.value.field == "at"
    assert transition(acked, S.MITIGATED, T0 + 100).mitigated_at == T0 + 100  # equal is fine
    with pytest.raises(ParameterError) as err:
        transition(_incident(), S.ACKNOWLEDGED, T0 - 1)  # before it opened
    assert err.value.field == "at"
    with pytest.raises(ParameterError) as err:
        transition(_incident(), S.ACKNOWLEDGED, float("nan"))
    assert err.value.field == "at"


# -- escalation -------------------------------------------------------------------------

POLICY = EscalationPolicy((EscalationStep(0, "primary"), EscalationStep(15, "secondary"),
                           EscalationStep(30, "manager")), repeat=1, name="fraud")


def _simulate(policy: EscalationPolicy, start: float, until_minute: int,
              stop_at_minute: int | None = None) -> list[tuple[float, str, int]]:
    """Tick once a minute, as the loop would; acknowledging stops the progress."""
    progress: Progress | None = Progress(0, 0, start)
    fired = []
    for minute in range(until_minute + 1):
        if stop_at_minute is not None and minute >= stop_at_minute:
            break
        steps, progress = due_steps(policy, progress, start + 60 * minute)
        fired += [((s.due_at - start) / 60, s.receiver, s.round) for s in steps]
    return fired


def test_escalation_steps_over_simulated_time() -> None:
    assert _simulate(POLICY, T0, 200) == [
        (0, "primary", 0), (15, "secondary", 0), (45, "manager", 0),
        (45, "primary", 1), (60, "secondary", 1), (90, "manager", 1)]


def test_acknowledging_stops_escalation() -> None:
    assert _simulate(POLICY, T0, 200, stop_at_minute=20) == [
        (0, "primary", 0), (15, "secondary", 0)]


def test_escalation_catches_up_after_an_outage() -> None:
    steps, progress = due_steps(POLICY, Progress(0, 0, T0), T0 + 50 * 60)
    assert steps == [DueStep(0, 0, "primary", T0), DueStep(1, 0, "secondary", T0 + 900),
                     DueStep(2, 0, "manager", T0 + 2700), DueStep(0, 1, "primary", T0 + 2700)]
    assert progress == Progress(1, 1, T0 + 2700)
    assert due_steps(POLICY, progress, T0 + 50 * 60) == ([], progress)  # nothing twice
    assert due_steps(POLICY, None, T0 + 10**6) == ([], None)


def test_escalation_policy_checks_and_round_trips() -> None:
    assert EscalationPolicy.from_dict(POLICY.to_dict()) == POLICY
    with pytest.raises(ParameterError) as err:
        EscalationPolicy(())
    assert err.value.field == "steps"
    with pytest.raises(ParameterError) as err:
        EscalationPolicy((EscalationStep(1, "a"),), repeat=-1)
    assert err.value.field == "repeat"
    for bad in (-1, float("inf"), "5"):
        with pytest.raises(ParameterError) as err:
            EscalationStep(bad, "a")  # type: ignore[arg-type]
        assert err.value.field == "wait_minutes"
    with pytest.raises(ParameterError) as err:
        EscalationStep(1, "")
    assert err.value.field == "receiver"


# -- MTTA / MTTR ------------------------------------------------------------------------


def _closed(id_: int, model: str, created: float, ack: float | None, end: float | None,
            status: Status) -> Incident:
    inc = Incident(id=id_, model=model, key="k", title="t", severity="critical",
                   status=S.TRIGGERED, created_at=created)
    if ack is not None:
        inc = transition(inc, S.ACKNOWLEDGED, ack)
    if end is not None:
        inc = transition(inc, status, end)
    return inc


def test_mtta_mttr_by_hand() -> None:
    incs = [
        _closed(1, "a", T0, T0 + 60, T0 + 600, S.RESOLVED),  # ack 60 s, resolved 600 s
        _closed(2, "a", T0 + 1000, T0 + 1180, T0 + 2800, S.RESOLVED),  # ack 180, res 1800
        _closed(3, "a", T0 + 2000, None, T0 + 2300, S.RESOLVED),  # auto: res 300, no ack
        _closed(4, "a", T0 + 3000, T0 + 3030, T0 + 3100, S.DECLINED),  # ack 30, not in MTTR
        _closed(5, "a", T0 + 4000, None, None, S.TRIGGERED),  # still open
        _closed(6, "a", T0 + 9000, T0 + 9001, T0 + 9002, S.RESOLVED),  # outside the range
        _closed(7, "b", T0 + 10, T0 + 20, T0 + 110, S.RESOLVED),
    ]
    got = response_times(incs, T0, T0 + 9000, models=["c"])
    a = got["a"]
    assert (a.incidents, a.acknowledged, a.resolved) == (5, 3, 3)
    assert a.mtta_seconds == pytest.approx((60 + 180 + 30) / 3)
    assert a.mttr_seconds == pytest.approx((600 + 1800 + 300) / 3)
    assert (got["b"].mtta_seconds, got["b"].mttr_seconds) == (10, 100)
    assert got["c"].to_dict() == {"model": "c", "start": T0, "end": T0 + 9000, "incidents": 0,
                                  "acknowledged": 0, "resolved": 0, "mtta_seconds": None,
                                  "mttr_seconds": None}
    with pytest.raises(ParameterError) as err:
        response_times(incs, T0, T0)
    assert err.value.field == "end"


# -- postmortem -------------------------------------------------------------------------


def test_postmortem_draft_holds_the_timeline() -> None:
    alert = IncidentAlert("fp1", "drift-share", {"rule": "drift-share", "model": "fraud",
                                                 "version": "v3", "column": "amount",
                                                 "team": "risk"},
                          {"summary": "amount drifted"}, "critical", "resolved", T0, T0 + 900)
    inc = Incident(id=3, model="fraud", key="drift-share", title="drift-share firing on fraud",
                   severity="critical", status=S.TRIGGERED, created_at=T0, alerts=(alert,),
                   runbooks=("https://wiki/runbooks/drift",))
    inc = transition(transition(inc, S.ACKNOWLEDGED, T0 + 120), S.RESOLVED, T0 + 900)
    timeline = [
        TimelineEntry(T0, "system", "opened", {"title": inc.title}),
        TimelineEntry(T0, "system", "alert_fired", {"rule": "drift-share", "column": "amount",
                                                    "severity": "critical", "value": 0.31}),
        TimelineEntry(T0 + 60, "system", "notification", {"receiver": "oncall", "ok": True}),
        TimelineEntry(T0 + 120, "ana", "status", {"from": "triggered", "to": "acknowledged"}),
        TimelineEntry(T0 + 300, "ana", "action", {"text": "rolled back to v2"}),
        TimelineEntry(T0 + 400, "bo", "comment", {"text": "upstream feed fixed"}),
        TimelineEntry(T0 + 900, "system", "alert_resolved", {"rule": "drift-share"}),
        TimelineEntry(T0 + 900, "system", "status", {"from": "acknowledged", "to": "resolved"}),
    ]
    pm = draft(inc, timeline, factors=["feed schema change upstream"])
    md = pm.to_markdown()
    for entry in timeline:
        assert describe(entry) in md
    assert "rolled back to v2" in md and "upstream feed fixed" in md
    assert "- Duration: 15 min" in md and "Time to acknowledge: 2 min" in md
    assert "acknowledged after 2 min by ana" in pm.summary
    assert pm.versions == ("v3",)  # from the alerts' labels when not passed in
    assert pm.contributing_factors == (
        "drift-share fired (critical) on column amount, version v3, team=risk: amount drifted",
        "feed schema change upstream")
    assert [e.kind for e in pm.actions] == ["status", "action"]  # people's, not the system's
    d = pm.to_dict()
    assert d["impact"] == {"model": "fraud", "duration_seconds": 900.0, "alerts": 1,
                           "severity": "critical", "columns": ["amount"]}
    assert d["detection"]["detected_at"] == T0
    assert [e["kind"] for e in d["timeline"]] == [e.kind for e in timeline]
    assert draft(inc, timeline, versions=["v4"]).versions == ("v4",)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.6, "1 min"), (61, "1 min 1 s"),
                                               (3600, "1 h"), (3660, "1 h 1 min"),
                                               (3601, "1 h 0 min 1 s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_public_surface_is_pinned() -> None:
    import aiwarden.incidents as incidents

    assert incidents.__all__ == [
        "TRANSITIONS", "AlertInfo", "Comment", "DueStep", "Escalation", "EscalationPolicy",
        "EscalationStep", "Incident", "IncidentAlert", "IncidentService", "Postmortem",
        "Progress", "ResponseTimes", "Status", "StoredPostmortem", "TimelineEntry", "draft",
        "due_steps", "response_times", "transition"]
    assert all(getattr(incidents, name) is not None for name in incidents.__all__)
