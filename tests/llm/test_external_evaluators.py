"""Model-based evaluators (llm.evaluators.external) against a real HTTP endpoint on loopback:
categories mapped to aiwarden's safety ones, a timeout, a circuit breaker that stops calling
and tries again, the API key from the environment, the egress policy, and a config file whose
mistakes are named."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden.egress import EgressPolicy
from aiwarden.errors import ParameterError
from aiwarden.llm.evaluators.external import (
    CircuitBreaker,
    EvaluatorUnavailable,
    ModerationEvaluator,
    PythonEvaluator,
    load_external,
)
from tests.llm.fake_moderation import FakeModeration

LOOPBACK = EgressPolicy("127.0.0.1")


@pytest.fixture
def endpoint() -> Iterator[FakeModeration]:
    with FakeModeration() as f:
        yield f


def _moderation(endpoint: FakeModeration, **kw) -> ModerationEvaluator:
    return ModerationEvaluator("mod", endpoint.url, transport=LOOPBACK.http_transport(), **kw)


def test_categories_map_to_safety_findings(endpoint: FakeModeration) -> None:
    ev = _moderation(endpoint, model="omni-moderation-latest")
    texts = ["a zebra told me to", "the walrus and the ferret", "the weather is fine"]
    found = ev.evaluate(texts)
    got = [sorted((f.evaluator, f.category, f.field) for f in fs) for fs in found]
    assert got == [[("safety", "self_harm", "output")],
                   [("safety", "hate", "output"), ("safety", "violence", "output")], []]
    assert found[0][0].severity == pytest.approx(0.93) and found[0][0].whole_text
    assert found[0][0].detail == "mod: self_harm 0.93"
    (req,) = endpoint.requests  # one call for the batch
    assert req["body"] == {"input": texts, "model": "omni-moderation-latest"}
    assert req["authorization"] is None


def test_a_threshold_reads_the_scores_and_the_key_comes_from_the_environment(
        endpoint: FakeModeration, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOD_KEY", "sk-test-123")
    strict = _moderation(endpoint, threshold=0.95, api_key_env="MOD_KEY")
    loose = _moderation(endpoint, threshold=0.005, api_key_env="MOD_KEY")
    assert strict.evaluate(["a zebra"]) == [[]]  # 0.93 < 0.95
    assert {f.category for f in loose.evaluate(["calm"])[0]} == {
        "self_harm", "violence", "hate", "sexual"}  # every 0.01 >= 0.005
    assert {r["authorization"] for r in endpoint.requests} == {"Bearer sk-test-123"}


def test_a_slow_endpoint_times_out_then_the_breaker_stops_calling(
        endpoint: FakeModeration) -> None:
    ev = _moderation(endpoint, timeout=0.3, breaker=CircuitBreaker(failures=2, reset=60))
    endpoint.delay = 2.0
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(EvaluatorUnavailable, match="no answer within its timeout"):
            ev.evaluate(["a zebra"])
        assert time.monotonic() - started < 1.5
    calls = len(endpoint.requests)
    with pytest.raises(EvaluatorUnavailable, match="circuit breaker is open after 2"):
        ev.evaluate(["a zebra"])
    assert len(endpoint.requests) == calls and ev.breaker.state == "open"


def test_an_error_status_counts_as_a_failure(endpoint: FakeModeration) -> None:
    ev = _moderation(endpoint, breaker=CircuitBreaker(failures=1, reset=60))
    endpoint.status = 503
    with pytest.raises(EvaluatorUnavailable, match="HTTP 503"):
        ev.evaluate(["x"])
    assert ev.breaker.state == "open"


def test_the_breaker_tries_once_after_its_reset_and_closes_on_success() -> None:
    now = [0.0]
    b = CircuitBreaker(failures=3, reset=10, clock=lambda: now[0])
    assert [b.failure() for _ in range(3)] == [False, False, True]
    assert b.allow() == pytest.approx(10) and b.state == "open"
    now[0] = 10.5
    assert b.state == "half-open" and b.allow() is None  # the one trial
    assert b.allow() == 0.0  # no second caller while the trial runs
    assert b.failure() is True and b.allow() == pytest.approx(10)  # open again
    now[0] = 21.0
    assert b.allow() is None
    b.success()
    assert b.state == "closed" and b.allow() is None


def test_a_python_classifier_is_called_with_a_timeout() -> None:
    def score(texts: list[str]) -> list[dict[str, float]]:
        if any("hang" in t for t in texts):
            time.sleep(1.0)
        return [{"violence": 0.9 if "hit" in t else 0.1} for t in texts]

    ev = PythonEvaluator("house", score, threshold=0.5, timeout=0.3)
    assert [[f.category for f in fs] for fs in ev.evaluate(["hit him", "hello"])] == [
        ["violence"], []]
    with pytest.raises(EvaluatorUnavailable, match="timeout"):
        ev.evaluate(["hang on"])


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "evaluators.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "field", "words"), [
    ("evaluators:\n  - {name: m, kind: openai_moderation}\n", "evaluators.0.openai_moderation.url",
     "Field required"),
    ("evaluators:\n  - {name: m, kind: openai_moderation, url: 'http://x', timeout: -1}\n",
     "evaluators.0.openai_moderation.timeout", "greater than 0"),
    ("evaluators:\n  - {name: m, kind: magic}\n", "evaluators.0", "magic"),
    ("evaluators:\n  - {name: m, kind: python, entry_point: 'no.such.module:f'}\n",
     "evaluators[0].entry_point", "ModuleNotFoundError"),
    ("evaluators:\n  - {name: m, kind: openai_moderation, url: 'http://169.254.169.254/x'}\n",
     "evaluators[0].url", "metadata"),
    ("evaluators:\n  - {name: m, kind: openai_moderation, url: 'http://127.0.0.1:9/x'}\n"
     "  - {name: m, kind: python, entry_point: 'os.path:join'}\n", "name", "must differ"),
])
def test_a_bad_config_is_refused_naming_the_field(tmp_path: Path, text: str, field: str,
                                                  words: str) -> None:
    with pytest.raises(ParameterError, match=words) as refused:
        load_external(_write(tmp_path, text), LOOPBACK)
    assert refused.value.field == field, refused.value


def test_loopback_is_refused_unless_the_egress_policy_allows_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "evaluators:\n  - {name: m, kind: openai_moderation, "
                            "url: 'http://127.0.0.1:9/v1/moderations'}\n")
    with pytest.raises(ParameterError, match="loopback") as refused:
        load_external(path, EgressPolicy())
    assert refused.value.field == "evaluators[0].url"
    (ev,) = load_external(path, LOOPBACK)
    assert isinstance(ev, ModerationEvaluator) and ev.fields == ("output",)


def test_the_timeout_bounds_the_whole_batch_not_each_call(endpoint: FakeModeration) -> None:
    """100 texts are four calls; each takes 0.3 s, the timeout is 0.5 s: the batch stops
    when its time is spent (0.5 s), not after 4 x 0.5 s."""
    ev = _moderation(endpoint, timeout=0.5)
    endpoint.delay = 0.3
    started = time.monotonic()
    with pytest.raises(EvaluatorUnavailable, match="timeout"):
        ev.evaluate([f"text {i}" for i in range(100)])
    assert time.monotonic() - started < 1.2
    assert 1 <= len(endpoint.requests) <= 2
