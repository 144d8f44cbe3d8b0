"""LLM and chatbot monitoring: evaluators, descriptors and events for text generation.

Pure package: no server or store imports. Each evaluator reads texts and returns
:class:`~aiwarden.llm.findings.Finding` objects; the descriptors turn findings into the flat
``llm_*`` columns that the tabular engine profiles, alerts on and drifts.
"""

from __future__ import annotations

from aiwarden.llm.findings import Finding

__all__ = ["Finding"]
