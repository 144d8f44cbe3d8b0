"""The LLM model page in a real browser (Debian chromium, SQLite): the charts are drawn
with the rule's thresholds, a flagged conversation shows its finding highlighted, a
``<script>`` in an answer stays text, and the conversation page opens from the list."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server.live import ThreadServer, settings_for

SAFE = ["Your order ships tomorrow.", "Our shop opens at nine.", "Refunds take three days."]
UNSAFE = "<script>window.pwned = 1</script> You should kill yourself, nobody would miss you."


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("llmpage")
    settings = settings_for(f"sqlite:///{tmp / 'llm.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=60) as http:
        http.post("/models", json={"name": "bot", "task": "text_generation",
                                   "segments": ["locale"]}).raise_for_status()
        ts = time.time() - 1200

        def ev(i: int, out: str, locale: str, version: str | None = "v1") -> dict:
            return {"request_id": f"r{i}", "timestamp": ts + i * 5, "version": version,
                    "input": "hi", "output": out, "tokens_in": 2, "tokens_out": 9,
                    "latency_ms": 100.0 + i % 50, "cost": 0.001, "tags": {"locale": locale}}

        ref = [ev(10_000 + i, SAFE[i % 3], "fr" if i % 2 else "de", None) for i in range(100)]
        http.put("/models/bot/versions/v1/llm-reference", json=ref).raise_for_status()
        rows = [ev(i, UNSAFE if i % 20 == 0 else SAFE[i % 3], "de" if i % 2 else "fr")
                for i in range(200)]
        assert http.post("/models/bot/llm-events", json=rows).json()["accepted"] == 200
        yield srv


def test_the_llm_page_draws_its_charts_and_highlights_a_flagged_span(bot, watched) -> None:
    page = watched.page
    watched.open(f"{bot.url}/models/bot/llm?range=1h")
    drawn = page.evaluate(
        "Object.fromEntries(Object.entries(window.aiwardenCharts).map(([k, v]) => "
        "[k, v.points]))")
    assert {"llm-volume", "llm-latency", "llm-unsafe", "llm-tokens", "llm-cost"} <= set(drawn)
    assert drawn["llm-volume"] > 0 and drawn["llm-unsafe"] > 0
    lines = page.evaluate("window.aiwardenCharts['llm-unsafe'].chart.getOption()"
                          ".series[0].markLine.data.map(d => d.yAxis)")
    assert sorted(lines) == [1, 5]  # the default llm-unsafe-rate rule, in percent
    conv = page.locator("article.llm-conv").first
    mark = conv.locator("mark.llm-unsafe").first
    assert mark.is_visible()
    assert "kill yourself" in mark.inner_text()
    assert "<script>window.pwned" in conv.locator("pre[aria-label=output]").inner_text()
    assert page.evaluate("window.pwned") is None  # shown as text, never run
    watched.shot("llm-page")
    rid = conv.get_attribute("data-request-id")
    conv.locator(f"a:text-is('{rid}')").click()
    page.wait_for_selector("h1:has-text('Conversation')")
    assert page.locator("mark.llm-unsafe").count() >= 1
    assert "self_harm" in page.inner_text("table")
