"""Incidents on real databases (SQLite and PostgreSQL, migrated to head): open, join and
new-after-resolve, auto-resolve and hold-open, escalation with acknowledgement, MTTA/MTTR,
postmortems, and a restart that continues the open incident."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from aiwarden.alerting.state import AlertState, Condition, Evaluation, Transition, step
from aiwarden.errors import ParameterError
from aiwarden.incidents import (
    AlertInfo,
    EscalationPolicy,
    EscalationStep,
    IncidentService,
    Status,
)
from aiwarden.incidents import store as incident_store
from aiwarden.incidents.postmortem import describe
from aiwarden.store.database import Database
from aiwarden.store.models_repo import NotFound

T0 = 1_700_000_000.0
MIN = 60.0
POLICY = EscalationPolicy((EscalationStep(0, "primary"), EscalationStep(10, "secondary")),
                          repeat=1, name="team")


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def model() -> str:
    """A model of its own per test: the database is shared by the module's tests."""
    return f"m-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def svc(db: Database, model: str) -> IncidentService:
    return IncidentService(db, policies={model: POLICY})


def _labels(model: str, rule: str = "drift", column: str | None = "amount") -> dict[str, str]:
    return {"rule": rule, "model": model, "version": "v1",
            **({"column": column} if column else {})}


def fire(svc: IncidentService, labels: dict[str, str], at: float, severity: str = "warning",
         info: AlertInfo | None = None) -> int:
    inc = svc.on_transition(labels, Transition("firing", at, severity, 0.3), info)
    assert inc is not None
    return inc.id


def clear(svc: IncidentService, labels: dict[str, str], at: float) -> None:
    svc.on_transition(labels, Transition("resolved", at, "warning", 0.01))


def test_open_join_and_new_after_resolve(svc: IncidentService, model: str) -> None:
    a, b = _labels(model, column="amount"), _labels(model, column="age")
    rb = AlertInfo(runbook="https://wiki/drift")
    first = fire(svc, a, T0, info=rb)
    assert fire(svc, b, T0 + MIN, "critical", rb) == first  # joins
    other = fire(svc, _labels(model, rule="latency", column=None), T0 + MIN)
    assert other != first  # another key, another incident
    inc = svc.get(first)
    assert (inc.status, inc.severity, inc.key) == (Status.TRIGGERED, "critical", "drift")
    assert inc.runbooks == ("https://wiki/drift",)
    assert {al.labels["column"]: al.state for al in inc.alerts} == {"amount": "firing",
                                                                     "age": "firing"}
    assert svc.find_open(model, "drift") == inc
    svc.resolve(first, "ana", T0 + 5 * MIN)
    assert svc.find_open(model, "drift") is None
    # the alert ana saw firing when she resolved it "fires" again within the reopen window
    # (300 s): she judged it, nothing reopens; past the window, a new incident
    assert fire(svc, a, T0 + 6 * MIN) == first and svc.get(first).status == Status.RESOLVED
    again = fire(svc, a, T0 + 11 * MIN)
    assert again not in (first, other)
    assert [i.id for i in svc.list_incidents(model=model, open_only=True)] == [again, other]
    clear(svc, a, T0 + 12 * MIN)  # the alert resolves in both incidents that hold it
    assert svc.get(again).status == Status.RESOLVED  # its only alert: auto-resolved
    old = svc.get(first)
    assert (old.status, old.resolved_at) == (Status.RESOLVED, T0 + 5 * MIN)  # unchanged
    assert {al.labels["column"]: al.state for al in old.alerts} == {"amount": "resolved",
                                                                     "age": "firing"}
    assert svc.timeline(first)[-1].kind == "alert_resolved"


def test_declined_and_shared_keys(svc: IncidentService, model: str) -> None:
    perf = {"incident_key": "performance"}
    one = fire(svc, _labels(model, rule="realised-f1", column=None) | perf, T0)
    two = fire(svc, _labels(model, rule="estimated-f1", column=None) | perf, T0 + 1)
    assert one == two and svc.get(one).key == "performance"  # rules sharing a key
    svc.decline(one, "ana", T0 + 60, note="labels were late")
    assert svc.get(one).declined_at == T0 + 60
    assert fire(svc, _labels(model, rule="realised-f1", column=None) | perf, T0 + 120) != one
    with pytest.raises(ParameterError) as err:
        svc.on_transition({"rule": "x"}, Transition("firing", T0))
    assert err.value.field == "labels"
    assert svc.on_transition(_labels(model), Transition("pending", T0)) is None


def test_auto_resolve_when_every_alert_resolves(svc: IncidentService, model: str) -> None:
    a, b = _labels(model, column="amount"), _labels(model, column="age")
    iid = fire(svc, a, T0)
    fire(svc, b, T0 + MIN)
    clear(svc, a, T0 + 2 * MIN)
    assert svc.get(iid).status == Status.TRIGGERED  # "age" still fires
    svc.on_transition(b, Transition("recovering", T0 + 3 * MIN, "warning", 0.1))
    assert {al.labels["column"]: al.state for al in svc.get(iid).alerts} == {
        "amount": "resolved", "age": "recovering"}
    clear(svc, b, T0 + 4 * MIN)
    inc = svc.get(iid)
    assert (inc.status, inc.resolved_at, inc.acknowledged_at) == (
        Status.RESOLVED, T0 + 4 * MIN, None)
    last = svc.timeline(iid)[-1]
    assert (last.actor, last.kind, last.detail["to"]) == ("system", "status", "resolved")


def test_hold_open_keeps_it_until_released(svc: IncidentService, model: str) -> None:
    a = _labels(model)
    iid = fire(svc, a, T0)
    svc.acknowledge(iid, "ana", T0 + MIN)
    svc.hold_open(iid, True, "ana", T0 + 2 * MIN)
    clear(svc, a, T0 + 3 * MIN)
    inc = svc.get(iid)
    assert (inc.status, inc.held_open, inc.alerts_active) == (Status.ACKNOWLEDGED, True, False)
    assert svc.timeline(iid)[-1].kind == "auto_resolve_held"
    refire = fire(svc, a, T0 + 4 * MIN)  # the alert comes back: same incident, still open
    assert refire == iid and svc.get(iid).alerts[0].state == "firing"
    clear(svc, a, T0 + 5 * MIN)
    released = svc.hold_open(iid, False, "ana", T0 + 6 * MIN)
    assert (released.status, released.resolved_at) == (Status.RESOLVED, T0 + 6 * MIN)
    with pytest.raises(ParameterError) as err:
        svc.hold_open(iid, True, "ana", T0 + 7 * MIN)
    assert err.value.field == "held"


def test_transitions_by_people_are_checked(svc: IncidentService, model: str) -> None:
    iid = fire(svc, _labels(model), T0)
    svc.acknowledge(iid, "ana", T0 + MIN)
    with pytest.raises(ParameterError) as err:
        svc.mitigate(iid, "ana", T0 + 30)  # earlier than the acknowledgement
    assert err.value.field == "at"
    svc.mitigate(iid, "ana", T0 + 2 * MIN, note="rolled back")
    with pytest.raises(ParameterError) as err:
        svc.decline(iid, "bo", T0 + 3 * MIN)  # mitigated cannot be a false positive
    assert err.value.field == "status"
    inc = svc.get(iid)
    assert (inc.status, inc.acknowledged_at, inc.mitigated_at) == (
        Status.MITIGATED, T0 + MIN, T0 + 2 * MIN)
    with pytest.raises(NotFound):
        svc.get(10**9)


def test_timeline_records_everything_in_order(svc: IncidentService, model: str) -> None:
    a = _labels(model)
    iid = fire(svc, a, T0)
    svc.record_notification(iid, "slack-ml", T0 + 5)
    svc.assign(iid, "ana", "bo", T0 + 10)
    svc.comment(iid, "looking at the feed", "ana", T0 + 20)
    svc.on_transition(a, Transition("escalated", T0 + 25, "critical", 0.5,
                                    {"from": "warning"}))
    svc.acknowledge(iid, "ana", T0 + 30)
    svc.record_action(iid, "rolled back to v0", "ana", T0 + 40)
    clear(svc, a, T0 + 50)
    entries = svc.timeline(iid)
    assert [(e.kind, e.actor) for e in entries] == [
        ("opened", "system"), ("alert_fired", "system"), ("notification", "system"),
        ("assigned", "bo"), ("comment", "ana"), ("alert_severity", "system"),
        ("severity", "system"), ("status", "ana"), ("action", "ana"),
        ("alert_resolved", "system"), ("status", "system")]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    inc = svc.get(iid)
    assert (inc.assignee, inc.severity) == ("ana", "critical")
    assert [(c.actor, c.text) for c in inc.comments] == [("ana", "looking at the feed")]
    with pytest.raises(ParameterError):
        svc.comment(iid, "  ", "ana")


def test_escalation_over_simulated_time(svc: IncidentService, model: str) -> None:
    iid = fire(svc, _labels(model), T0)
    quiet = IncidentService(svc.db)  # no policy for this model: never escalates
    other = fire(quiet, _labels(f"{model}-x"), T0)

    def tick(minute: float) -> list[tuple[str, int]]:
        due = svc.due_escalations(T0 + minute * MIN)
        assert all(e.incident.id != other for e in due)
        return [(e.step.receiver, e.step.round) for e in due if e.incident.model == model]

    assert tick(0) == [("primary", 0)]
    assert tick(0) == []  # claimed once
    assert tick(9) == []
    assert tick(10) == [("secondary", 0), ("primary", 1)]  # repeat: primary's wait is 0
    assert tick(19) == []
    svc.acknowledge(iid, "ana", T0 + 19.5 * MIN)  # stops it: secondary's repeat never fires
    assert tick(60) == []
    assert svc.escalation(iid) == (POLICY, None)
    esc = [e.detail["receiver"] for e in svc.timeline(iid) if e.kind == "escalation"]
    assert esc == ["primary", "secondary", "primary"]


def test_resolved_incidents_never_escalate(svc: IncidentService, model: str) -> None:
    a = _labels(model)
    fire(svc, a, T0)
    clear(svc, a, T0 + 30)  # resolved before the first step was ever due-checked
    assert [e for e in svc.due_escalations(T0 + 100 * MIN) if e.incident.model == model] == []


def test_mtta_mttr_per_model(svc: IncidentService, model: str) -> None:
    one = fire(svc, _labels(model, rule="r1"), T0)
    svc.acknowledge(one, "ana", T0 + 120)
    svc.resolve(one, "ana", T0 + 900)
    two = fire(svc, _labels(model, rule="r2"), T0 + 1000)
    svc.acknowledge(two, "bo", T0 + 1060)
    clear(svc, _labels(model, rule="r2"), T0 + 1300)  # auto-resolved
    three = fire(svc, _labels(model, rule="r3"), T0 + 2000)
    svc.decline(three, "bo", T0 + 2030)  # never acknowledged, never resolved
    fire(svc, _labels(model, rule="r4"), T0 + 5000)  # after the range
    got = svc.response_times(T0, T0 + 3600, model=model)[model]
    assert (got.incidents, got.acknowledged, got.resolved) == (3, 2, 2)
    assert got.mtta_seconds == pytest.approx((120 + 60) / 2)
    assert got.mttr_seconds == pytest.approx((900 + 300) / 2)
    assert svc.response_times(T0, T0 + 3600, model=f"{model}-none")[
        f"{model}-none"].incidents == 0


def test_postmortem_drafted_on_resolution_and_editable(svc: IncidentService,
                                                       model: str) -> None:
    a = _labels(model)
    iid = fire(svc, a, T0, "critical", AlertInfo("https://wiki/drift",
                                                  {"summary": "amount drifted"}))
    assert svc.postmortem(iid).text is None
    svc.acknowledge(iid, "ana", T0 + 60)
    svc.record_action(iid, "pinned the previous reference", "ana", T0 + 90)
    svc.resolve(iid, "ana", T0 + 600, versions=["v1", "v2"])
    stored = svc.postmortem(iid)
    assert not stored.edited and stored.text is not None
    for entry in svc.timeline(iid):
        assert describe(entry) in stored.text
    for text in ("pinned the previous reference", "alert fired: drift [amount]",
                 "status acknowledged → resolved", "- v2", "amount drifted",
                 "https://wiki/drift", "- Duration: 10 min"):
        assert text in stored.text
    edited = svc.edit_postmortem(iid, stored.text + "\nRoot cause: feed change.\n", "ana",
                                 T0 + 700)
    assert edited.edited_by == "ana" and "Root cause" in svc.postmortem(iid).text
    assert svc.timeline(iid)[-1].kind == "postmortem_edited"
    pm = svc.draft_postmortem(iid, versions=["v1"])
    assert pm.to_dict()["versions"] == ["v1"] and pm.impact["severity"] == "critical"


def test_one_open_incident_per_key_even_when_raced(db: Database, model: str) -> None:
    with db.write() as conn:
        first = incident_store.insert_incident(conn, model=model, key="k", title="t",
                                               severity=None, created_at=T0, runbooks=())
        second = incident_store.insert_incident(conn, model=model, key="k", title="t",
                                                severity=None, created_at=T0, runbooks=())
    assert first is not None and second is None


def test_real_alert_transitions_drive_an_incident(svc: IncidentService, model: str) -> None:
    cond = Condition(op=">", warning=0.2, critical=0.5, for_seconds=120)
    labels = _labels(model)
    state, seen = AlertState(), []
    for i, value in enumerate([0.1, 0.3, 0.3, 0.6, 0.6, 0.1, 0.1]):
        state, events = step(state, Evaluation(value), cond, T0 + 60 * i)
        seen += [e.kind for e in events]
        svc.on_transitions([(labels, e) for e in events],
                           lambda _l: AlertInfo(runbook="rb", title="Amount drift"))
    assert seen == ["pending", "firing", "recovering", "resolved"]
    (inc,) = svc.list_incidents(model=model)
    assert (inc.title, inc.status, inc.runbooks) == ("Amount drift", Status.RESOLVED, ("rb",))


def test_restart_sees_the_open_incident_and_continues(db_url: str, model: str) -> None:
    first_db = Database(db_url)
    before = IncidentService(first_db, policies={model: POLICY})
    a, b = _labels(model, column="amount"), _labels(model, column="age")
    iid = fire(before, a, T0)
    fire(before, b, T0 + 10)
    assert [e.step.receiver for e in before.due_escalations(T0 + MIN)
            if e.incident.model == model] == ["primary"]
    first_db.dispose()  # the process goes away

    second_db = Database(db_url)
    try:
        after = IncidentService(second_db)  # no policies configured: the stored one continues
        inc = after.find_open(model, "drift")
        assert inc is not None and inc.id == iid and len(inc.alerts) == 2
        assert fire(after, a, T0 + 2 * MIN) == iid  # still joins the same incident
        assert [e.step.receiver for e in after.due_escalations(T0 + 11 * MIN)
                if e.incident.model == model] == ["secondary", "primary"]
        clear(after, a, T0 + 12 * MIN)
        clear(after, b, T0 + 13 * MIN)
        assert after.get(iid).status == Status.RESOLVED
        assert after.postmortem(iid).text is not None
    finally:
        second_db.dispose()


def test_one_failure_is_one_incident_with_every_alert_on_its_timeline(
        svc: IncidentService, model: str) -> None:
    """A bad canary trips the canary-accuracy rule and the default realised-AUC rule seconds
    apart: one incident holds both; drift on the same version, performance on another version
    and an alert after the group window open incidents of their own."""
    from aiwarden.alerting.rules import Rule

    rules = {r.name: r for r in (
        Rule(name="canary-accuracy", metric="performance", stat="accuracy", op="<",
             critical=0.9),
        Rule(name="realised-auc", metric="estimated_performance", op="<", critical=0.8),
        Rule(name="feature-drift", metric="drift", critical=1.0))}
    infos = {name: AlertInfo.from_rule(r) for name, r in rules.items()}
    assert infos["canary-accuracy"].symptom == infos["realised-auc"].symptom == "performance"

    def cycle(*alerts: tuple[str, str, float]) -> list[int]:
        touched = svc.on_transitions(
            [({"rule": rule, "model": model, "version": version},
              Transition("firing", at, "critical", 0.5)) for rule, version, at in alerts],
            info=lambda labels: infos.get(labels["rule"]))
        return [i.id for i in touched]

    (first,) = cycle(("realised-auc", "2", T0))
    assert cycle(("canary-accuracy", "2", T0 + 10)) == [first]
    drift, other_version = cycle(("feature-drift", "2", T0 + 20),
                                 ("canary-accuracy", "1", T0 + 30))
    assert len({first, drift, other_version}) == 3
    (inc,) = [i for i in svc.list_incidents(model=model) if i.id == first]
    assert sorted(a.rule for a in inc.alerts) == ["canary-accuracy", "realised-auc"]
    fired = [(e.detail["rule"], e.at) for e in svc.timeline(first) if e.kind == "alert_fired"]
    assert fired == [("realised-auc", T0), ("canary-accuracy", T0 + 10)]
    assert svc.find_holding(model, "canary-accuracy", "2").id == first
    # outside the window (or with grouping off) the same pair would be two incidents
    late = cycle(("realised-auc", "3", T0 + 60), ("canary-accuracy", "3", T0 + 60 + 901))
    assert len(set(late)) == 2
    off = IncidentService(svc.db, group_window=0)
    other = f"{model}-off"
    ids = [i.id for i in off.on_transitions(
        [({"rule": r, "model": other, "version": "2"}, Transition("firing", T0, "critical", 0.5))
         for r in ("realised-auc", "canary-accuracy")], info=lambda lb: infos[lb["rule"]])]
    assert len(set(ids)) == 2
    with pytest.raises(ParameterError, match="group_window"):
        IncidentService(svc.db, group_window=-1)


def test_an_alert_back_within_the_window_reopens_its_incident(svc: IncidentService,
                                                              model: str) -> None:
    a = _labels(model, column="amount")
    first = fire(svc, a, T0)
    clear(svc, a, T0 + MIN)  # auto-resolved
    assert fire(svc, a, T0 + 3 * MIN) == first  # back within 300 s: reopened
    inc = svc.get(first)
    assert (inc.status, inc.resolved_at, inc.created_at) == (Status.TRIGGERED, None, T0)
    [entry] = [e for e in svc.timeline(first) if e.kind == "reopened"]
    assert entry.detail["text"] == "reopened: drift fired again"
    assert (entry.at, entry.detail["resolved_by"]) == (T0 + 3 * MIN, "system")
    svc.acknowledge(first, "ana", T0 + 4 * MIN)
    clear(svc, a, T0 + 5 * MIN)
    with pytest.raises(ParameterError):  # the clear resolved it already
        svc.resolve(first, "ana", T0 + 6 * MIN)
    assert svc.get(first).resolved_at == T0 + 5 * MIN
    assert fire(svc, a, T0 + 7 * MIN) == first
    entry = [e for e in svc.timeline(first) if e.kind == "reopened"][-1]
    assert entry.detail["resolved_by"] == "system"
    assert svc.get(first).acknowledged_at == T0 + 4 * MIN  # the first response stays
    svc.hold_open(first, True, "ana", T0 + 8 * MIN)
    clear(svc, a, T0 + 8 * MIN)  # held open: ana resolves it after the alert cleared
    svc.resolve(first, "ana", T0 + 9 * MIN)
    assert fire(svc, a, T0 + 10 * MIN) == first  # it came back: her fix did not hold
    entry = [e for e in svc.timeline(first) if e.kind == "reopened"][-1]
    assert entry.detail["text"] == "reopened: drift fired again (resolved by ana)"
    assert svc.get(first).status == Status.TRIGGERED
    svc.resolve(first, "ana", T0 + 11 * MIN)  # while it fires: she judged it
    clear(svc, a, T0 + 12 * MIN)
    assert fire(svc, a, T0 + 13 * MIN) == first  # its flap is on the timeline, no reopen
    assert svc.get(first).status == Status.RESOLVED
    assert [e.at for e in svc.timeline(first) if e.kind == "alert_fired"][-1] == T0 + 13 * MIN
    clear(svc, a, T0 + 14 * MIN)
    other = fire(svc, a | {"version": "v2"}, T0 + 15 * MIN)  # another version's failure
    assert other != first and svc.get(first).status == Status.RESOLVED
    clear(svc, a | {"version": "v2"}, T0 + 15 * MIN)
    assert fire(svc, a, T0 + 20 * MIN) not in (first, other)  # past the window: new
    off = IncidentService(svc.db, reopen_window=0)
    b = _labels(model, rule="volume", column=None)
    one = fire(off, b, T0)
    clear(off, b, T0 + MIN)
    assert fire(off, b, T0 + 2 * MIN) != one
    with pytest.raises(ParameterError) as err:
        IncidentService(svc.db, reopen_window=-1)
    assert err.value.field == "reopen_window"
