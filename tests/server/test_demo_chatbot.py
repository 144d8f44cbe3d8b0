"""`aiwarden demo --story chatbot` against a real server (SQLite, as the demo runs), six times
faster: every beat happens, in order, through the public API. The guardrail blocks version
2's unsafe answers and records them as what the model said, the llm-unsafe-rate alert opens
an incident whose RCA names the en-AU slice and the promotion to version 2, and the rollback
policy naming that rule moves champion back to version 1, which the application follows.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.demo.chatbot import CHATBOT_MODEL, ChatbotStory
from aiwarden.demo.chatbot_texts import (
    BAD_LOCALE,
    LOCALES,
    UNSAFE_SHARE,
    customer_message,
    prompt_for,
    reply,
)
from aiwarden.demo.chatbot_upstream import FakeSupportLLM
from tests.server.live import ThreadServer, database_url, free_port, settings_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeSupportLLM]:
    with FakeSupportLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("chatbot")
    with database_url("sqlite", tmp) as url, ThreadServer(settings_for(
            url, Path(tmp), evaluate_every=1.0)) as srv:
        yield srv


def test_the_chatbot_story_plays_out_to_the_rollback(demo_server: ThreadServer,
                                                     llm: FakeSupportLLM) -> None:
    out = io.StringIO()
    story = ChatbotStory(demo_server.url, llm.base_url, speed=6, out=out, history_hours=0.5,
                         rows_per_tick=4, reference_rows=200)
    story.start()
    try:
        assert story.done.wait(timeout=120), out.getvalue()
    finally:
        story.stop_event.set()
        story.join(timeout=30)
    told = out.getvalue()
    beats = ["prompt version 1 is the champion", "Prompt version 2 is promoted to champion",
             f"GUARDRAIL blocked an answer of prompt version 2 to an {BAD_LOCALE} customer "
             "(", "ALERT firing: llm-unsafe-rate on version 2", "INCIDENT #",
             "RCA #", "also names the change before it: champion moved 1 -> 2",
             "Rolled support-bot@champion back from version 2 to 1",
             "follows the champion alias: prompt version 1 answers", "THE END"]
    at = [told.find(b) for b in beats]
    assert all(i >= 0 for i in at) and at == sorted(at), told
    assert "self_harm" in told[at[2]:].splitlines()[0], told  # the category blocked
    end = told[at[-1]:]  # where to look next: the incident and the LLM page
    assert f"{demo_server.url}/incidents/{story.incident}" in end, end
    # version 2's page: the champion's (1, after the rollback) shows no unsafe answer
    assert f"{demo_server.url}/models/{CHATBOT_MODEL}/llm?version=2 " in end, end
    assert "ALERT firing: llm-unsafe-rate on version 1" not in told, told
    assert set(story.blocked) == {BAD_LOCALE} and sum(story.blocked.values()) >= 5, told
    # blocked as whole answers (web) and cut out of streamed ones (app)
    assert set(story.blocked_by_channel) == {"web", "app"}, story.blocked_by_channel
    with httpx.Client(base_url=demo_server.url + "/api/v1", timeout=60) as api:
        assert api.get(f"/registry/models/{CHATBOT_MODEL}/aliases").json() == {
            "champion": "1"}
        moves = api.get(f"/registry/models/{CHATBOT_MODEL}/aliases/champion/history").json()
        assert [(m["kind"], m["from_version"], m["to_version"]) for m in moves][:2] == [
            ("rollback", "2", "1"), ("set", "1", "2")], moves
        (inc,) = [i for i in api.get("/incidents", params={"model": CHATBOT_MODEL}).json()
                  if i["id"] == story.incident]
        full = api.get(f"/incidents/{inc['id']}").json()
        assert ("llm-unsafe-rate", "2") in {(a["rule"], a["labels"].get("version"))
                                            for a in full["alerts"]}
        rca = [e["detail"] for e in full["timeline"]
               if e["detail"].get("text") == "Root-cause analysis"][-1]
        suspects = rca["suspects"]
        shown = [(s["kind"], s["name"], s["score"]) for s in suspects]
        # the segment: a slice of version 2's answers holding every unsafe one
        top = suspects[0]
        assert top["kind"] == "slice", shown
        assert ["locale", "==", BAD_LOCALE] in [list(c) for c in top["evidence"]["conditions"]]
        assert top["evidence"]["rest_value"] == 0.0 and top["evidence"]["metric_value"] > 0.3
        assert all(e["request_id"].startswith("gw-") for e in top["evidence"]["examples"])
        # the version: the analysis is of version 2's rows and its promotion leads with the
        # slice (an LLM answers differently only when its prompt or model version moves)
        assert any(s["kind"] == "change" and s["evidence"].get("from") == "1"
                   and s["evidence"].get("to") == "2" for s in suspects[:2]), shown
        assert "version 2" in rca["markdown"] or "version: 2" in rca["markdown"], rca["markdown"]
        # the blocked answers were recorded as what the model said: unsafe, with findings
        api.post(f"/models/{CHATBOT_MODEL}/guardrail/flush").raise_for_status()
        events = api.get(f"/models/{CHATBOT_MODEL}/llm-events", params={
            "category": "self_harm", "limit": 1000}).json()["events"]
        blocked = sum(story.blocked.values())
        assert len(events) == blocked, (len(events), story.blocked)
        for e in events:
            assert e["version"] == "2" and e["tags"]["locale"] == BAD_LOCALE
            assert e["tags"]["guardrail_action"] == "block"
            assert "self_harm" in e["tags"]["guardrail_categories"]
            assert e["detail"]["finish_reason"] == "content_filter"
            f = next(f for f in e["findings"] if f["category"] == "self_harm")
            assert f["field"] == "output" and e["output"][f["start"]:f["end"]]
        metrics = httpx.get(f"{demo_server.url}/metrics", timeout=60).text
        line = (f'aiwarden_guardrail_actions_total{{action="block",category="self_harm",'
                f'model="{CHATBOT_MODEL}"}}')
        assert any(m.startswith(line) and float(m.split()[-1]) == blocked
                   for m in metrics.splitlines()), [m for m in metrics.splitlines()
                                                    if "guardrail_actions" in m]
        # the unsafe rate of each version over the story: version 2's is the blocked share
        # of what it answered (the guardrail's events are all it answered), version 1's is 0
        for version, want in (("1", 0.0), ("2", blocked / story.served["2"])):
            m = api.get(f"/models/{CHATBOT_MODEL}/metrics", params={
                "metric": "llm", "version": version, "start": "-1h"}).json()
            (point,) = m["points"]
            assert point["value"]["unsafe_rate"] == pytest.approx(want), (version, point)
            assert point["value"]["injection_rate"] == 0.0, point  # system prompts are no attack
        # where the ending points: the incident page shows the slice, the LLM page the blocks
        page = httpx.get(f"{demo_server.url}/incidents/{inc['id']}", timeout=60)
        assert page.status_code == 200 and f"locale = {BAD_LOCALE}" in page.text
        page = httpx.get(f"{demo_server.url}/models/{CHATBOT_MODEL}/llm?version=2",
                         timeout=60)
        assert page.status_code == 200 and events[0]["request_id"] in page.text
        # after the story, the application's next customer is answered by version 1
        r = api.post(f"/models/{CHATBOT_MODEL}/v1/chat/completions", headers={
            "x-aiwarden-version": "1", "x-aiwarden-tags": json.dumps({"locale": BAD_LOCALE})},
            json={"messages": [{"role": "system", "content": prompt_for(
                "1", BAD_LOCALE, "web")}, {"role": "user", "content": "Where is my parcel?"}]})
        assert r.status_code == 200 and r.headers["x-aiwarden-guardrail"] == "pass", r.text


def test_the_fake_model_is_unsafe_only_for_version_2_and_one_locale() -> None:
    """The story's premise, over 2,000 customers: version 1 and every other locale answer
    safely (as the safety evaluator judges), version 2 for en-AU mostly does not."""
    from aiwarden.llm.evaluators.safety import SafetyEvaluator

    ev = SafetyEvaluator()
    msgs = [customer_message(i)[0] for i in range(2000)]
    assert len(set(msgs)) > 500
    for version in ("1", "2"):
        for locale in LOCALES:
            answers = [reply(prompt_for(version, locale, "app"), m) for m in msgs[:250]]
            unsafe = [any(f.category == "self_harm" for f in fs) for fs in ev.evaluate(answers)]
            share = sum(unsafe) / len(unsafe)
            if version == "2" and locale == BAD_LOCALE:
                assert abs(share - UNSAFE_SHARE) < 0.1, share
            else:
                assert share == 0, (version, locale, [a for a, u in zip(answers, unsafe,
                                                                        strict=True) if u][:3])


def test_the_demo_command_tells_the_chatbot_story_and_cleans_up(tmp_path: Path) -> None:
    """`aiwarden demo --story chatbot`: the fake model's port is allowed through the egress
    policy (the guardrail policy is accepted and the customers' chats are answered), and
    Ctrl-C removes the temporary folder."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AIWARDEN_EGRESS_ALLOW"}
    proc = subprocess.Popen([sys.executable, "-m", "aiwarden.cli", "demo", "--story", "chatbot",
                             "--port", str(port), "--speed", "20"],
                            env={**env, "TMPDIR": str(tmp_path)}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        first = proc.stdout.readline()
        assert first.startswith("aiwarden demo: dashboard"), first
        folder = Path(first.rsplit("data ", 1)[1].strip())
        deadline = time.monotonic() + 90
        while not any("prompt version 1 is the champion" in x for x in lines):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        time.sleep(2.0)  # ~40 ticks of customers: a refused upstream would stop the story
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    told = "".join(lines) + rest
    assert proc.returncode == 0, told
    assert "Traceback" not in told and "stopped on an error" not in told, told
    assert not folder.exists() and f"removed {folder}" in told, told
