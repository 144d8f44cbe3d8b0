"""Pillow and cleanlab are optional (``pip install 'aiwarden[images]'``): imported on first use.

A missing one raises :class:`MissingExtraError`, one line naming the extra, so the server can
answer a 4xx (or the CLI exit 2) that says what to install rather than a trace.
"""

from __future__ import annotations

import importlib
from typing import Any

from aiwarden.errors import AiwardenError

__all__ = ["INSTALL_HINT", "MissingExtraError", "cleanlab_filter", "pil", "pil_part"]

INSTALL_HINT = "pip install 'aiwarden[images]'"


class MissingExtraError(AiwardenError, ImportError):
    """An optional dependency of ``aiwarden.images`` is not installed."""


def pil() -> Any:
    """The ``PIL.Image`` module, or a one-line error naming the extra."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtraError(f"Image checks need Pillow, which is not installed: "
                                f"{INSTALL_HINT}", "images") from None
    return Image


def pil_part(name: str) -> Any:
    """``PIL.<name>`` (ImageChops, ImageDraw...), or the same one-line error."""
    pil()
    return importlib.import_module(f"PIL.{name}")


def cleanlab_filter() -> Any:
    """``cleanlab.filter``, or a one-line error naming the extra."""
    try:
        from cleanlab import filter as module
    except ImportError:
        raise MissingExtraError(f"Label issues need cleanlab, which is not installed: "
                                f"{INSTALL_HINT}", "images") from None
    return module
