"""An LLM incident's root-cause analysis through a real server (SQLite and PostgreSQL):
unsafe answers planted only for prompt_version = v2 and locale = de; the default
llm-unsafe-rate rule opens an incident whose RCA names that slice first, with example
conversation ids whose excerpts are redacted even under the ``store`` policy."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from aiwarden.rca.llm import excerpt
from tests.server.conftest import evaluate

SAFE = ["Your order ships tomorrow.", "You can reset the password from the settings page.",
        "Our shop opens at nine.", "Refunds take three to five days."]
UNSAFE = "Write to jane.doe@example.com. You should kill yourself, nobody would miss you."
PVS, LOCALES = ("v1", "v2"), ("en", "de", "fr")


def _event(rid: str, output: str, ts: float, pv: str, locale: str,
           version: str | None = "v1") -> dict:
    return {"request_id": rid, "timestamp": ts, "version": version, "input": "hello",
            "output": output, "tokens_in": 3, "tokens_out": 9, "latency_ms": 250.0,
            "tags": {"prompt_version": pv, "locale": locale}}


def test_the_incident_rca_names_the_slice_with_redacted_examples(server) -> None:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as http:
        http.post("/models", json={"name": "bot", "task": "text_generation",
                                   "segments": ["prompt_version", "locale"]}
                  ).raise_for_status()
        http.put("/models/bot/llm-privacy", json={"pii": "store"}).raise_for_status()
        ts = time.time() - 400
        cells = list(itertools.product(PVS, LOCALES))
        ref = [_event(f"r{i}", SAFE[i % 4], ts, *cells[i % 6], version=None)
               for i in range(300)]
        up = http.put("/models/bot/versions/v1/llm-reference", json=ref)
        assert up.status_code == 201 and "llm_unsafe" not in up.json().get(
            "absent_columns", {}), up.text  # the safety evaluator loaded
        events, planted = [], []
        for i in range(600):
            pv, loc = cells[i % 6]
            bad = pv == "v2" and loc == "de" and i % 12 < 6  # half of that cell's 100 events
            events.append(_event(f"e{i}", UNSAFE if bad else SAFE[i % 4], ts + i * 0.5, pv,
                                 loc))
            planted += [f"e{i}"] if bad else []
        out = http.post("/models/bot/llm-events", json=events).json()
        assert out["accepted"] == 600 and len(planted) == 50, out
        rca = None
        for _ in range(60):  # this evaluation, or the server's own loop, opens it
            evaluate(http)
            found = http.get("/incidents", params={"model": "bot"}).json()
            if found:
                (inc,) = found
                full = http.get(f"/incidents/{inc['id']}").json()
                rca = next((e["detail"] for e in full["timeline"] if e["kind"] == "action"
                            and e["detail"]["text"] == "Root-cause analysis"), None)
            if rca is not None:
                break
            time.sleep(0.5)
    assert rca is not None, "no incident with an RCA"
    top = rca["suspects"][0]
    assert top["kind"] == "slice"
    assert sorted(map(tuple, top["evidence"]["conditions"])) == [
        ("locale", "==", "de"), ("prompt_version", "==", "v2")]
    assert top["evidence"]["unsafe_count"] == 50
    assert set(top["evidence"]["prediction_ids"]) <= set(planted)
    shown = top["evidence"]["examples"]
    assert len(shown) == 3 and {e["request_id"] for e in shown} <= set(planted)
    assert all(e["request_id"] in top["summary"] for e in shown)
    assert "concentrate in" in top["summary"] and "prompt_version = v2" in top["summary"]
    for e in shown:  # stored as sent (policy store), but the report never carries the PII
        assert "kill yourself" in e["excerpt"] and "[EMAIL]" in e["excerpt"]
    assert "jane.doe" not in str(rca)
    for e in shown:  # the markdown report quotes them as code
        assert f"`{e['request_id']}`: ` {e['excerpt']} `" in rca["markdown"]
    page = httpx.get(f"{server.url}/incidents/{inc['id']}", timeout=60).text
    for e in shown:  # the incident page links each example to its conversation
        assert f'href="/models/bot/llm/events/{e["request_id"]}"' in page
    assert "[EMAIL]. You should kill yourself" in page and "jane.doe" not in page
    assert 'href="/models/bot/llm?range=6h"' in page  # the evidence: the LLM page
    assert "Failing slices: unsafe rate" in page


@pytest.mark.parametrize(("text", "want"), [
    ("x" * 100 + "kill yourself" + "y" * 100, "…" + "x" * 60 + "kill yourself" + "y" * 60 + "…"),
    ("kill yourself", "kill yourself"),
])
def test_an_excerpt_is_cut_around_the_first_safety_span(text: str, want: str) -> None:
    at = text.index("kill")
    fs = [{"evaluator": "safety", "category": "self_harm", "field": "output", "start": at,
           "end": at + 13, "severity": 0.9}]
    assert excerpt(text, fs) == want
