"""What an LLM call costs: a price table per provider model (USD per 1,000 tokens).

The shipped table (:data:`DEFAULT_PRICES`) holds list prices of common OpenAI, Anthropic,
Google and Mistral models as of :data:`PRICES_AS_OF`. **Prices change**, and many accounts
pay other rates: override them per server (``llm_prices:`` in an ``aiwarden apply`` file,
or ``PUT /api/v1/llm/prices``). An unknown model has no cost (``None`` with a reason),
never a cost of 0.

Examples
--------
>>> table = PriceTable.with_overrides({"acme/small": {"input": 0.001, "output": 0.002}})
>>> table.cost("acme", "small", 1000, 500)
(0.002, None)
>>> table.cost("openai", "gpt-4o-mini-2024-07-18", 2000, 1000)[0]
0.0009
>>> table.cost(None, "my-own-llm", 10, 10)
(None, "no price for model 'my-own-llm' in the price table")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiwarden.errors import ParameterError

__all__ = ["DEFAULT_PRICES", "PRICES_AS_OF", "Price", "PriceTable", "parse_prices"]

PRICES_AS_OF = "2025-06-01"


@dataclass(frozen=True)
class Price:
    """USD per 1,000 input and output tokens."""

    input: float
    output: float

    def to_dict(self) -> dict[str, float]:
        return {"input": self.input, "output": self.output}


def _p(i: float, o: float) -> Price:
    return Price(i, o)


#: ``provider/model`` → list price per 1k tokens, as of :data:`PRICES_AS_OF`.
DEFAULT_PRICES: dict[str, Price] = {
    "openai/gpt-4o": _p(0.0025, 0.01),
    "openai/gpt-4o-mini": _p(0.00015, 0.0006),
    "openai/gpt-4.1": _p(0.002, 0.008),
    "openai/gpt-4.1-mini": _p(0.0004, 0.0016),
    "openai/gpt-4.1-nano": _p(0.0001, 0.0004),
    "openai/gpt-4-turbo": _p(0.01, 0.03),
    "openai/gpt-3.5-turbo": _p(0.0005, 0.0015),
    "openai/o1": _p(0.015, 0.06),
    "openai/o3-mini": _p(0.0011, 0.0044),
    "openai/o4-mini": _p(0.0011, 0.0044),
    "anthropic/claude-opus-4": _p(0.015, 0.075),
    "anthropic/claude-sonnet-4": _p(0.003, 0.015),
    "anthropic/claude-3-7-sonnet": _p(0.003, 0.015),
    "anthropic/claude-3-5-sonnet": _p(0.003, 0.015),
    "anthropic/claude-3-5-haiku": _p(0.0008, 0.004),
    "anthropic/claude-3-opus": _p(0.015, 0.075),
    "anthropic/claude-3-haiku": _p(0.00025, 0.00125),
    "google/gemini-2.5-pro": _p(0.00125, 0.01),
    "google/gemini-2.5-flash": _p(0.0003, 0.0025),
    "google/gemini-2.0-flash": _p(0.0001, 0.0004),
    "google/gemini-1.5-pro": _p(0.00125, 0.005),
    "google/gemini-1.5-flash": _p(0.000075, 0.0003),
    "mistral/mistral-large-latest": _p(0.002, 0.006),
    "mistral/mistral-medium-latest": _p(0.0004, 0.002),
    "mistral/mistral-small-latest": _p(0.0001, 0.0003),
    "mistral/open-mistral-nemo": _p(0.00015, 0.00015),
    "mistral/codestral-latest": _p(0.0003, 0.0009),
}

_MAX_ENTRIES = 10_000


def _boundary(name: str, known: str) -> bool:
    """``known`` is ``name`` or a prefix of it ending at a version suffix
    (``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-20241022``, ``gemini-1.5-pro-002``)."""
    return name == known or (name.startswith(known) and name[len(known)] in "-@:")


class PriceTable:
    """Prices by ``provider/model`` (or a bare ``model``, for any provider)."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.prices = dict(prices)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any] | None = None) -> PriceTable:
        """The shipped defaults with ``overrides`` (checked by :func:`parse_prices`) on top."""
        return cls(DEFAULT_PRICES | parse_prices(overrides or {}))

    def lookup(self, provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        """The table key that prices this call, or ``None`` and why not.

        An exact ``provider/model`` wins, then a bare ``model`` key, then the longest known
        model name the model's name extends with a version suffix (same provider if given).
        """
        if not model:
            return None, "the event names no model"
        prov = (provider or "").lower()
        name = model.lower()
        if "/" in name and not prov:  # "openai/gpt-4o" sent as the model name
            prov, name = name.split("/", 1)
        keys = {k.lower(): k for k in self.prices}
        for want in (f"{prov}/{name}" if prov else None, name):
            if want and want in keys:
                return keys[want], None
        best: tuple[int, str] | None = None
        for low, key in keys.items():
            kp, _, km = low.rpartition("/")
            if prov and kp and kp != prov:
                continue
            if _boundary(name, km) and (best is None or len(km) > best[0]):
                best = (len(km), key)
        if best is not None:
            return best[1], None
        who = f"{provider}/{model}" if provider else model
        return None, f"no price for model {who!r} in the price table"

    def cost(self, provider: str | None, model: str | None, tokens_in: float | None,
             tokens_out: float | None) -> tuple[float | None, str | None]:
        """USD of one call, or ``None`` and why (unknown model, tokens unknown)."""
        key, why = self.lookup(provider, model)
        if key is None:
            return None, why
        if tokens_in is None and tokens_out is None:
            return None, "the event has no token counts"
        p = self.prices[key]
        return round(((tokens_in or 0.0) * p.input + (tokens_out or 0.0) * p.output) / 1000,
                     12), None

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {k: v.to_dict() for k, v in sorted(self.prices.items())}


def _price_number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ParameterError(f"{where}: expected a number >= 0 (USD per 1,000 tokens), "
                             f"got {v!r}.", where)
    return float(v)


def parse_prices(doc: Any, source: str = "llm_prices") -> dict[str, Price]:
    """``{"provider/model": {"input": usd_per_1k, "output": usd_per_1k}}`` checked; errors
    name the entry and field, e.g. ``llm_prices['openai/gpt-4o'].output``."""
    if not isinstance(doc, Mapping):
        raise ParameterError(f"{source}: expected a mapping of provider/model to "
                             f"{{input, output}}, got {type(doc).__name__}.", source)
    if len(doc) > _MAX_ENTRIES:
        raise ParameterError(f"{source}: at most {_MAX_ENTRIES} entries, got {len(doc)}.",
                             source)
    out: dict[str, Price] = {}
    for key, spec in doc.items():
        where = f"{source}[{key!r}]"
        if not isinstance(key, str) or not key.strip() or len(key) > 200 \
                or key.startswith("/") or key.endswith("/"):
            raise ParameterError(f"{where}: expected 'provider/model' or 'model' (at most "
                                 "200 characters).", source)
        if not isinstance(spec, Mapping):
            raise ParameterError(f"{where}: expected {{input: ..., output: ...}}, got "
                                 f"{type(spec).__name__}.", where)
        unknown = sorted(set(spec) - {"input", "output"})
        if unknown:
            raise ParameterError(f"{where}.{unknown[0]}: unknown field; a price has input "
                                 "and output (USD per 1,000 tokens).", f"{where}.{unknown[0]}")
        for f in ("input", "output"):
            if f not in spec:
                raise ParameterError(f"{where}.{f}: required (USD per 1,000 tokens).",
                                     f"{where}.{f}")
        out[key] = Price(_price_number(spec["input"], f"{where}.input"),
                         _price_number(spec["output"], f"{where}.output"))
    return out
