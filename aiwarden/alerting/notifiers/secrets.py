"""Receiver secrets named instead of written: ``${env:SLACK_URL}`` or ``${file:/run/secrets/x}``
inside a string, or a whole value ``{env: SLACK_URL}`` / ``{file: /run/secrets/x}``.

A rule file kept in git then holds no secret, and neither does the stored config: the
reference is stored, and each server process resolves it when it builds the receiver (so
every process that delivers needs the variable or file). A missing variable or unreadable
file is refused with the variable's (or file's) name and the field it was for; the value
itself is never part of a message. A file's trailing newline is dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from aiwarden.errors import ParameterError

__all__ = ["resolve_secrets"]

_REF = re.compile(r"\$\{(env|file):([^}]*)\}")


def _lookup(kind: str, name: str, where: str) -> str:
    name = name.strip()
    if not name:
        raise ParameterError(f"{where}: ${{{kind}:...}} names no "
                             f"{'variable' if kind == 'env' else 'file'}.", where)
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise ParameterError(f"{where}: environment variable {name} is not set (the "
                                 "server process reads it).", where)
        return value
    try:
        with open(name, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as exc:
        raise ParameterError(f"{where}: cannot read secret file {name!r}: "
                             f"{exc.strerror or exc}.", where) from None


def _resolve(value: Any, where: str) -> Any:
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _REF.sub(lambda m: _lookup(m[1], m[2], where), value)
    if isinstance(value, Mapping):
        if len(value) == 1 and next(iter(value)) in ("env", "file"):
            ((kind, name),) = value.items()
            if not isinstance(name, str):
                raise ParameterError(f"{where}: {{{kind}: ...}} expects a name as text.",
                                     where)
            return _lookup(str(kind), name, where)
        return {k: _resolve(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def resolve_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every reference replaced by what it names; errors name the field."""
    return {k: _resolve(v, str(k)) for k, v in config.items()}
