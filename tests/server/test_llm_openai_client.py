"""``wrap_openai`` around the real ``openai`` package (sync and async, whole and streamed,
``with`` and ``async with``), talking to a fake OpenAI-compatible upstream on loopback, its
events logged to a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from aiwarden.sdk import Client
from aiwarden.sdk.llm import wrap_openai
from tests.gateway.fake_llm_upstream import FakeUpstream
from tests.server.test_llm_events import _model

openai = pytest.importorskip("openai")

REPLY = "Your parcel left the depot this morning and arrives tomorrow."
MSGS = [{"role": "user", "content": "where is my parcel?"}]


@pytest.fixture(scope="module")
def setup(server: Any) -> Iterator[dict[str, Any]]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http, \
            FakeUpstream({"default": REPLY}, chunk_chars=9) as up, \
            Client(server.url) as monitor:
        _model(http, "oa")
        yield {"up": up, "monitor": monitor}


def _events(monitor: Client, session: str) -> dict[str, dict[str, Any]]:
    return {e["request_id"]: e for e in monitor.llm_events("oa", session_id=session)}


def test_the_sync_client_whole_and_streamed(setup: dict[str, Any]) -> None:
    up, monitor = setup["up"], setup["monitor"]
    chat = wrap_openai(openai.OpenAI(base_url=up.base_url, api_key="sk-fake"), monitor,
                       model="oa", version="v1", session_id="sync")
    reply = chat.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert isinstance(reply, openai.types.chat.ChatCompletion)  # passed through as is
    assert reply.choices[0].message.content == REPLY
    with chat.chat.completions.create(model="gpt-4o-mini", messages=MSGS,
                                      stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == REPLY
    with chat.chat.completions.create(model="gpt-4o-mini", messages=MSGS,
                                      stream=True) as stream:
        first = next(iter(stream))  # the caller stops reading: what came is logged
    got = _events(monitor, "sync")
    assert len(got) == 3
    whole = got[reply.id]
    assert whole["output"] == REPLY and whole["input"] == MSGS
    assert whole["detail"]["tokens_in"] == 11 and whole["detail"]["finish_reason"] == "stop"
    streamed = [e for rid, e in got.items() if rid != reply.id]
    outputs = sorted(e["output"] for e in streamed)
    assert outputs[1] == REPLY and REPLY.startswith(outputs[0]) and outputs[0] != REPLY
    assert first.id in got


def test_the_async_client_whole_and_streamed(setup: dict[str, Any]) -> None:
    up, monitor = setup["up"], setup["monitor"]

    async def calls() -> tuple[Any, str]:
        chat = wrap_openai(openai.AsyncOpenAI(base_url=up.base_url, api_key="sk-fake"),
                           monitor, model="oa", version="v1", session_id="async")
        reply = await chat.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        parts = []
        async with await chat.chat.completions.create(
                model="gpt-4o-mini", messages=MSGS, stream=True) as stream:
            async for chunk in stream:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
        return reply, "".join(parts)

    # in a thread of its own: a worker that ran the browser tests holds playwright's loop
    # on this thread, where asyncio.run refuses to start (and left a coroutine unawaited)
    with ThreadPoolExecutor(1) as pool:
        reply, text = pool.submit(lambda: asyncio.run(calls())).result(timeout=120)
    assert reply.choices[0].message.content == REPLY and text == REPLY
    got = _events(monitor, "async")
    assert len(got) == 2 and {e["output"] for e in got.values()} == {REPLY}
    assert got[reply.id]["detail"]["latency_ms"] > 0
