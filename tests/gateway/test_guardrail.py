"""The guardrail's stream checking and policy, without a server: a blocked sentence is never
released whatever the chunking, held-back text is bounded, a failing evaluator fails
closed (or is flagged when the policy says so), and policy errors name the field."""

from __future__ import annotations

from collections.abc import Callable, Coroutine

import pytest

from aiwarden.errors import ParameterError
from aiwarden.gateway.guardrail import Guard, StreamGuard
from aiwarden.gateway.guardrail_policy import GuardrailPolicy

UNSAFE = "You should kill yourself, nobody would miss you."
TEXT = f"Thanks for writing. I read your message twice! {UNSAFE} Take care."
UP = {"base_url": "https://api.example.com/v1"}


def _guard(**kw) -> Guard:
    return Guard(GuardrailPolicy.from_dict({"upstream": UP, "block": ["safety"],
                                            "redact": ["pii"], **kw}))


def _run(sg: StreamGuard, text: str, size: int) -> tuple[str, bool]:
    out = []
    for i in range(0, len(text), size):
        got = sg.feed(text[i:i + size])
        if got is None:
            return "".join(out), True
        out.append(got)
    tail = sg.finish()
    return "".join(out) + (tail or ""), sg.blocked


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 21, 34, 200])
def test_a_blocked_sentence_is_never_released_whatever_the_chunking(size) -> None:
    sg = StreamGuard(_guard())
    released, blocked = _run(sg, TEXT, size)
    assert blocked and sg.verdict.categories == {"block": ["self_harm"]}
    safe = "Thanks for writing. I read your message twice! "
    # the sentences before the unsafe one are released, even when one chunk holds it all
    assert released == safe


@pytest.mark.parametrize("size", [1, 4, 9])
def test_a_safe_stream_is_released_whole_and_redacted(size) -> None:
    text = "Hello. Mail bob@example.com today. Bye."
    released, blocked = _run(StreamGuard(_guard()), text, size)
    assert not blocked and released == "Hello. Mail [EMAIL] today. Bye."


def test_text_without_a_sentence_end_is_held_back_at_most_max_hold_chars() -> None:
    sg = StreamGuard(_guard(max_hold_chars=50))
    words = "word " * 60
    held = []
    for ch in words:
        sg.feed(ch)
        held.append(len(sg.text) - sg.released)
    assert max(held) <= 51 and sg.released > 0


class _Broken:
    name, fields = "safety", ("output",)

    def evaluate(self, texts):
        raise RuntimeError("weights missing")


@pytest.mark.parametrize("on_error,action", [("block", "block"), ("flag", "flag")])
def test_a_failing_evaluator_fails_closed_unless_the_policy_flags(on_error, action) -> None:
    g = _guard(on_error=on_error)
    g._output = [_Broken()]
    v = g.check_output("Hello there.")
    assert v.action == action and v.categories == {action: ["safety_failed"]}


@pytest.mark.parametrize("doc,field", [
    ({"upstream": UP, "redact": ["violence"]}, "guardrail.redact"),
    ({"upstream": UP, "flag": ["nope"]}, "guardrail.flag"),
    ({"upstream": UP, "on_error": "ignore"}, "guardrail.on_error"),
    ({"upstream": UP, "max_hold_chars": 5}, "guardrail.max_hold_chars"),
    ({"upstream": {"base_url": "ftp://x"}}, "guardrail.upstream.base_url"),
    ({"upstream": {**UP, "api_key_env": "A", "api_key_file": "/k"}},
     "guardrail.upstream.api_key_file"),
    ({"upstream": UP, "colour": 1}, "guardrail.colour"),
])
def test_policy_errors_name_the_field(doc, field) -> None:
    with pytest.raises(ParameterError) as err:
        GuardrailPolicy.from_dict(doc)
    assert err.value.field == field


def test_groups_expand_and_the_policy_round_trips() -> None:
    p = GuardrailPolicy.from_dict({"upstream": UP, "block": ["safety"], "redact": ["card"]})
    assert {p.action_of(c) for c in ("self_harm", "violence", "hate", "sexual")} == {"block"}
    assert p.action_of("card") == "redact" and p.action_of("email") is None
    assert GuardrailPolicy.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("size", [3, 17, 64])
def test_a_long_answer_is_checked_in_a_window_and_redacted_at_the_right_place(size) -> None:
    filler = "".join(f"Step {i} of the return is simple. " for i in range(60))
    text = filler + "Write to carol@example.com for help. " + filler + UNSAFE + " Bye."
    released, blocked = _run(StreamGuard(_guard()), text, size)
    assert blocked and "kill" not in released
    expected = (filler + "Write to [EMAIL] for help. " + filler)
    assert expected.startswith(released) and len(released) > len(expected) - size - 60


class _Counting:
    """The safety evaluator, counting its runs."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.fields, self.runs = inner, inner.name, inner.fields, 0

    def evaluate(self, texts):
        self.runs += 1
        return self.inner.evaluate(texts)


@pytest.mark.parametrize("text,blocked", [
    ("Hello. Mail bob@example.com today. It ships on Monday. Bye.", False), (TEXT, True)])
def test_released_once_per_read_is_what_chunk_by_chunk_releases_with_fewer_runs(
        text, blocked) -> None:
    per_chunk, batched = StreamGuard(_guard()), StreamGuard(_guard())
    for sg in (per_chunk, batched):
        sg.guard._output = [_Counting(e) for e in sg.guard._output]
    one, _ = _run(per_chunk, text, 4)
    for i in range(0, len(text), 4):  # every chunk of one network read: one release
        batched.add(text[i:i + 4])
    two = batched.release() + (batched.finish() or "")
    assert two == one and batched.blocked == per_chunk.blocked == blocked
    assert batched.verdict.to_dict() == per_chunk.verdict.to_dict()
    runs = sum(e.runs for e in batched.guard._output)
    before = sum(e.runs for e in per_chunk.guard._output)
    # a safe read is checked at once; a blocked one sentence by sentence to free the prefix
    assert runs <= before if blocked else runs * 2 <= before
    assert "kill" not in two


def test_a_known_policy_is_read_again_in_the_background_and_kept_when_unreadable() -> None:
    import time

    from aiwarden.egress import EgressPolicy
    from aiwarden.gateway.guardrail_proxy import GuardrailProxy
    from aiwarden.store.models_repo import NotFound

    docs = [{"upstream": UP, "block": ["safety"]}]
    reads = []

    def read(name: str):
        reads.append(name)
        if isinstance(docs[-1], Exception):
            raise docs[-1]
        return docs[-1]

    p = GuardrailProxy(read, lambda n: (lambda b: None), lambda n: (lambda s: None),
                       EgressPolicy(""), policy_ttl=0.05)
    try:
        assert p.cached("bot") is None
        first = p.guard("bot")
        assert p.cached("bot") is first and reads == ["bot"]
        docs.append({"upstream": UP, "block": ["safety"], "fallback": "New."})
        time.sleep(0.06)
        assert p.cached("bot") is first  # served at once, the policy read behind it
        deadline = time.monotonic() + 30
        while p.cached("bot").policy.fallback != "New.":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        docs.append(ConnectionError("server down"))
        kept = p.cached("bot")
        time.sleep(0.06)
        assert p.guard("bot") is kept  # unreadable: the last policy stays
        docs.append(NotFound("Model 'bot' has no guardrail policy.", "guardrail"))
        with pytest.raises(NotFound):
            p.guard("bot")
        assert p.cached("bot") is None  # gone: the next request reads it and gets the 404
    finally:
        p.close()


def test_a_stream_never_started_gives_its_upstream_slot_back_and_is_logged() -> None:
    """A client gone before the first byte: the stream's body is never iterated (its
    ``finally`` never runs); its upstream slot comes back and its call is logged anyway
    when the body is dropped."""
    import asyncio
    import gc

    from aiwarden.egress import EgressPolicy
    from aiwarden.gateway.guardrail_proxy import GuardrailProxy
    from tests.gateway.fake_llm_upstream import FakeUpstream

    events: list[dict] = []
    with FakeUpstream({"[pause]": "First sentence here. __PAUSE__Then more."}) as up:
        up.pause_seconds = 5
        p = GuardrailProxy(lambda n: {"upstream": {"base_url": up.base_url},
                                      "block": ["safety"]},
                           lambda n: events.extend, lambda n: (lambda s: None),
                           EgressPolicy("127.0.0.1"), max_upstream=1)
        try:
            async def go() -> None:
                resp = await p.chat("bot", {"stream": True, "messages": [
                    {"role": "user", "content": "[pause] hi"}]})
                assert resp.status_code == 200 and p.busy == 1
                del resp
                gc.collect()
                await asyncio.sleep(0)  # the slot is given back on the loop

            _run_in_own_loop(go)
            assert p.busy == 0
            assert p.flush("bot", 5)
            assert [e["finish_reason"] for e in events] == ["client_closed"]
        finally:
            p.close()


def _run_in_own_loop(make: Callable[[], Coroutine[object, object, None]]) -> None:
    """``asyncio.run`` in a thread of its own: an earlier test of the session (Playwright's
    sync API) may leave an event loop running in the main thread."""
    import asyncio
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
