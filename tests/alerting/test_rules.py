"""Rules: validation that names the field, numbers taken from real metric payloads, and a
rule stepped through the state machine over a served series."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aiwarden.alerting.rules import Rule, default_rules, load_rules, rule_value
from aiwarden.alerting.state import AlertState, Evaluation, Phase, step
from aiwarden.errors import ParameterError
from aiwarden.monitoring.service import Monitor
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, json_rows, scored_frame

GOOD = """
rules:
  - name: x-drift
    model: m
    metric: drift
    column: x
    method: psi
    window: 1h
    warning: 0.1
    critical: 0.25
    for: 5m
    keep_firing_for: 10m
    runbook: https://example.org/runbooks/drift
    labels: {team: risk}
  - name: accuracy-drop
    metric: performance
    stat: accuracy
    relative_to: reference
    op: "<"
    critical: -0.1
"""


def test_a_rule_file_loads_with_its_defaults() -> None:
    rules = load_rules(GOOD).rules
    assert [r.name for r in rules] == ["x-drift", "accuracy-drop"]
    drift, acc = rules
    assert drift.condition().for_seconds == 300 and drift.condition().keep_firing_for == 600
    assert drift.stat_name == "severity" and drift.window_seconds == 3600
    assert acc.model == "*" and acc.applies_to("anything") and not drift.applies_to("other")


@pytest.mark.parametrize(("text", "field", "words"), [
    ("rules:\n  - {name: a, metric: drift, critical: high}", "rules[0].critical", "number"),
    ("rules:\n  - {name: a, metric: nope, critical: 1}", "rules[0].metric", "drift"),
    ("rules:\n  - {name: a, metric: drift, for: 5x, critical: 1}", "rules[0].for", "5x"),
    ("rules:\n  - {name: a, metric: drift, for: -1m, critical: 1}", "rules[0].for", "-1m"),
    ("rules:\n  - {name: a, metric: drift, window: 0m, critical: 1}", "rules[0].window",
     "positive"),
    ("rules:\n  - {name: a, metric: volume, column: x, critical: 1}", "rules[0]", "drift"),
    ("rules:\n  - {name: a, metric: latency, stat: p42, critical: 1}", "rules[0]", "p42"),
    ("rules:\n  - {name: a, metric: drift}", "rules[0]", "threshold"),
    ("rules:\n  - {name: a, metric: drift, op: '>', warning: 2, critical: 1}", "rules[0]",
     "critical"),
    ("rules:\n  - {name: a, metric: drift, critical: 1, colour: red}", "rules[0].colour",
     "Extra"),
    ("rules:\n  - {name: a, metric: drift, critical: 1}\n  - {name: a, metric: drift, "
     "critical: 2}", "rules", "twice"),
    ("rules: [", "rules", "YAML"),
])
def test_bad_rules_name_the_field(text: str, field: str, words: str) -> None:
    with pytest.raises(ParameterError) as e:
        load_rules(text)
    assert e.value.field == field and words in str(e.value)


def test_for_0m_fires_on_the_first_breach_as_in_prometheus() -> None:
    """Prometheus accepts `for: 0m` (fire at once); so do rules, and `keep_firing_for: 0s`."""
    rule = load_rules("rules:\n  - {name: a, metric: drift, critical: 1, for: 0m, "
                      "keep_firing_for: 0s}").rules[0]
    cond = rule.condition()
    assert (cond.for_seconds, cond.keep_firing_for) == (0, 0)
    state, events = step(AlertState(), Evaluation(2.0), cond, 0.0)
    assert state.phase == Phase.FIRING and [e.kind for e in events][-1] == "firing"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Monitor, float]]:
    """Four hours of traffic; x shifts from the third hour; a third of rows labelled."""
    tmp = tmp_path_factory.mktemp("rules")
    mon = Monitor(Database(f"sqlite:///{Path(tmp) / 'r.db'}"))
    mon.db.migrate()
    mon.create_model("m", task="binary")
    mon.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(4000),
                                                          preserve_index=False), HINTS)
    end = (time.time() // 3600) * 3600
    for h in range(4):
        df = scored_frame(900, seed=10 + h, shift=1.0 if h >= 2 else 0.0)
        rows = json_rows(df, end - (4 - h) * 3600 + 1, prefix=f"h{h}-", spacing=3.9)
        mon.log_predictions("m", rows)
        mon.log_labels("m", [{"prediction_id": r["prediction_id"], "label": int(y)}
                             for r, y in zip(rows[::3], df["y"].to_numpy()[::3], strict=True)])
    yield mon, end
    mon.db.dispose()


def test_rule_values_come_from_the_served_payloads(served) -> None:
    mon, end = served
    window = {"start": end - 3600, "end": end}
    drift = mon.series("m", "drift", **window)["points"][0]["value"]
    rule = Rule(name="r", metric="drift", column="x", critical=1)
    assert rule_value(rule, drift) == drift["columns"]["x"]["severity"]
    share = Rule(name="s", metric="drift", critical=0.5)
    assert rule_value(share, drift) == drift["share_drifted"]
    perf = mon.series("m", "performance", **window)["points"][0]["value"]
    acc = Rule(name="a", metric="performance", stat="accuracy", relative_to="reference",
               op="<", critical=-0.1)
    base = 0.8
    assert rule_value(acc, perf, base) == pytest.approx(
        (perf["metrics"]["accuracy"] - base) / base)
    assert rule_value(acc, perf, None) is None  # relative without a baseline: no data
    est = mon.series("m", "estimated_performance", **window)["points"][0]["value"]
    roc = Rule(name="e", metric="estimated_performance", stat="roc_auc", critical=0.5, op="<")
    assert rule_value(roc, est) == est["metrics"]["roc_auc"]["estimate"]
    lat = mon.series("m", "latency", **window)["points"][0]["value"]
    p95 = Rule(name="l", metric="latency", critical=100)
    assert rule_value(p95, lat) == lat["p95"]
    vol = mon.series("m", "volume", **window)["points"][0]["value"]
    assert rule_value(Rule(name="q", metric="quarantined", critical=0.1), vol) == 0.0
    assert rule_value(rule, None) is None


def test_every_default_rule_evaluates_on_real_payloads(served) -> None:
    mon, end = served
    for rule in default_rules("binary"):
        payload_metric = "volume" if rule.metric == "quarantined" else rule.metric
        value = mon.series("m", payload_metric, start=end - rule.window_seconds,
                           end=end)["points"][0]["value"]
        baseline = 1.0 if rule.relative_to else None
        got = rule_value(rule, value, baseline)
        assert got is None or np.isfinite(got), rule.name


def test_a_drift_rule_fires_when_the_shift_starts_and_not_before(served) -> None:
    mon, end = served
    rule = Rule(name="x", metric="drift", column="x", critical=1.0, for_="30m")
    series = mon.series("m", "drift", start=end - 4 * 3600, end=end, step="15m")["points"]
    state, fired_at = AlertState(), None
    cond = rule.condition()
    for i, p in enumerate(series):
        state, events = step(state, Evaluation(rule_value(rule, p["value"])), cond, i * 900.0)
        if any(e.kind == "firing" for e in events):
            fired_at = i
    # The shift starts with point 8 (hour 3); `for: 30m` holds it two more steps.
    assert fired_at == 10 and state.phase == Phase.FIRING
