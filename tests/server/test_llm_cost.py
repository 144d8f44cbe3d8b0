"""Cost and tokens of LLM events through a real server on SQLite and PostgreSQL: costs priced
from the table match the hand computation, an ``aiwarden apply`` override changes the cost of
later events, unknown models get no cost (counted), and a daily budget rule fires on a burst."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.server.conftest import evaluate

OUT = "Your order ships tomorrow."


def _events(n: int, prefix: str, *, model: str = "gpt-4o-mini", tokens_in: float | None = 1000,
            tokens_out: float | None = 500, provider: str | None = "openai") -> list[dict]:
    ts = time.time() - 300
    out = []
    for i in range(n):
        e = {"request_id": f"{prefix}{i}", "timestamp": ts + i * 0.01, "version": "v1",
             "input": "where is my order?", "output": OUT, "model": model}
        if provider is not None:
            e["provider"] = provider
        if tokens_in is not None:
            e["tokens_in"] = tokens_in
        if tokens_out is not None:
            e["tokens_out"] = tokens_out
        out.append(e)
    return out


@pytest.fixture(scope="module")
def http_module(server):
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def _model(http: httpx.Client, name: str) -> None:
    http.post("/models", json={"name": name, "task": "text_generation"}).raise_for_status()
    r = http.put(f"/models/{name}/versions/v1/llm-reference",
                 json=_events(100, f"ref-{name}-"))
    assert r.status_code == 201, r.text
    assert "llm_cost" not in r.json().get("absent_columns", {})  # priced on the way in


def _cost(http: httpx.Client, model: str, rid: str) -> float | None:
    return http.get(f"/models/{model}/llm-events/{rid}").json()["detail"]["cost"]


def test_cost_from_the_price_table_matches_the_hand_computation(http_module) -> None:
    http = http_module
    _model(http, "priced")
    r = http.post("/models/priced/llm-events", json=[
        *_events(40, "p"),
        *_events(3, "unknown", model="my-own-llm", provider=None),
        *_events(2, "est", tokens_out=None)])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["cost"]["priced"] == 42
    assert out["cost"]["cost_unknown"] == {
        "no price for model 'my-own-llm' in the price table": 3}
    assert out["cost"]["tokens_estimated"] == 2
    # gpt-4o-mini: $0.00015 in, $0.0006 out per 1k tokens
    one = 1000 * 0.00015 / 1000 + 500 * 0.0006 / 1000
    assert _cost(http, "priced", "p0") == pytest.approx(one)
    d = http.get("/models/priced/llm-events/unknown0").json()["detail"]
    assert d["cost"] is None and d["cost_source"] is None and "my-own-llm" in d["cost_reason"]
    est = http.get("/models/priced/llm-events/est0").json()["detail"]
    assert est["tokens_estimated"] is True
    assert est["tokens_out"] == pytest.approx(len(OUT) / 4, abs=1)  # the documented estimate
    assert est["cost"] == pytest.approx((1000 * 0.00015 + est["tokens_out"] * 0.0006) / 1000)
    value = http.get("/models/priced/metrics", params={"metric": "llm", "start": "-1h"}
                     ).json()["points"][0]["value"]
    assert value["cost_sum"] == pytest.approx(40 * one + 2 * est["cost"])
    assert value["cost_mean"] == pytest.approx(value["cost_sum"] / 42)  # unknown: not 0


def test_an_apply_override_changes_the_cost_of_later_events(http_module) -> None:
    http = http_module
    _model(http, "overridden")
    http.post("/models/overridden/llm-events", json=_events(1, "before")).raise_for_status()
    before = _cost(http, "overridden", "before0")
    rule_file = ("llm_prices:\n  openai/gpt-4o-mini: {input: 0.01, output: 0.02}\n"
                 "  acme/house-model: {input: 0.001, output: 0.001}\n")
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=rule_file,
                    headers={"content-type": "application/yaml"})
    assert dry.status_code == 200, dry.text
    assert [d["kind"] for d in dry.json()["diff"]] == ["llm_prices"]
    assert http.get("/llm/prices").json()["overrides"] == []  # a dry run writes nothing
    try:
        r = http.post("/rules/apply", content=rule_file,
                      headers={"content-type": "application/yaml"})
        assert r.status_code == 200, r.text
        assert r.json()["llm_prices"] == ["acme/house-model", "openai/gpt-4o-mini"]
        table = http.get("/llm/prices").json()
        assert table["prices"]["openai/gpt-4o-mini"] == {"input": 0.01, "output": 0.02}
        assert table["prices"]["openai/gpt-4o"] == {"input": 0.0025, "output": 0.01}
        http.post("/models/overridden/llm-events", json=[
            *_events(1, "after"), *_events(1, "house", model="house-model", provider="acme")
        ]).raise_for_status()
        assert before == pytest.approx(0.00045)
        assert _cost(http, "overridden", "after0") == pytest.approx(0.01 + 0.01)
        assert _cost(http, "overridden", "house0") == pytest.approx(0.0015)
        assert _cost(http, "overridden", "before0") == pytest.approx(before)  # not rewritten
        bad = http.post("/rules/apply", content="llm_prices:\n  openai/gpt-4o: "
                        "{input: 0.01, output: -1}\n",
                        headers={"content-type": "application/yaml"})
        assert bad.status_code in (400, 422), bad.text
        assert "llm_prices['openai/gpt-4o'].output" in bad.text
        bad = http.put("/llm/prices", json={"prices": {"x/y": {"input": 1}}})
        assert bad.status_code in (400, 422) and "output" in bad.text
        assert http.get("/llm/prices").json()["overrides"] == [
            "acme/house-model", "openai/gpt-4o-mini"]  # a refused change writes nothing
    finally:
        r = http.put("/llm/prices", json={"prices": {}})
        assert r.status_code == 200 and r.json()["overrides"] == []


def test_a_daily_budget_rule_fires_on_a_planted_burst(http_module) -> None:
    http = http_module
    for name in ("spender", "frugal"):
        _model(http, name)
    # gpt-4o: 200 x (2000 x 0.0025 + 1000 x 0.01) / 1000 = $3.00; the control: $0.09
    http.post("/models/spender/llm-events", json=_events(
        200, "s", model="gpt-4o", tokens_in=2000, tokens_out=1000)).raise_for_status()
    http.post("/models/frugal/llm-events", json=_events(200, "f")).raise_for_status()
    http.put("/rules/*/daily-budget", json={
        "metric": "llm", "stat": "cost_sum", "window": "1d", "op": ">",
        "warning": 1.0, "critical": 2.5}).raise_for_status()
    try:
        out = evaluate(http)
        fired = {(t["labels"]["model"], t.get("severity")) for t in out["transitions"]
                 if t["kind"] == "firing" and t["labels"]["rule"] == "daily-budget"}
        assert {m for m, _ in fired} == {"spender"}, out["transitions"]
        value = http.get("/models/spender/metrics", params={"metric": "llm", "start": "-1d"}
                         ).json()["points"][0]["value"]
        assert value["cost_sum"] == pytest.approx(3.0)
    finally:
        http.delete("/rules/*/daily-budget")
    text = httpx.get(http.base_url.join("/metrics")).text
    line = [x for x in text.splitlines()
            if x.startswith("aiwarden_llm_cost_total{") and 'model="spender"' in x]
    assert line and float(line[0].rsplit(" ", 1)[1]) == pytest.approx(3.0)
    tokens = [x for x in text.splitlines() if x.startswith("aiwarden_llm_tokens_total{")
              and 'model="spender"' in x and 'direction="out"' in x]
    assert tokens and float(tokens[0].rsplit(" ", 1)[1]) == pytest.approx(200 * 1000)
