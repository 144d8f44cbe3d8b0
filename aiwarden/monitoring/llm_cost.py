"""Cost and tokens of LLM events that did not send them (docs/llm.md, "Cost and tokens").

On ingest, before the descriptor columns are computed: missing token counts are counted
(:mod:`aiwarden.llm.tokens`, flagged when estimated) and a missing cost is priced from the
server's price table (shipped defaults with the overrides stored in ``kv_state`` under
:data:`KEY`, set by ``aiwarden apply`` or ``PUT /api/v1/llm/prices``). An event whose model
has no price keeps no cost; the reasons are counted in the ingest answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from aiwarden.llm import tokens
from aiwarden.llm.events import LLMEvent
from aiwarden.llm.prices import PRICES_AS_OF, PriceTable, parse_prices
from aiwarden.store import kv

__all__ = ["KEY", "CostSummary", "describe", "fill", "get_overrides", "price_table",
           "set_overrides"]

KEY = "llm_prices"


def get_overrides(conn: Connection) -> dict[str, Any]:
    return kv.get(conn, KEY, {})


def set_overrides(conn: Connection, doc: Any, source: str = "llm_prices") -> dict[str, Any]:
    """Replace the server's overrides with ``doc`` (checked first; nothing written on error)."""
    prices = {k: p.to_dict() for k, p in parse_prices(doc, source).items()}
    kv.put(conn, KEY, prices)
    return prices


def price_table(conn: Connection) -> PriceTable:
    return PriceTable.with_overrides(get_overrides(conn))


def describe(conn: Connection) -> dict[str, Any]:
    """The effective table, which entries are overrides, and the defaults' date."""
    over = get_overrides(conn)
    method, why = tokens.method()
    return {"prices": price_table(conn).to_dict(), "overrides": sorted(over),
            "defaults_as_of": PRICES_AS_OF, "unit": "USD per 1,000 tokens",
            "token_counter": method, **({"token_counter_reason": why} if why else {})}


@dataclass
class CostSummary:
    priced: int = 0  # events whose cost came from the price table
    tokens_estimated: int = 0  # events with an estimated token count
    unknown: Counter = field(default_factory=Counter)  # reason -> events left without a cost

    def to_dict(self) -> dict[str, Any]:
        return {"priced": self.priced, "tokens_estimated": self.tokens_estimated,
                "cost_unknown": dict(self.unknown)}


def fill(events: Sequence[LLMEvent], table: PriceTable) -> CostSummary:
    """Count missing tokens, price missing costs, in place; what was done, counted."""
    out = CostSummary()
    need_in = [e for e in events if e.tokens_in is None and e.messages]
    need_out = [e for e in events if e.tokens_out is None]
    for side, group, text in (("tokens_in", need_in, lambda e: e.input),
                              ("tokens_out", need_out, lambda e: e.output)):
        if not group:
            continue
        counts, estimated = tokens.count_tokens([text(e) for e in group])
        for e, n in zip(group, counts, strict=True):
            setattr(e, side, float(n))
            e.tokens_estimated |= estimated
    out.tokens_estimated = sum(e.tokens_estimated for e in events)
    for e in events:
        if e.cost is not None:
            e.cost_source = "sent"
            continue
        cost, why = table.cost(e.provider, e.model, e.tokens_in, e.tokens_out)
        if cost is None:
            out.unknown[why or "unknown"] += 1
            e.cost_reason = why
        else:
            e.cost, e.cost_source = cost, "price_table"
            out.priced += 1
    return out
