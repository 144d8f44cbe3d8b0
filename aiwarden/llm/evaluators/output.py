"""Output-shape evaluator: empty, truncated and over-long responses.

The provider's ``finish_reason`` settles truncation: ``"length"`` (or ``max_tokens``) is
certain truncation, ``"stop"``, ``"content_filter"``, a tool call or an end of turn is none
(a complete answer ending on a bare number or a table row was flagged although the provider
said it stopped). Without one, or with another (``"error"``, the gateway's
``"client_closed"``), truncation is guessed from the end of the text: a response that stops
mid-sentence (no closing punctuation, an unclosed code block or bracket) after at least
``min_chars`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiwarden.errors import check_param
from aiwarden.llm.findings import FIELDS, Finding

__all__ = ["OutputEvaluator"]

# Endings of a complete response: sentence punctuation, closing quote/bracket, emoji/symbol,
# a URL or code line, a list item or heading (markdown), or a closed code fence.
_COMPLETE_END = re.compile(
    r"(?:[.!?…)\]}\"'”’»>:*`~_|]|[\U0001F000-\U0001FAFF\u2600-\u27BF]|```|\bhttps?://\S+|"
    r"^\s*(?:[-*+]|\d+[.)]|#+)\s.*)\s*\Z",
    re.MULTILINE,
)

_COMPLETE_LAST = frozenset(".!?…)]}\"'”’»>:*`~_|")

# Providers' finish reasons (OpenAI, Anthropic, Gemini, OpenTelemetry gen_ai), lower-cased:
# the output was cut at the token limit, or the output ended of itself.
_CUT = frozenset({"length", "max_tokens", "max_output_tokens"})
_ENDED = frozenset({"stop", "content_filter", "tool_calls", "tool_call", "function_call",
                    "end_turn", "stop_sequence", "tool_use"})


class OutputEvaluator:
    """Flags empty, truncated and (optionally) over-long outputs.

    Parameters
    ----------
    field : str
        The text to read ("output").
    min_chars : int
        Texts shorter than this are not judged for mid-sentence truncation ("OK", "Yes").
    max_chars : int or None
        When set, a longer text gets a ``too_long`` finding.

    Examples
    --------
    >>> ev = OutputEvaluator()
    >>> texts = ["", "The answer is 42.", "The answer is that the"]
    >>> [[f.category for f in fs] for fs in ev.evaluate(texts)]
    [['empty'], [], ['truncated']]
    >>> [f.detail for f in ev.evaluate(["Done."], finish_reasons=["length"])[0]]
    ["finish_reason is 'length'"]
    >>> ev.evaluate(["The total is 42"], finish_reasons=["stop"])  # the provider ended it
    [[]]
    """

    name = "output"

    def __init__(self, field: str = "output", min_chars: int = 20,
                 max_chars: int | None = None) -> None:
        check_param(field in FIELDS, "field", "OutputEvaluator", f"one of {list(FIELDS)}", field)
        check_param(isinstance(min_chars, int) and min_chars >= 0, "min_chars",
                    "OutputEvaluator", "an int >= 0", min_chars)
        check_param(max_chars is None or (isinstance(max_chars, int) and max_chars > 0),
                    "max_chars", "OutputEvaluator", "None or an int > 0", max_chars)
        self.field = field
        self.fields = (field,)
        self.min_chars = min_chars
        self.max_chars = max_chars

    def evaluate(self, texts: Sequence[str],
                 finish_reasons: Sequence[str | None] | None = None) -> list[list[Finding]]:
        """Findings per text; ``finish_reasons`` (one per text) makes truncation certain."""
        if finish_reasons is not None and len(finish_reasons) != len(texts):
            check_param(False, "finish_reasons", "OutputEvaluator.evaluate",
                        f"None or one value per text ({len(texts)})", len(finish_reasons))
        out = []
        for i, text in enumerate(texts):
            reason = finish_reasons[i] if finish_reasons is not None else None
            out.append(self._one(text, reason))
        return out

    def _one(self, text: str, finish_reason: str | None) -> list[Finding]:
        found: list[Finding] = []
        stripped = text.strip()
        if not stripped:
            detail = "the response is empty" if not text else "the response is only whitespace"
            return [Finding("output", "empty", self.field, -1, -1, 1.0, detail)]
        reason = finish_reason.strip().lower() if finish_reason else ""
        if reason in _CUT:
            found.append(Finding("output", "truncated", self.field, -1, -1, 1.0,
                                 f"finish_reason is {finish_reason!r}"))
        elif reason not in _ENDED and len(stripped) >= self.min_chars:
            detail = _truncation(stripped)
            if detail:
                found.append(Finding("output", "truncated", self.field, -1, -1, 0.6, detail))
        if self.max_chars is not None and len(text) > self.max_chars:
            found.append(Finding("output", "too_long", self.field, -1, -1, 0.5,
                                 f"{len(text)} characters, more than {self.max_chars}"))
        return found


def _truncation(stripped: str) -> str:
    """Why the text looks cut off, or "" when it looks complete."""
    if stripped.count("```") % 2:
        return "a code block is not closed"
    tail = stripped[-400:]
    last = tail[-1]
    if last in ",;(-–—/&+=":
        return f"ends with {last!r}"
    # The text is stripped, so ``\s*\Z`` matches only at its end: a last character of the
    # first alternative is a match by itself (the common case, decided without scanning).
    if last in _COMPLETE_LAST or "\U0001F000" <= last <= "\U0001FAFF" \
            or "\u2600" <= last <= "\u27BF" or _complete_end(tail):
        return ""
    return "ends mid-sentence"


def _complete_end(tail: str) -> bool:
    """``_COMPLETE_END.search(tail)`` for a text without trailing whitespace, tried only
    where a match can start: a match ends at the end, so a closing mark, fence or URL lies
    in the last token, and a list item or heading starts the last line or the one before
    (whose marker may be followed by the last newline); scanning all 400 characters from
    the left cost more than every other check together."""
    last_line = tail.rfind("\n") + 1
    prev_line = tail.rfind("\n", 0, last_line - 1) + 1 if last_line else 0
    token = len(tail) - len(tail.rsplit(None, 1)[-1])
    return bool(_COMPLETE_END.match(tail, prev_line) or _COMPLETE_END.match(tail, last_line)
                or _COMPLETE_END.search(tail, token))
