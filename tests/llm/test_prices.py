"""The price table (lookup by provider/model with version suffixes, overrides, validation
naming the field) and the token estimate."""

from __future__ import annotations

import doctest

import pytest

from aiwarden.errors import ParameterError
from aiwarden.llm import prices, tokens
from aiwarden.llm.prices import DEFAULT_PRICES, PriceTable, parse_prices


@pytest.mark.parametrize("mod", [prices, tokens])
def test_doctests(mod) -> None:
    assert doctest.testmod(mod).failed == 0


def test_dated_model_names_take_the_longest_known_name() -> None:
    t = PriceTable(DEFAULT_PRICES)
    assert t.lookup("openai", "gpt-4o-mini-2024-07-18") == ("openai/gpt-4o-mini", None)
    assert t.lookup("openai", "gpt-4o-2024-08-06") == ("openai/gpt-4o", None)
    assert t.lookup(None, "claude-3-5-sonnet-20241022") == ("anthropic/claude-3-5-sonnet", None)
    assert t.lookup(None, "openai/gpt-4.1") == ("openai/gpt-4.1", None)
    assert t.lookup("OpenAI", "GPT-4o") == ("openai/gpt-4o", None)
    # a prefix that does not end at a version suffix is another model
    assert t.lookup("openai", "gpt-4o-minix")[0] == "openai/gpt-4o"
    assert t.lookup("openai", "gpt-4ox")[0] is None
    # another provider's model of the same name is not used
    assert t.lookup("azure", "claude-3-haiku")[0] is None


def test_cost_is_tokens_times_price_per_1k() -> None:
    t = PriceTable(DEFAULT_PRICES)
    p = DEFAULT_PRICES["anthropic/claude-3-5-haiku"]
    cost, why = t.cost("anthropic", "claude-3-5-haiku", 1234, 567)
    assert why is None and cost == pytest.approx((1234 * p.input + 567 * p.output) / 1000)
    assert t.cost("openai", "gpt-4o", None, None) == (None, "the event has no token counts")
    assert t.cost("openai", None, 5, 5) == (None, "the event names no model")


def test_overrides_win_and_bare_model_keys_match_any_provider() -> None:
    t = PriceTable.with_overrides({"openai/gpt-4o": {"input": 1, "output": 2},
                                   "house": {"input": 0.5, "output": 0.5}})
    assert t.cost("openai", "gpt-4o", 1000, 1000)[0] == pytest.approx(3.0)
    assert t.cost("vllm", "house", 2000, 0)[0] == pytest.approx(1.0)
    assert t.cost("openai", "gpt-4o-mini", 1000, 0)[0] == pytest.approx(0.00015)


@pytest.mark.parametrize("doc, field", [
    ([], "llm_prices"),
    ({"a/b": {"input": -1, "output": 1}}, "llm_prices['a/b'].input"),
    ({"a/b": {"input": 1, "output": "x"}}, "llm_prices['a/b'].output"),
    ({"a/b": {"input": 1, "output": True}}, "llm_prices['a/b'].output"),
    ({"a/b": {"input": 1}}, "llm_prices['a/b'].output"),
    ({"a/b": {"input": 1, "output": 1, "currency": "EUR"}}, "llm_prices['a/b'].currency"),
    ({"a/b": 3}, "llm_prices['a/b']"),
    ({"/b": {"input": 1, "output": 1}}, "llm_prices"),
])
def test_bad_prices_name_the_field(doc, field) -> None:
    with pytest.raises(ParameterError) as exc:
        parse_prices(doc)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_token_estimate_per_script() -> None:
    got = tokens.estimate_tokens(["a" * 40, "é" * 10, "日本語のテキスト", "Привет мир"])
    assert got.tolist() == [10.0, 5.0, 8.0, 5.0]  # 40/4; 10/2; 8 CJK; 9/2 + 1/4, up


def test_the_counter_says_which_it_is() -> None:
    name, why = tokens.method()
    counts, estimated = tokens.count_tokens(["hello world"])
    if name == "estimate":  # tiktoken missing or without its encodings (no network)
        assert estimated and why and counts.tolist() == [3.0]
    else:
        assert not estimated and why is None and counts[0] > 0
