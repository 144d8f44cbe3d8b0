"""Groundedness of retrieval-augmented answers through a real server (SQLite and
PostgreSQL): answers the retrieved context supports score 1, invented ones are flagged
``ungrounded`` sentence by sentence, ``groundedness_mean`` falls with them, and a rule on it
fires for that model only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aiwarden.llm.evaluators.groundedness import GroundednessEvaluator
from tests.server.conftest import evaluate

CONTEXT = ["Orders ship from the Leeds warehouse within two working days.",
           "Returns are free within thirty days of delivery with the original receipt."]
GROUNDED = ("Orders ship from the Leeds warehouse within two working days. "
            "Returns are free within thirty days of delivery.")
INVENTED = ("Orders ship from the Leeds warehouse within two working days. "
            "Every customer also gets a lifetime warranty and free international flights.")


def _events(n: int, prefix: str, answer: str, ts: float) -> list[dict[str, Any]]:
    return [{"request_id": f"{prefix}{i}", "timestamp": ts + i * 0.01,
             "input": [{"role": "user", "content": "how do shipping and returns work?"}],
             "output": answer, "context": CONTEXT, "provider": "openai",
             "model": "gpt-4o-mini", "tokens_in": 30, "tokens_out": 25} for i in range(n)]


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        for name in ("rag", "rag-ctl"):
            c.post("/models", json={"name": name, "task": "text_generation"}
                   ).raise_for_status()
            ref = _events(100, f"ref-{name}-", GROUNDED, time.time() - 7200)
            r = c.put(f"/models/{name}/versions/v1/llm-reference", json=ref)
            assert r.status_code == 201, r.text
            assert "llm_groundedness" not in r.json().get("absent_columns", {})
        yield c


def test_invented_sentences_are_flagged_and_the_mean_falls(http: httpx.Client) -> None:
    now = time.time() - 120
    half = [*_events(20, "g", GROUNDED, now), *_events(20, "x", INVENTED, now + 1)]
    out = http.post("/models/rag/llm-events", json=half).json()
    assert (out["accepted"], out["flagged"]) == (40, 20), out
    flagged = http.get("/models/rag/llm-events", params={
        "flagged": "true", "category": "ungrounded", "limit": 100}).json()["events"]
    assert {e["request_id"][0] for e in flagged} == {"x"} and len(flagged) == 20
    (f,) = [f for f in flagged[0]["findings"] if f["category"] == "ungrounded"]
    assert INVENTED[f["start"]:f["end"]].startswith("Every customer also gets")
    want = GroundednessEvaluator().score(INVENTED, CONTEXT).score  # on its own: half
    assert want == pytest.approx(0.5)
    value = http.get("/models/rag/metrics", params={"metric": "llm", "start": "-1h"}
                     ).json()["points"][0]["value"]
    assert value["groundedness_mean"] == pytest.approx((20 * 1.0 + 20 * want) / 40)


def test_a_rule_on_groundedness_fires_for_the_invented_answers_only(
        http: httpx.Client) -> None:
    now = time.time() - 60
    http.post("/models/rag-ctl/llm-events",
              json=_events(30, "c", GROUNDED, now)).raise_for_status()
    http.post("/models/rag/llm-events",
              json=_events(30, "y", INVENTED, now)).raise_for_status()
    http.put("/rules/*/ungrounded", json={
        "metric": "llm", "stat": "groundedness_mean", "window": "1h", "op": "<",
        "critical": 0.8, "min_rows": 20}).raise_for_status()
    try:
        out = evaluate(http)
        fired = {t["labels"]["model"] for t in out["transitions"]
                 if t["kind"] == "firing" and t["labels"]["rule"] == "ungrounded"}
        assert fired == {"rag"}
    finally:
        http.delete("/rules/*/ungrounded")
