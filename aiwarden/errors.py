"""The exception tree, drawn once.

    AiwardenError                 root: catch this to catch everything of ours
    ├── ParameterError            a constructor or call argument is out of range (also ValueError)
    ├── SchemaError               a column is absent, has the wrong role or type (also ValueError)
    ├── DataError                 the data cannot be used: empty, unreadable (also ValueError)
    ├── NotFittedError            a method needs ``fit`` first (also RuntimeError)
    └── Cancelled                 the caller's ``should_stop`` asked long work to stop

Messages follow one template so users can grep them:
"The 'bins' parameter of Reference must be an int in [2, 10000]. Got 1 instead."
"""

from __future__ import annotations

import re

__all__ = [
    "AiwardenError",
    "Cancelled",
    "DataError",
    "NotFittedError",
    "ParameterError",
    "SchemaError",
    "check_param",
    "without_paths",
]


class AiwardenError(Exception):
    """Root of every error aiwarden raises on purpose; ``field`` names what was wrong."""

    def __init__(self, message: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ParameterError(AiwardenError, ValueError):
    """A parameter is outside the values the callee accepts."""


class SchemaError(AiwardenError, ValueError):
    """A column is missing, unknown, or of a type/role that cannot be used."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message, column)
        self.column = column


class DataError(AiwardenError, ValueError):
    """Data cannot be used as given (empty, unreadable, wrong shape)."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message, column)
        self.column = column


class NotFittedError(AiwardenError, RuntimeError):
    """The object must be fitted before this call."""


class Cancelled(AiwardenError):
    """Long work stopped because its caller no longer wants the result (e.g. the client left)."""


def check_param(ok: bool, name: str, owner: str, expected: str, got: object) -> None:
    """Raise the house-style ParameterError unless ``ok``."""
    if not ok:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be {expected}. Got {got!r} instead."
        )


# An absolute POSIX path of two or more parts (not the path of a URL: those follow a host
# name or "//"), or a Windows drive path.
_LOCAL_PATH = re.compile(r"(?<![\w/.:~-])(?:/[^\s'\"/()<>,;]+){2,}/?|\b[A-Za-z]:\\[^\s'\"<>,;]+")


def without_paths(text: str) -> str:
    r"""``text`` with local file paths cut to their last part: messages of third-party
    errors (an import, a model's own code) may name files on the server.

    >>> without_paths("No such file: '/srv/aiwarden/artifacts/m/ab12.skops' (see http://x.io/a/b)")
    "No such file: '…/ab12.skops' (see http://x.io/a/b)"
    """
    def last(m: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[/\\]", m.group(0)) if p]
        return "…/" + (parts[-1] if parts else "")

    return _LOCAL_PATH.sub(last, text)
