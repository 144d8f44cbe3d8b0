"""Routing tree, grouping timers, silences and inhibition: pure logic, time passed in."""

from __future__ import annotations

import doctest
import itertools
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiwarden.alerting import grouping, routing, silences
from aiwarden.alerting.grouping import Dispatcher, Flush, to_notification
from aiwarden.alerting.notifiers import WebhookReceiver
from aiwarden.alerting.routing import Matcher, Router, parse_matchers
from aiwarden.alerting.silences import InhibitRule, Silence, Silences
from aiwarden.errors import ParameterError

GW, GI = 30.0, 300.0  # group_wait, group_interval used throughout


def test_public_surface_is_pinned() -> None:
    assert routing.__all__ == ["OPS", "Matcher", "Route", "Router", "matches_all",
                               "parse_matchers"]
    assert silences.__all__ == ["InhibitRule", "Inhibitor", "NoSuchSilence", "Silence",
                                "SilenceExpired", "Silences"]
    assert grouping.__all__ == ["Dispatcher", "Flush", "to_notification"]


@pytest.mark.parametrize("module", [routing, silences, grouping])
def test_module_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# -- matchers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("model=fraud", {"model": "fraud"}, True),
    ("model=fraud", {"model": "fraud-v2"}, False),
    ('model!="fraud"', {"model": "credit"}, True),
    ("model!=fraud", {"model": "fraud"}, False),
    ('model=~"fraud.*"', {"model": "fraud-v2"}, True),
    ("model=~fraud", {"model": "fraud-v2"}, False),  # anchored: the whole value must match
    ("model=~fraud", {"model": "old-fraud"}, False),
    ("model!~fraud|credit", {"model": "churn"}, True),
    ("model!~fraud|credit", {"model": "credit"}, False),
    ('team=""', {"model": "x"}, True),  # a missing label is the empty string
    ('team!=""', {"model": "x"}, False),
    ('team=~".+"', {"team": "ml"}, True),
])
def test_matcher_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


def test_matcher_lists_parse_from_strings_lists_and_dicts() -> None:
    want = (Matcher("a", "=", "x,y"), Matcher("b", "=~", "c.*"), Matcher("d", "!=", "e f"))
    assert parse_matchers('{a="x,y", b=~"c.*", d!=e f}') == want
    assert parse_matchers(['a="x,y"', 'b=~c.*, d != "e f"']) == want
    assert parse_matchers([m.to_dict() for m in want]) == want
    assert parse_matchers({"model": "fraud", "code": 500}) == (
        Matcher("model", "=", "fraud"), Matcher("code", "=", "500"))
    # Alertmanager's silence API shape
    assert parse_matchers([{"name": "a", "value": "b.*", "isRegex": True, "isEqual": False}]) \
        == (Matcher("a", "!~", "b.*"),)
    assert parse_matchers(None) == ()


@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
       op=st.sampled_from(["=", "!="]), value=st.text(max_size=20))
@settings(max_examples=200, deadline=None)
def test_matcher_text_round_trips(name: str, op: str, value: str) -> None:
    m = Matcher(name, op, value)
    assert parse_matchers(str(m)) == (m,)
    assert parse_matchers([str(m), str(m)]) == (m, m)
    assert m.matches({name: value}) is (op == "=")


@given(value=st.text(max_size=20), other=st.text(max_size=20))
@settings(max_examples=200, deadline=None)
def test_regex_matchers_match_whole_values_only(value: str, other: str) -> None:
    m = Matcher("x", "=~", re.escape(value))
    assert m.matches({"x": value})
    assert m.matches({"x": value + other}) is (other == "")
    assert Matcher("x", "!~", re.escape(value)).matches({"x": value}) is False


@pytest.mark.parametrize(("spec", "field"), [
    ("model", "route.matchers"),
    ("1model=x", "route.matchers"),
    ('model=~"("', "route.matchers"),
    ("model=~(", "route.matchers"),
    (['a=b', 5], "route.matchers[1]"),
    ({"model": True}, "route.matchers.model"),
    ([{"name": "a", "op": "==", "value": "b"}], "route.matchers[0].op"),
    (42, "route.matchers"),
])
def test_bad_matchers_name_the_field(spec: object, field: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_matchers(spec, "route.matchers")
    assert info.value.field == field
    assert "route.matchers" in str(info.value)


def test_matcher_constructor_uses_the_house_template() -> None:
    with pytest.raises(ParameterError, match=r"The 'op' field of Matcher must be one of "
                                             r"\['=', '!=', '=~', '!~'\]\. Got '~' instead\."):
        Matcher("a", "~", "b")


# -- the routing tree -----------------------------------------------------------------------

TREE = """
receiver: ops
group_by: [alertname]
group_wait: 30s
group_interval: 5m
repeat_interval: 4h
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    continue: true
  - match: {team: ml}
    receiver: ml
    group_interval: 10m
    routes:
      - matchers: ['model=~"fraud.*"']
        receiver: fraud-team
        group_wait: 10s
      - matchers: ['model=~"fraud.*"']
        receiver: never-reached
      - match_re: {model: "churn|credit"}
        group_by: ['...']
  - matchers: ['model="fraud"']
    receiver: fraud-fallback
"""


@pytest.fixture(scope="module")
def tree() -> Router:
    return Router.from_config(TREE)


@pytest.mark.parametrize(("labels", "receivers"), [
    ({}, ["ops"]),
    ({"severity": "warning"}, ["ops"]),
    ({"severity": "critical"}, ["pager"]),  # continue, but no later sibling matches
    ({"severity": "critical", "team": "ml"}, ["pager", "ml"]),  # continue reaches ml too
    ({"team": "ml", "model": "fraud-v2"}, ["fraud-team"]),  # first matching child only
    ({"team": "ml", "model": "other"}, ["ml"]),  # no child matched: the parent handles it
    ({"team": "ml", "model": "credit"}, ["ml"]),  # receiver inherited from the parent
    ({"model": "fraud"}, ["fraud-fallback"]),
    ({"team": "ml", "model": "fraud"}, ["fraud-team"]),  # ml does not continue
    ({"severity": "critical", "team": "ml", "model": "fraud"}, ["pager", "fraud-team"]),
])
def test_router_matches_like_alertmanager(tree: Router, labels: dict[str, str],
                                          receivers: list[str]) -> None:
    assert [r.receiver for r in tree.match(labels)] == receivers


def test_children_inherit_unset_fields(tree: Router) -> None:
    fraud, = tree.match({"team": "ml", "model": "fraud"})
    assert (fraud.group_wait, fraud.group_interval, fraud.repeat_interval) == (10, 600, 14400)
    assert fraud.group_by == ("alertname",) and not fraud.group_by_all
    credit, = tree.match({"team": "ml", "model": "credit"})
    assert credit.receiver == "ml" and credit.group_by_all and credit.group_interval == 600
    pager, = tree.match({"severity": "critical"})
    assert (pager.group_wait, pager.group_interval) == (30, 300)
    default = Router.from_config({"receiver": "x"}).root
    assert (default.group_wait, default.group_interval, default.repeat_interval,
            default.group_by) == (30, 300, 14400, ())


def test_group_labels_follow_group_by(tree: Router) -> None:
    labels = {"alertname": "drift", "model": "credit", "team": "ml", "column": "age"}
    ml, = tree.match({"team": "ml", "model": "other"})
    assert ml.group_labels(labels) == {"alertname": "drift"}
    assert ml.group_labels({"model": "x"}) == {}  # absent labels are left out
    everything, = tree.match(labels)
    assert everything.group_labels(labels) == dict(sorted(labels.items()))


def test_route_keys_are_unique_and_stable(tree: Router) -> None:
    keys = [r.key for r in tree.routes()]
    assert len(set(keys)) == len(keys) == 7
    assert keys == [r.key for r in Router.from_config(TREE).routes()]
    assert all(tree.route(k).key == k for k in keys)  # type: ignore[union-attr]
    assert tree.route("nope") is None


@pytest.mark.parametrize(("config", "field"), [
    ({"group_by": ["model"]}, "route.receiver"),
    ({"receiver": "x", "matchers": ["a=b"]}, "route.matchers"),
    ({"receiver": "x", "continue": True}, "route.continue"),
    ({"receiver": "x", "grup_by": ["a"]}, "route.grup_by"),
    ({"receiver": "x", "group_wait": "soon"}, "route.group_wait"),
    ({"receiver": "x", "routes": [{}, {"group_interval": "0s"}]},
     "route.routes[1].group_interval"),
    ({"receiver": "x", "routes": [{"routes": [{"repeat_interval": "-1h"}]}]},
     "route.routes[0].routes[0].repeat_interval"),
    ({"receiver": "x", "group_by": ["...", "model"]}, "route.group_by"),
    ({"receiver": "x", "group_by": "model"}, "route.group_by"),
    ({"receiver": "x", "routes": [{"continue": "yes"}]}, "route.routes[0].continue"),
    ({"receiver": "x", "routes": [{"matchers": "a=~("}]}, "route.routes[0].matchers"),
    ({"receiver": "x", "routes": [{"receiver": ""}]}, "route.routes[0].receiver"),
    ({"receiver": "x", "routes": "child"}, "route.routes"),
    ({"receiver": "x", "routes": [{"match_re": ["a"]}]}, "route.routes[0].match_re"),
    ([1, 2], "route"),
])
def test_bad_route_configs_name_the_field(config: Any, field: str) -> None:
    with pytest.raises(ParameterError) as info:
        Router.from_config(config)
    assert info.value.field == field
    assert field in str(info.value)


def test_route_config_accepts_a_top_level_route_key_and_yaml() -> None:
    r = Router.from_config({"route": {"receiver": "x", "routes": [{"match": {"a": "b"},
                                                                    "receiver": "y"}]}})
    assert [x.receiver for x in r.match({"a": "b"})] == ["y"]
    with pytest.raises(ParameterError, match="not valid YAML"):
        Router.from_config("receiver: [unclosed")


# -- grouping and timing --------------------------------------------------------------------

def alert(model: str = "fraud", rule: str = "drift", status: str = "firing",
          severity: str = "warning", **extra: Any) -> dict[str, Any]:
    return {"labels": {"model": model, "rule": rule}, "status": status, "severity": severity,
            "annotations": {"summary": f"{rule} on {model}"}, **extra}


def router(**route: Any) -> Router:
    cfg = {"receiver": "ops", "group_by": ["model"], "group_wait": "30s",
           "group_interval": "5m", "repeat_interval": "1h", **route}
    return Router.from_config(cfg)


def run(d: Dispatcher, events: dict[float, list[dict[str, Any]]], until: float,
        every: float = 10.0, hook: Callable[[float], None] | None = None
        ) -> list[Flush]:
    """Poll ``due`` every ``every`` seconds, feeding ``events[t]`` just before each poll."""
    out = []
    t = 0.0
    while t <= until:
        if hook:
            hook(t)
        for a in events.get(t, []):
            d.receive(a, t)
        out += d.due(t)
        t += every
    return out


def summary(flushes: list[Flush]) -> list[tuple[float, str, list[str], list[str]]]:
    return [(f.at, f.group_labels.get("model", ""),
             [a["labels"]["rule"] for a in f.firing],
             [a["labels"]["rule"] for a in f.resolved]) for f in flushes]


def test_group_wait_batches_alerts_that_arrive_together() -> None:
    d = Dispatcher(router())
    d.receive(alert(rule="a"), 0)
    d.receive(alert(rule="b"), 12)
    d.receive(alert(rule="c"), 29)
    d.receive(alert(model="credit", rule="a"), 5)
    assert d.due(29.9) == []
    assert d.next_due() == 30
    first = d.due(30)
    assert summary(first) == [(30, "fraud", ["a", "b", "c"], [])]
    assert first[0].receiver == "ops" and first[0].status == "firing"
    assert summary(d.due(35)) == [(35, "credit", ["a"], [])]
    assert d.due(36) == []


def test_group_wait_0s_sends_a_new_group_at_once() -> None:
    """Review: ``group_wait: 0s`` was refused ("must be positive"); Alertmanager takes it.
    group_interval still spaces later changes; a zero group_interval stays refused."""
    d = Dispatcher(router(group_wait="0s"))
    assert d.router.root.group_wait == 0
    d.receive(alert(rule="a"), 7)
    assert d.next_due() == 7
    assert summary(d.due(7)) == [(7, "fraud", ["a"], [])]
    d.receive(alert(rule="b"), 8)
    assert d.due(8) == [] and d.next_due() == 7 + GI
    with pytest.raises(ParameterError, match=r"route\.group_interval"):
        router(group_interval="0s")


def test_a_new_alert_joining_a_notified_group_waits_for_group_interval() -> None:
    d = Dispatcher(router())
    flushes = run(d, {0: [alert(rule="a")], 60: [alert(rule="b")]}, until=700)
    assert summary(flushes) == [(30, "fraud", ["a"], []), (330, "fraud", ["a", "b"], [])]


def test_an_unchanged_firing_group_repeats_after_repeat_interval() -> None:
    d = Dispatcher(router())
    flushes = run(d, {0: [alert()]}, until=2.5 * 3600)
    assert [f.at for f in flushes] == [30, 30 + 3600, 30 + 7200]


def test_a_late_poll_sends_once_and_the_interval_restarts_from_it() -> None:
    d = Dispatcher(router())
    d.receive(alert(), 0)
    assert len(d.due(30)) == 1
    d.receive(alert(rule="b"), 40)
    assert len(d.due(1000)) == 1  # overdue ticks collapse into one
    assert d.next_due() == 1300


def test_resolved_alerts_are_sent_once_then_dropped() -> None:
    d = Dispatcher(router())
    events = {0: [alert(rule="a"), alert(rule="b")], 100: [alert(rule="a", status="resolved")],
              400: [alert(rule="b", status="resolved")],
              # Prometheus keeps resending resolved alerts for a while: ignored once sent
              700: [alert(rule="a", status="resolved"), alert(rule="b", status="resolved")]}
    flushes = run(d, events, until=3 * 3600)
    assert summary(flushes) == [(30, "fraud", ["a", "b"], []), (330, "fraud", ["b"], ["a"]),
                                (630, "fraud", [], ["b"])]
    assert flushes[-1].status == "resolved"
    assert flushes[1].resolved[0]["endsAt"] == 100
    assert d.groups() == [] and d.next_due() is None


def test_an_alert_whose_ends_at_passes_counts_as_resolved() -> None:
    d = Dispatcher(router())
    d.receive(alert(endsAt=200), 0)  # its sender promised to refresh it by then, and did not
    assert summary(d.due(30)) == [(30, "fraud", ["drift"], [])]
    assert summary(d.due(330)) == [(330, "fraud", [], ["drift"])]


def test_an_alert_that_fires_and_resolves_before_anyone_heard_is_never_sent() -> None:
    d = Dispatcher(router())
    flushes = run(d, {0: [alert()], 10: [alert(status="resolved")]}, until=1000)
    assert flushes == [] and d.groups() == []
    assert d.receive(alert(status="resolved"), 2000) == []  # unknown and resolved: ignored


def test_an_old_alert_is_sent_without_waiting_again() -> None:
    d = Dispatcher(router())
    d.receive(alert(startsAt="1970-01-01T00:16:40Z"), 2000)  # started at 1000
    assert summary(d.due(2000)) == [(2000, "fraud", ["drift"], [])]


def test_an_alert_that_changes_group_resolves_in_the_old_one() -> None:
    d = Dispatcher(router(group_by=["severity"]))
    d.receive(alert(severity="warning"), 0)
    assert [f.group_labels for f in d.due(30)] == [{"severity": "warning"}]
    d.receive(alert(severity="critical"), 100)  # same fingerprint, escalated
    flushes = d.due(130) + d.due(330)
    assert [(f.group_labels["severity"], f.status) for f in flushes] == [
        ("critical", "firing"), ("warning", "resolved")]


@pytest.mark.parametrize(("group_wait", "expected"), [
    # ticks at 25, 325 and 625 see it firing, firing (nothing new) and resolved (for good)
    ("25s", [(25, "firing"), (625, "resolved")]),
    ("30s", []),  # every tick happens to see it resolved: nobody is bothered at all
    ("45s", [(45, "firing"), (645, "resolved")]),
])
def test_a_flapping_alert_yields_a_bounded_number_of_flushes(
        group_wait: str, expected: list[tuple[float, str]]) -> None:
    d = Dispatcher(router(group_wait=group_wait))
    events = {float(t): [alert(status="firing" if (t // 10) % 2 == 0 else "resolved")]
              for t in range(0, 600, 10)}  # firing/resolved every 10 s for 10 minutes
    flushes = []
    for t in range(0, 1200, 5):  # poll between state changes as well as on them
        for a in events.get(float(t), []):
            d.receive(a, t)
        flushes += d.due(t)
    assert len(events) == 60
    assert [(f.at, f.status) for f in flushes] == expected
    assert len(flushes) <= 1200 / 300


@given(st.lists(st.tuples(st.integers(1, 120), st.sampled_from(["a", "b", "c"]),
                          st.booleans()), max_size=40))
@settings(max_examples=60, deadline=None)
def test_flushes_respect_group_interval_whatever_the_stream(
        steps: list[tuple[int, str, bool]]) -> None:
    d = Dispatcher(router())
    t, times = 0.0, []
    for dt, rule, firing in steps:
        t += dt
        d.receive(alert(rule=rule, status="firing" if firing else "resolved"), t)
        times += [f.at for f in d.due(t)]
    times += [f.at for f in d.due(t + 4000)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= GI for g in gaps)  # one group: never two messages within group_interval


def test_continue_sends_one_alert_to_two_receivers() -> None:
    d = Dispatcher(router(routes=[{"matchers": ["severity=critical"], "receiver": "pager",
                                   "continue": True, "group_wait": "10s"},
                                  {"receiver": "ops"}]))
    keys = d.receive(alert(severity="critical"), 0)
    assert len(keys) == 2
    assert [f.receiver for f in d.due(10) + d.due(30)] == ["pager", "ops"]


# -- silences -------------------------------------------------------------------------------

def silence(spec: str = 'model="fraud"', starts: float = 0, ends: float = 3600,
            id: str = "s1") -> Silence:
    return Silence(id=id, matchers=parse_matchers(spec), starts_at=starts, ends_at=ends,
                   created_by="ana", comment="retraining the model")


def test_a_silence_applies_only_between_its_start_and_end() -> None:
    s = silence(starts=100, ends=200)
    assert [s.state(t) for t in (99, 100, 199, 200)] == ["pending", "active", "active",
                                                          "expired"]
    assert not s.is_silenced({"model": "fraud"}, 50)
    assert s.is_silenced({"model": "fraud", "rule": "x"}, 150)
    assert not s.is_silenced({"model": "credit"}, 150)
    assert not s.is_silenced({"model": "fraud"}, 200)
    early = s.expire(150)
    assert early.ends_at == 150 and not early.is_silenced({"model": "fraud"}, 150)
    never = s.expire(50)
    assert never.state(50) == "expired" and never.starts_at == 50
    with pytest.raises(ParameterError, match="already expired"):
        s.expire(300)


@pytest.mark.parametrize(("kw", "field"), [
    ({"ends_at": -1}, "ends_at"),
    ({"matchers": ()}, "matchers"),
    ({"matchers": ['model=~".*"']}, "matchers"),  # would silence everything
    ({"matchers": "model=~("}, "matchers"),
    ({"created_by": " "}, "created_by"),
    ({"comment": None}, "comment"),
    ({"starts_at": "yesterday-ish"}, "starts_at"),
])
def test_bad_silences_name_the_field(kw: dict[str, Any], field: str) -> None:
    base = {"matchers": ["model=fraud"], "starts_at": 0, "ends_at": 10, "created_by": "ana"}
    with pytest.raises(ParameterError) as info:
        Silence(**{**base, **kw})
    assert info.value.field == field


def test_silences_round_trip_and_accept_api_shapes() -> None:
    store = Silences([silence(), silence('rule=~"drift|perf"', 10, 20, id="s2")])
    back = Silences.from_dict(json.loads(json.dumps(store.to_dict())))
    assert list(back) == list(store)
    api = Silence.from_dict({"matchers": ['model="fraud"'], "starts_at": "2024-05-01T00:00:00Z",
                             "ends_at": datetime(2024, 5, 1, 1, tzinfo=UTC),
                             "created_by": "bo"})
    assert api.ends_at - api.starts_at == 3600 and len(api.id) == 32
    with pytest.raises(ParameterError) as info:
        Silence.from_dict({**silence().to_dict(), "reason": "x"})
    assert info.value.field == "reason"
    with pytest.raises(ParameterError) as info:
        store.expire("nope", 5)
    assert info.value.field == "id"
    assert store.expire("s1", 5).ends_at == 5 and store.silenced_by({"model": "fraud"}, 6) == []
    assert store.gc(now=5 + 86400, keep_for=86400) == ["s1"] and len(store) == 1


def test_silenced_alerts_are_not_flushed_until_the_silence_ends() -> None:
    store = Silences([silence(ends=200)])
    d = Dispatcher(router(), silences=store)
    flushes = run(d, {0: [alert(), alert(model="credit")]}, until=700)
    # fraud is silenced at its first tick (30) and tick 330 is after the silence ended
    assert summary(flushes) == [(30, "credit", ["drift"], []), (330, "fraud", ["drift"], [])]


def test_a_flush_with_only_silenced_alerts_does_not_happen_and_expiry_is_immediate() -> None:
    store = Silences()
    d = Dispatcher(router(), silences=store)

    def hook(t: float) -> None:
        if t == 0:
            store.add(silence(ends=10_000))
        if t == 1000:
            store.expire("s1", t)

    flushes = run(d, {0: [alert(rule="a"), alert(rule="b")]}, until=1300, hook=hook)
    assert summary(flushes) == [(1230, "fraud", ["a", "b"], [])]


def test_silencing_a_notified_alert_sends_no_resolve_and_no_repeat() -> None:
    store = Silences()
    d = Dispatcher(router(), silences=store)

    def hook(t: float) -> None:
        if t == 100:
            store.add(silence(starts=100, ends=2000))

    flushes = run(d, {0: [alert(rule="a")], 1000: [alert(rule="a", status="resolved")]},
                  until=8000, hook=hook)
    assert summary(flushes) == [(30, "fraud", ["a"], [])]  # resolved while silenced


# -- inhibition -----------------------------------------------------------------------------

CRITICAL_MUTES_WARNING = {"source_matchers": ["severity=critical"],
                          "target_matchers": ["severity=warning"], "equal": ["model"]}


def test_a_critical_alert_inhibits_warnings_for_the_same_model_only() -> None:
    d = Dispatcher(router(), inhibit_rules=[InhibitRule.from_config(CRITICAL_MUTES_WARNING)])
    events = {0: [alert(rule="perf", severity="critical"), alert(rule="drift"),
                  alert(model="credit", rule="drift")],
              100: [alert(rule="perf", severity="critical", status="resolved")]}
    flushes = run(d, events, until=700)
    assert summary(flushes) == [
        (30, "credit", ["drift"], []),
        (30, "fraud", ["perf"], []),
        # the critical resolved: the warning it held back goes out with the resolution
        (330, "fraud", ["drift"], ["perf"]),
    ]


def test_a_silenced_critical_still_inhibits_its_warnings() -> None:
    store = Silences([silence('severity="critical"')])
    d = Dispatcher(router(), silences=store,
                   inhibit_rules=[InhibitRule.from_config(CRITICAL_MUTES_WARNING)])
    flushes = run(d, {0: [alert(rule="perf", severity="critical"), alert(rule="drift")]},
                  until=1000)
    assert flushes == []


def test_inhibition_uses_labels_and_not_the_alert_itself() -> None:
    rule = InhibitRule.from_config({"source_match_re": {"severity": "critical|warning"},
                                    "target_match": {"severity": "warning"},
                                    "equal": ["model", "team"]})
    warning = {"severity": "warning", "model": "a"}
    assert not rule.inhibits(warning, {"self": warning}, fingerprint="self")
    assert rule.inhibits(warning, {"other": {"severity": "critical", "model": "a"}})
    assert not rule.inhibits(warning, {"o": {"severity": "critical", "model": "a",
                                             "team": "ml"}})  # team differs (missing = "")
    assert not rule.inhibits({"severity": "info", "model": "a"},
                             {"o": {"severity": "critical", "model": "a"}})


@pytest.mark.parametrize(("cfg", "field"), [
    ({"target_matchers": ["a=b"]}, "inhibit_rules[0].source_matchers"),
    ({"source_matchers": ["a=b"]}, "inhibit_rules[0].target_matchers"),
    ({**CRITICAL_MUTES_WARNING, "equal": "model"}, "inhibit_rules[0].equal"),
    ({**CRITICAL_MUTES_WARNING, "eq": ["model"]}, "inhibit_rules[0].eq"),
    ({"source_matchers": ["a=~("], "target_matchers": ["a=b"]},
     "inhibit_rules[0].source_matchers[0]"),
])
def test_bad_inhibit_rules_name_the_field(cfg: dict[str, Any], field: str) -> None:
    with pytest.raises(ParameterError) as info:
        InhibitRule.from_config(cfg, "inhibit_rules[0]")
    assert info.value.field == field


# -- notifications --------------------------------------------------------------------------

def test_a_flush_becomes_a_notification_receivers_can_send() -> None:
    d = Dispatcher(router())
    d.receive(alert(rule="drift", severity="warning"), 0)
    d.receive(alert(rule="perf", severity="critical", runbook="https://wiki/perf"), 5)
    flush, = d.due(30)
    n = to_notification(flush, url="https://aiwarden/models/fraud")
    assert (n.title, n.status, n.severity, n.model) == ("fraud", "firing", "critical", "fraud")
    assert n.labels == {"model": "fraud"} and n.annotations == {}
    assert n.runbook == "https://wiki/perf" and n.headline == "[FIRING:2] fraud"
    assert n.created_at == datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert len(n.group_key) == 32 and n.id == to_notification(flush, url=n.url).id
    assert [a["startsAt"] for a in n.alerts] == ["1970-01-01T00:00:00Z",
                                                 "1970-01-01T00:00:05Z"]
    body = json.loads(WebhookReceiver(name="ops", url="http://127.0.0.1:9/h").body(n))
    assert body["alerts"][1]["labels"] == {"model": "fraud", "rule": "perf"}

    d.receive(alert(rule="drift", status="resolved"), 100)
    d.receive(alert(rule="perf", status="resolved", severity="critical"), 100)
    done = to_notification(d.due(330)[0])
    assert (done.status, done.severity, done.group_key) == ("resolved", "critical",
                                                            n.group_key)


def test_notification_title_names_the_rule_when_all_alerts_share_it() -> None:
    d = Dispatcher(router(group_by=["rule"]))
    d.receive(alert(model="a", severity="page"), 0)  # an unknown severity shows as warning
    d.receive(alert(model="b", severity="page"), 0)
    n = to_notification(d.due(30)[0])
    assert (n.title, n.model, n.severity) == ("drift", None, "warning")
    assert n.annotations == {}  # summaries differ between the two


def test_dispatcher_from_a_whole_config_file() -> None:
    d = Dispatcher.from_config("""
route: {receiver: ops, group_by: [model]}
inhibit_rules:
  - {source_matchers: [severity=critical], target_matchers: [severity=warning], equal: [model]}
receivers: [{type: webhook, name: ops, url: "http://127.0.0.1:9/h"}]
""")
    d.receive(alert(severity="critical", rule="perf"), 0)
    d.receive(alert(), 0)
    assert summary(d.due(30)) == [(30, "fraud", ["perf"], [])]
    for bad, field in [({}, "route"), ({"route": {"receiver": "x"}, "silences": []}, "silences"),
                       ({"route": {"receiver": "x"}, "inhibit_rules": [{}]},
                        "inhibit_rules[0].source_matchers"),
                       ({"route": {"receiver": "x"}, "inhibit_rules": {}}, "inhibit_rules")]:
        with pytest.raises(ParameterError) as info:
            Dispatcher.from_config(bad)
        assert info.value.field == field


# -- persistence ----------------------------------------------------------------------------

CONFIG = {"receiver": "ops", "group_by": ["model"], "group_wait": "30s", "group_interval": "5m",
          "repeat_interval": "20m",
          "routes": [{"matchers": ["severity=critical"], "receiver": "pager", "continue": True,
                      "group_wait": "10s"}]}


def stream(seed: int, n: int = 300) -> dict[float, list[dict[str, Any]]]:
    rng = random.Random(seed)
    events: dict[float, list[dict[str, Any]]] = {}
    for _ in range(n):
        t = float(rng.randrange(0, 6000, 10))
        events.setdefault(t, []).append(alert(
            model=rng.choice(["fraud", "credit", "churn"]), rule=rng.choice(["a", "b", "c"]),
            status=rng.choice(["firing", "firing", "resolved"]),
            severity=rng.choice(["warning", "critical"])))
    return events


def fresh(state: dict[str, Any] | None = None, store: Silences | None = None) -> Dispatcher:
    rules = [InhibitRule.from_config(CRITICAL_MUTES_WARNING)]
    if state is None:
        return Dispatcher(Router.from_config(CONFIG), silences=store, inhibit_rules=rules)
    return Dispatcher.from_dict(state, Router.from_config(CONFIG), silences=store,
                                inhibit_rules=rules)


@pytest.mark.parametrize("seed", range(4))
def test_state_round_trips_mid_stream_with_identical_flushes(seed: int) -> None:
    events = stream(seed)
    silence_spec = Silence(id="s", matchers=["model=churn"], starts_at=1000, ends_at=2500,
                           created_by="ana").to_dict()
    whole = run(fresh(store=Silences([Silence.from_dict(silence_spec)])), events, until=8000)

    split = float(random.Random(seed).randrange(100, 7000, 10))
    before = {t: e for t, e in events.items() if t <= split}
    after = {t: e for t, e in events.items() if t > split}
    first = fresh(store=Silences([Silence.from_dict(silence_spec)]))
    flushes = run(first, before, until=split)
    saved = json.loads(json.dumps(first.to_dict()))
    saved_silences = json.loads(json.dumps(first.silences.to_dict()))
    second = fresh(saved, Silences.from_dict(saved_silences))
    assert second.to_dict() == first.to_dict()
    t = split + 10
    while t <= 8000:
        for a in after.get(t, []):
            second.receive(a, t)
        flushes += second.due(t)
        t += 10
    assert len(whole) > 10
    assert [f.to_dict() for f in flushes] == [f.to_dict() for f in whole]


def test_restoring_under_a_changed_config_hands_alerts_to_the_new_routes() -> None:
    d = Dispatcher(router(routes=[{"match": {"model": "fraud"}, "receiver": "fraud-team"}]))
    d.receive(alert(), 0)
    assert [f.receiver for f in d.due(30)] == ["fraud-team"]
    saved = d.to_dict()

    # the route is gone: its alerts go where the new tree sends them, on the old beat
    gone = Dispatcher.from_dict(saved, router())
    assert gone.next_due() == 330
    flush, = gone.due(330)
    assert flush.receiver == "ops" and [a["labels"]["rule"] for a in flush.firing] == ["drift"]

    # same route, new receiver: it has been told nothing, so it hears at the next tick
    moved = Dispatcher.from_dict(saved, router(routes=[{"match": {"model": "fraud"},
                                                        "receiver": "pager"}]))
    assert [f.receiver for f in moved.due(330)] == ["pager"]
    assert moved.due(630) == []

    # unchanged config: nothing new to say
    assert Dispatcher.from_dict(saved, d.router).due(330) == []
    with pytest.raises(ParameterError):
        Dispatcher.from_dict({"version": 99}, d.router)


@pytest.mark.parametrize(("bad", "field"), [
    ({"labels": {"model": 1}}, "labels"),
    ({"labels": {}, "status": "pending"}, "status"),
    ({"labels": {}, "annotations": ["x"]}, "annotations"),
    ({"labels": {}, "severity": 3}, "severity"),
    ({"labels": {}, "startsAt": "soon"}, "startsAt"),
])
def test_bad_alerts_name_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ParameterError) as info:
        Dispatcher(router()).receive(bad, 0)
    assert info.value.field == field
