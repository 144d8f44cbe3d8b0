"""The alert state machine: for, keep_firing_for, hysteresis, severities, no data, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiwarden.alerting.state import (
    AlertState,
    Condition,
    Evaluation,
    Missing,
    Phase,
    step,
)
from aiwarden.errors import ParameterError


def run(cond: Condition, values: list[float | str | None], every: float = 60.0,
        state: AlertState | None = None) -> tuple[AlertState, list[tuple[float, str]]]:
    """Feed one value per ``every`` seconds; a str is an evaluation error."""
    s = state or AlertState()
    seen = []
    for i, v in enumerate(values):
        ev = Evaluation(None, error=v) if isinstance(v, str) else Evaluation(v)
        s, events = step(s, ev, cond, i * every)
        seen += [(i * every, e.kind) for e in events]
    return s, seen


def test_for_duration_holds_a_breach_before_firing() -> None:
    cond = Condition(op=">", critical=0.2, for_seconds=180)
    s, seen = run(cond, [0.1, 0.3, 0.3, 0.3, 0.3])
    assert seen == [(60, "pending"), (240, "firing")]
    assert s.phase == Phase.FIRING and s.fired_at == 240 and s.severity == "critical"


def test_a_short_breach_never_fires() -> None:
    s, seen = run(Condition(critical=0.2, for_seconds=300), [0.3, 0.3, 0.1, 0.1])
    assert [k for _, k in seen] == ["pending", "cancelled"] and s.phase == Phase.NORMAL


def test_keep_firing_for_rides_out_a_flap_and_then_resolves() -> None:
    cond = Condition(critical=0.2, keep_firing_for=120, hysteresis=0.0)
    s, seen = run(cond, [0.3, 0.1, 0.3, 0.1, 0.1, 0.1])
    kinds = [k for _, k in seen]
    assert kinds == ["pending", "firing", "recovering", "refiring", "recovering", "resolved"]
    assert kinds.count("firing") == 1  # one page for the whole episode
    assert s.phase == Phase.NORMAL


def test_hysteresis_stops_a_value_hovering_on_the_threshold_from_flapping() -> None:
    rng = np.random.default_rng(0)
    hovering = list(0.2 + rng.normal(0, 0.004, 200))  # ±2 % around the threshold
    _, with_margin = run(Condition(critical=0.2, hysteresis=0.05), hovering)
    _, without = run(Condition(critical=0.2, hysteresis=0.0), hovering)
    assert [k for _, k in with_margin].count("firing") == 1
    assert [k for _, k in without].count("firing") > 10  # what the margin prevents


def test_warning_escalates_to_critical_and_back() -> None:
    cond = Condition(op=">", warning=0.1, critical=0.3, hysteresis=0.0)
    s, seen = run(cond, [0.15, 0.35, 0.2, 0.05])
    assert [k for _, k in seen] == ["pending", "firing", "escalated", "deescalated",
                                    "recovering", "resolved"]
    assert s.phase == Phase.NORMAL


def test_less_than_rules_breach_downwards_with_hysteresis_upwards() -> None:
    cond = Condition(op="<", critical=0.8, hysteresis=0.05)  # accuracy below 0.8
    s, seen = run(cond, [0.9, 0.7, 0.81, 0.9])
    # 0.81 is above the threshold but inside the 0.84 margin: still firing.
    assert [k for _, k in seen] == ["pending", "firing", "recovering", "resolved"]
    assert [t for t, k in seen if k == "recovering"] == [180]
    assert s.phase == Phase.NORMAL


@pytest.mark.parametrize(("mapping", "phase", "kinds"), [
    (Missing.NODATA, Phase.NODATA, ["nodata"]),
    (Missing.ALERTING, Phase.FIRING, ["firing"]),
    (Missing.OK, Phase.NORMAL, []),
])
def test_no_data_mapping(mapping: Missing, phase: Phase, kinds: list[str]) -> None:
    s, seen = run(Condition(critical=0.2, no_data=mapping), [None, None])
    assert s.phase == phase and [k for _, k in seen] == kinds


def test_keep_last_ignores_gaps_and_ok_clears_a_firing_alert() -> None:
    s, _ = run(Condition(critical=0.2, no_data=Missing.KEEP_LAST), [0.5, None, None])
    assert s.phase == Phase.FIRING
    s, seen = run(Condition(critical=0.2, no_data=Missing.OK), [0.5, None])
    assert [k for _, k in seen][-2:] == ["recovering", "resolved"] and s.phase == Phase.NORMAL


def test_errors_have_their_own_state_and_data_coming_back_restarts() -> None:
    s, seen = run(Condition(critical=0.2), ["db down", "db down", 0.1])
    assert [k for _, k in seen] == ["error", "error_cleared"]
    assert s.phase == Phase.NORMAL
    s, _ = run(Condition(critical=0.2), [0.5, "timeout"])
    assert s.phase == Phase.ERROR and s.error == "timeout"


def test_state_survives_a_round_trip_through_storage() -> None:
    cond = Condition(critical=0.2, for_seconds=120)
    s, _ = run(cond, [0.3, 0.3])
    restored = AlertState.from_dict(s.to_dict())
    assert restored == s
    a, _ = step(s, Evaluation(0.3), cond, 120)
    b, _ = step(restored, Evaluation(0.3), cond, 120)
    assert a == b and a.phase == Phase.FIRING


def test_bad_conditions_name_the_field() -> None:
    with pytest.raises(ParameterError) as e:
        Condition(op="=>", critical=1)
    assert e.value.field == "op"
    with pytest.raises(ParameterError) as e:
        Condition(op=">", warning=0.5, critical=0.2)
    assert e.value.field == "critical"
    with pytest.raises(ParameterError) as e:
        Condition(critical=1, for_seconds=-1)
    assert e.value.field == "for_seconds"
    with pytest.raises(ParameterError):
        Condition()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), st.floats(-1, 1), st.just("err")), max_size=40),
       st.sampled_from(list(Missing)), st.floats(0, 300), st.floats(0, 300))
def test_invariants_hold_for_any_sequence(values: list, missing: Missing, for_s: float,
                                          keep_s: float) -> None:
    cond = Condition(critical=0.3, warning=0.1, for_seconds=for_s, keep_firing_for=keep_s,
                     no_data=missing, on_error=missing)
    s, seen = run(cond, values)
    kinds = [k for _, k in seen]
    # Every resolution follows a firing; firings and resolutions alternate.
    fired = [k for k in kinds if k in ("firing", "resolved")]
    assert all(a != b for a, b in itertools.pairwise(fired))
    if fired:
        assert fired[0] == "firing"
    assert (s.phase == Phase.NORMAL) == (s.severity is None and s.fired_at is None) or \
        s.phase in (Phase.NODATA, Phase.ERROR)
    assert s.value is None or math.isfinite(s.value)
