"""Traffic policies: checked like every other input, and routing that is a pure function of
a hashed key, so splits match their weights and a key never changes arm."""

from __future__ import annotations

import doctest
import math

import pytest

import aiwarden.gateway as gateway
from aiwarden.errors import ParameterError
from aiwarden.gateway import TrafficPolicy, parse_weights
from aiwarden.gateway import policy as policy_module
from aiwarden.gateway.policy import unit_hash

EXPECTED = {
    "MODES", "DatabaseSource", "EventQueue", "Gateway", "GatewayError", "GatewayHub",
    "InvalidRequestError", "PolicyStore", "PredictionError", "RemoteSource", "ServingState",
    "TrafficPolicy", "UsageReporter", "client_sink", "monitor_sink", "parse_weights",
    "shadow_id",
}


def test_public_surface_is_pinned_and_examples_run() -> None:
    assert set(gateway.__all__) == EXPECTED
    assert all(hasattr(gateway, name) for name in EXPECTED)
    for module in (gateway, policy_module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("doc", "field"), [
    ({"mode": "blue-green"}, "mode"),
    ({"mode": "canary", "percent": 20}, "challenger"),
    ({"mode": "canary", "challenger": "2", "percent": 120}, "percent"),
    ({"mode": "canary", "challenger": "2", "percent": True}, "percent"),
    ({"mode": "canary", "challenger": "2", "percent": math.nan}, "percent"),
    ({"mode": "shadow", "challenger": "@1bad"}, "alias"),
    ({"mode": "shadow", "challenger": "a b"}, "challenger"),
    ({"mode": "ab", "weights": {}}, "weights"),
    ({"mode": "ab", "weights": {"1": -1, "2": 1}}, "weights.1"),
    ({"mode": "ab", "weights": {"1": 0, "2": 0}}, "weights"),
    ({"mode": "canary", "challenger": "2", "percent": 5, "sticky_key": ""}, "sticky_key"),
    ({"mode": "off", "percentage": 5}, "percentage"),
    ({"mode": "shadow", "challenger": "2", "alias": "9lives"}, "alias"),
])
def test_bad_policies_name_their_field(doc: dict, field: str) -> None:
    with pytest.raises(ParameterError) as err:
        TrafficPolicy.from_dict(doc)
    assert err.value.field == field


def test_policies_round_trip_through_dicts() -> None:
    for doc in ({"mode": "off"},
                {"mode": "canary", "challenger": "@challenger", "percent": 20.0,
                 "sticky_key": "customer_id"},
                {"mode": "shadow", "challenger": "2"},
                {"mode": "ab", "weights": {"1": 50.0, "@challenger": 50.0}, "sticky_key": "c"},
                {"mode": "shadow", "challenger": "3", "alias": "prod"}):
        assert TrafficPolicy.from_dict(doc).to_dict() == doc
    assert TrafficPolicy.from_dict({"mode": "canary", "challenger": 2, "percent": 5}
                                   ).challenger == "2"
    assert TrafficPolicy.from_dict(None) == TrafficPolicy()


def test_unit_hash_is_stable_and_uniform() -> None:
    assert unit_hash("fraud", "customer-42") == unit_hash("fraud", "customer-42")
    assert unit_hash("fraud", "customer-42") != unit_hash("churn", "customer-42")
    us = [unit_hash("m", f"k{i}") for i in range(20_000)]
    assert all(0 <= u < 1 for u in us)
    # each tenth of [0, 1) holds 2,000 ± 5 standard deviations (sd = 42.4)
    counts = [sum(1 for u in us if k / 10 <= u < (k + 1) / 10) for k in range(10)]
    assert all(abs(c - 2000) < 5 * 42.4 for c in counts), counts


def test_canary_share_and_monotone_growth() -> None:
    n = 20_000
    keys = [f"customer-{i}" for i in range(n)]
    p20 = TrafficPolicy.from_dict({"mode": "canary", "challenger": "2", "percent": 20})
    p40 = TrafficPolicy.from_dict({"mode": "canary", "challenger": "2", "percent": 40})
    at20 = {k for k in keys if p20.route(unit_hash("m", k)) == "2"}
    at40 = {k for k in keys if p40.route(unit_hash("m", k)) == "2"}
    sd = math.sqrt(n * 0.2 * 0.8)
    assert abs(len(at20) - 0.2 * n) < 5 * sd
    assert at20 <= at40  # raising the share moves customers onto the challenger, never off
    assert TrafficPolicy.from_dict({"mode": "canary", "challenger": "2", "percent": 0}
                                   ).route(0.0) is None
    assert TrafficPolicy.from_dict({"mode": "canary", "challenger": "2", "percent": 100}
                                   ).route(0.999999) == "2"


def test_ab_follows_its_weights_and_skips_zero_weights() -> None:
    p = TrafficPolicy.from_dict({"mode": "ab", "weights": {"1": 1, "2": 0, "3": 3}})
    picks = [p.route(unit_hash("m", str(i))) for i in range(8000)]
    assert "2" not in picks
    share = picks.count("3") / len(picks)
    assert abs(share - 0.75) < 5 * math.sqrt(0.75 * 0.25 / len(picks))
    assert p.route(0.9999999999) == "3"
    assert TrafficPolicy.from_dict({"mode": "shadow", "challenger": "2"}).route(0.0) is None


def test_parse_weights_for_the_cli() -> None:
    assert parse_weights("1=50, 2=25.5") == {"1": 50.0, "2": 25.5}
    for bad in ("1:50", "1=x", ""):
        with pytest.raises(ParameterError):
            parse_weights(bad)
