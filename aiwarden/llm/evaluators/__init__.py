"""Rule-based evaluators of LLM inputs and outputs (no model call, no download).

Each module holds one evaluator class following :class:`~aiwarden.llm.evaluators.base.Evaluator`.
"""

from __future__ import annotations

from aiwarden.llm.evaluators.base import Evaluator

__all__ = ["Evaluator"]
