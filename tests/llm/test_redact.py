"""redact(): store / redact / hash of PII and secret spans."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from aiwarden.errors import ParameterError
from aiwarden.llm.evaluators.pii import PiiEvaluator
from aiwarden.llm.evaluators.secrets import SecretsEvaluator
from aiwarden.llm.findings import Finding
from aiwarden.llm.redact import redact, redact_tags


def F(cat: str, s: int, e: int, sev: float = 0.7, ev: str = "pii") -> Finding:
    return Finding(ev, cat, "output", s, e, sev)


def test_redact_replaces_each_span_with_its_category() -> None:
    text = "mail bob@example.com, card 4111 1111 1111 1111."
    found = PiiEvaluator().find(text)
    assert redact(text, found) == "mail [EMAIL], card [CARD]."
    assert redact(text, found, policy="store") == text


def test_spans_at_both_ends_and_unicode() -> None:
    text = "ü@example.de ist nicht gültig, aber 8.8.8.8"  # not an e-mail: ü is not ASCII
    found = PiiEvaluator().find(text)
    assert [f.category for f in found] == ["ip"]
    assert redact(text, found) == "ü@example.de ist nicht gültig, aber [IP]"
    text = "😀 jo@example.com"
    assert redact(text, [F("email", 2, 16)]) == "😀 [EMAIL]"
    assert redact("jo@example.com", [F("email", 0, 14)]) == "[EMAIL]"


def test_overlapping_spans_merge_under_the_most_severe_category() -> None:
    text = "abcdefghij"
    out = redact(text, [F("phone", 2, 6, 0.6), F("card", 4, 8, 0.95)])
    assert out == "ab[CARD]ij"
    assert redact(text, [F("ip", 0, 3), F("ip", 1, 2)]) == "[IP]defghij"  # nested
    assert redact(text, [F("ip", 0, 3), F("ip", 3, 5)]) == "[IP][IP]fghij"  # adjacent


def test_hash_is_keyed_hmac_and_joins_equal_values() -> None:
    text = "call 020 7946 0958 or 02079460958"
    spans = [F("phone", 5, 18), F("phone", 22, 33)]
    out = redact(text, spans, policy="hash", secret="s3cret")
    digest = hmac.new(b"s3cret", b"02079460958", hashlib.sha256).hexdigest()[:8]
    assert out == f"call [PHONE:{digest}] or [PHONE:{digest}]"
    other = redact(text, spans, policy="hash", secret="other")
    assert other != out and "7946" not in other


def test_other_evaluators_and_whole_text_findings_are_left_alone() -> None:
    text = "you should hurt yourself"
    assert redact(text, [F("self_harm", 0, 10, ev="safety"),
                         F("empty", -1, -1, ev="pii")]) == text
    assert redact(text, [F("api_key", 4, 10, ev="secrets")]) == "you [API_KEY] hurt yourself"


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ParameterError, match="'policy' parameter of redact"):
        redact("x", [], policy="mask")
    with pytest.raises(ParameterError, match="'secret' parameter"):
        redact("x", [], policy="hash")
    with pytest.raises(ParameterError, match="outside the text of 3 characters"):
        redact("abc", [F("email", 1, 9)])


def test_tag_values_are_redacted_like_texts() -> None:
    evs = [PiiEvaluator(), SecretsEvaluator()]
    key = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
    tags = [{"locale": "fr", "user": "Bob@Example.com", "card": "4111 1111 1111 1111"},
            {"user": "bob@example.com", "token": key, "channel": "web", "empty": ""}]
    out = redact_tags(tags, evs)
    assert out == [{"locale": "fr", "user": "[EMAIL]", "card": "[CARD]"},
                   {"user": "[EMAIL]", "token": "[GITHUB_TOKEN]", "channel": "web", "empty": ""}]
    assert tags[0]["user"] == "Bob@Example.com"  # the input is left alone
    hashed = redact_tags(tags, evs, policy="hash", secret="k")
    # equal values (up to case) keep one label: a segment stays one segment
    assert hashed[0]["user"] == hashed[1]["user"] != "[EMAIL]"
    assert hashed[0]["user"].startswith("[EMAIL:") and hashed[1]["channel"] == "web"
    assert redact_tags(tags, evs, policy="store") == tags
    assert redact_tags(tags, [], policy="redact") == tags  # nothing to find spans with
    with pytest.raises(ParameterError, match="'policy' parameter of redact_tags"):
        redact_tags(tags, evs, policy="mask")
    with pytest.raises(ParameterError, match="'secret' parameter"):
        redact_tags(tags, evs, policy="hash")
