"""A stored conversation cut into plain and highlighted pieces for the templates.

The findings' spans point into the stored texts (after the privacy policy: a PII span
covers its ``[EMAIL]`` replacement). Each text is cut at every span edge, and each piece
carries the categories of the findings covering it; the template prints the pieces with
Jinja's autoescape, so a response holding ``<script>`` shows as text, never as markup
(nothing of a user's text goes through ``innerHTML``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from aiwarden.llm.events import input_text

__all__ = ["Piece", "conversation", "pieces"]


@dataclass(frozen=True)
class Piece:
    text: str
    categories: tuple[str, ...] = ()  # empty: not flagged
    evaluators: tuple[str, ...] = ()

    @property
    def css(self) -> str:
        """``pii`` for private spans (already masked), else ``unsafe`` / ``flag``."""
        if "pii" in self.evaluators or "secrets" in self.evaluators:
            return "pii"
        return "unsafe" if "safety" in self.evaluators else "flag"


def pieces(text: str | None, findings: list[dict[str, Any]], field: str) -> list[Piece]:
    """``text`` cut at the edges of the spans of ``field``'s findings (whole-text findings
    and spans outside the text are not drawn: they are listed beside it)."""
    if not text:
        return []
    spans = [(max(0, f["start"]), min(len(text), f["end"]), f) for f in findings
             if f.get("field") == field and f.get("start", -1) >= 0
             and f["start"] < len(text) and f["end"] > f["start"]]
    cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out = []
    for a, b in pairwise(cuts):
        cover = [f for s, e, f in spans if s <= a and b <= e]
        out.append(Piece(text[a:b], tuple(dict.fromkeys(f["category"] for f in cover)),
                         tuple(dict.fromkeys(f["evaluator"] for f in cover))))
    return out


def conversation(event: dict[str, Any]) -> dict[str, Any]:
    """The event (``GET /models/{name}/llm-events/{id}`` shape) with its input, output and
    context as highlighted pieces, and the findings that have no span."""
    fs = event.get("findings") or []
    msgs = event.get("input") or []
    ctx = event.get("context") or []
    return {**event,
            "input_pieces": pieces(input_text(msgs) if msgs else None, fs, "input"),
            "output_pieces": pieces(event.get("output"), fs, "output"),
            "context_pieces": pieces("\n\n".join(ctx) if ctx else None, fs, "context"),
            "whole_text": [f for f in fs if f.get("start", -1) < 0],
            "categories": sorted({f["category"] for f in fs})}
