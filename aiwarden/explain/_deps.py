"""shap and lime are optional (``pip install 'aiwarden[explain]'``): imported on first use only.

A missing one raises :class:`MissingExtraError`, one line that names the extra, so the
server can answer a 4xx that tells the operator what to install rather than a 5xx trace.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from aiwarden.errors import AiwardenError

__all__ = ["INSTALL_HINT", "MissingExtraError", "lime_tabular", "shap"]

INSTALL_HINT = "pip install 'aiwarden[explain]'"
#: ``catch_warnings`` swaps the process's filters: two threads importing at once could each
#: restore the other's, and shap's import warning then escapes (an error under ``-W error``).
_IMPORTING = threading.Lock()


class MissingExtraError(AiwardenError, ImportError):
    """An optional dependency of ``aiwarden.explain`` is not installed."""


def shap() -> Any:
    """The ``shap`` module, or a one-line error naming the extra."""
    try:
        with _IMPORTING, warnings.catch_warnings():  # shap's plots use matplotlib's old APIs
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap as module
    except ImportError:
        raise MissingExtraError(f"Explanations need shap, which is not installed: "
                                f"{INSTALL_HINT}", "explain") from None
    return module


def lime_tabular() -> Any:
    """``lime.lime_tabular``, or a one-line error naming the extra."""
    try:
        with _IMPORTING, warnings.catch_warnings():  # lime imports matplotlib too
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            from lime import lime_tabular as module
    except ImportError:
        raise MissingExtraError(f"LIME explanations need lime, which is not installed: "
                                f"{INSTALL_HINT}", "explain") from None
    return module
