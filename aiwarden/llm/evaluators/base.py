"""The evaluator protocol every rule-based or model-based evaluator follows.

An evaluator reads a batch of texts of one field (``fields`` says which: "output", "input",
"context") and returns one list of findings per text, in order. Batches let model-based
evaluators amortise a call; rule-based ones just loop over precompiled patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from aiwarden.llm.findings import Finding

__all__ = ["Evaluator"]


@runtime_checkable
class Evaluator(Protocol):
    """Reads texts, returns findings.

    ``evaluate(texts)[i]`` is the list of findings in ``texts[i]`` (empty when none); the
    result has exactly ``len(texts)`` lists.
    """

    name: str
    fields: tuple[str, ...]

    def evaluate(self, texts: Sequence[str]) -> list[list[Finding]]: ...
