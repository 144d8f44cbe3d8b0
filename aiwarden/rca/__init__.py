"""Root-cause analysis of a model's window: ranked suspects with evidence (JSON and markdown)."""

from aiwarden.rca.analysis import Suspect, analyse, failing_slices
from aiwarden.rca.markdown import to_markdown

__all__ = ["Suspect", "analyse", "failing_slices", "to_markdown"]
