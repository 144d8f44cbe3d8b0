"""Request models whose numbers are never booleans.

Why: pydantic reads JSON ``true`` as the integer 1 and ``false`` as 0 in lax mode, so
``"max_outliers": false`` in a pipeline body was stored as a limit of 0 where the document
says a number (schemathesis ST201, 2026-12-06) and a detector's ``clock: true`` became 1.
A field whose type admits ``bool`` (or ``Any``) still takes one.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationInfo, field_validator

__all__ = ["NoBoolNumbers"]


def _takes_bool(annotation: Any) -> bool:
    """Only asked when a boolean arrived: cheap enough without a cache (and an annotation
    holding unhashable metadata could not be cached)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(a) for a in get_args(annotation))


class NoBoolNumbers(BaseModel):
    """A base whose fields refuse ``true``/``false`` unless their type is (or holds) bool."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not _takes_bool(field.annotation):
                raise ValueError(f"expected {_kind(field.annotation)}, got a boolean")
        return v


def _kind(annotation: Any) -> str:
    text = str(annotation)
    return "a number" if ("int" in text or "float" in text) else "no boolean"
