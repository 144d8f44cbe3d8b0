"""What an evaluator found in one text: a category, a character span and a severity.

A finding never holds the matched text itself (it may be PII): callers that need the phrase
slice the text they passed in with ``[start:end]``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIELDS", "Finding"]

#: The texts of an LLM event an evaluator can read.
FIELDS = ("output", "input", "context")


@dataclass(frozen=True)
class Finding:
    """One thing an evaluator flagged.

    Parameters
    ----------
    evaluator : str
        Name of the evaluator ("safety", "pii", "secrets", "injection", "refusal", "output",
        "groundedness").
    category : str
        What was found, e.g. "self_harm", "violence", "hate", "sexual", "email", "card",
        "injection", "refusal", "empty", "truncated", "ungrounded".
    field : str
        Which text of the event: "output", "input" or "context".
    start, end : int
        Character span ``[start, end)`` in that text; -1/-1 for a finding about the whole text.
    severity : float
        0..1, 1 = certain and severe.
    detail : str
        Short explanation; never contains a matched PII value.

    Examples
    --------
    >>> f = Finding("safety", "self_harm", "output", 0, 13, 0.9, "encouragement")
    >>> f.to_dict()["span"]
    [0, 13]
    >>> f.whole_text
    False
    """

    evaluator: str
    category: str
    field: str
    start: int
    end: int
    severity: float
    detail: str = ""

    @property
    def whole_text(self) -> bool:
        """True when the finding is about the whole text rather than a span of it."""
        return self.start < 0

    def to_dict(self) -> dict:
        """A JSON-ready dict: the dataclass fields plus ``span`` as ``[start, end]``."""
        # by hand: dataclasses.asdict deep-copies and costs ~8 % of ingest
        return {"evaluator": self.evaluator, "category": self.category, "field": self.field,
                "start": self.start, "end": self.end, "severity": self.severity,
                "detail": self.detail, "span": [self.start, self.end]}
