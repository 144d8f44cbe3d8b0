"""Receiver secrets named instead of written: ``${env:SLACK_URL}`` or ``${file:/run/secrets/x}``
inside a string, or a whole value ``{env: SLACK_URL}`` / ``{file: /run/secrets/x}``.

A rule file kept in git then holds no secret, and neither does the stored config: the
reference is stored, and each server process resolves it when it builds the receiver (so
every process that delivers needs the variable or file). A missing variable or unreadable
file is refused with the variable's (or file's) name and the field it was for; the value
itself is never part of a message. Only variables starting with ``AIWARDEN_SECRET_`` or listed
in ``AIWARDEN_SECRET_ENVS`` may be named (any other could send the server's own secrets out).

A file reference can only name a regular file of at most :data:`MAX_FILE_BYTES` bytes inside
the secrets folder (the server's ``AIWARDEN_SECRETS_DIR``, default ``<data dir>/secrets``;
a relative name is taken inside it, symbolic links are followed only while they stay in it),
holding one line of UTF-8 text (its trailing newline dropped). Otherwise whoever may change
the notification config could make the server read any file it can (a key, a FIFO that
blocks, ``/dev/zero``) and send it to a URL of their choosing.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiwarden._env_names import env_name_refused
from aiwarden.errors import ParameterError

__all__ = ["ENV_PREFIX", "MAX_FILE_BYTES", "SECRET_ENVS", "resolve_secrets"]

MAX_FILE_BYTES = 4096
#: The variables a receiver may name: this prefix, or listed (comma-separated) in
#: :data:`SECRET_ENVS`. Any other name could send the server's own secrets
#: (``AIWARDEN_DATABASE_URL``, a cloud token) to the receiver's URL.
ENV_PREFIX = "AIWARDEN_SECRET_"
SECRET_ENVS = "AIWARDEN_SECRET_ENVS"
_REF = re.compile(r"\$\{(env|file):([^}]*)\}")


def _read_file(name: str, where: str, folder: str | Path | None) -> str:
    """The one line of the regular file ``name`` inside ``folder``; errors name ``where``."""
    if folder is None:
        raise ParameterError(f"{where}: secret file {name!r}: no secrets folder is configured "
                             "(AIWARDEN_SECRETS_DIR), so no file can be read.", where)
    if "\x00" in name:  # no file name holds one (realpath raised ValueError: a 500)
        raise ParameterError(f"{where}: secret file {name!r}: a file name holds no NUL "
                             "character.", where)
    base = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(base / name))  # an absolute name stays as it is
    if not real.is_relative_to(base):
        raise ParameterError(f"{where}: secret file {name!r} is outside the secrets folder "
                             f"{str(base)!r} (AIWARDEN_SECRETS_DIR).", where)
    try:  # non-blocking and no link at the end: a FIFO or a swapped link cannot stall us
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ParameterError(f"{where}: cannot read secret file {name!r}: "
                             f"{exc.strerror or exc}.", where) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ParameterError(f"{where}: secret file {name!r} is not a regular file.", where)
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ParameterError(f"{where}: secret file {name!r} is larger than {MAX_FILE_BYTES} "
                             "bytes; a secret is one line.", where)
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ParameterError(f"{where}: secret file {name!r} is not UTF-8 text.",
                             where) from None
    if "\n" in text or "\r" in text:
        raise ParameterError(f"{where}: secret file {name!r} holds more than one line; a "
                             "secret is one line.", where)
    return text


def _lookup(kind: str, name: str, where: str, folder: str | Path | None) -> str:
    name = name.strip()
    if not name:
        raise ParameterError(f"{where}: ${{{kind}:...}} names no "
                             f"{'variable' if kind == 'env' else 'file'}.", where)
    if kind == "env":
        refused = env_name_refused(name, ENV_PREFIX, SECRET_ENVS, "a receiver's secret")
        if refused:
            raise ParameterError(f"{where}: {refused}", where)
        value = os.environ.get(name)
        if value is None:
            raise ParameterError(f"{where}: environment variable {name} is not set (the "
                                 "server process reads it).", where)
        return value
    return _read_file(name, where, folder)


def _resolve(value: Any, where: str, folder: str | Path | None) -> Any:
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _REF.sub(lambda m: _lookup(m[1], m[2], where, folder), value)
    if isinstance(value, Mapping):
        if len(value) == 1 and next(iter(value)) in ("env", "file"):
            ((kind, name),) = value.items()
            if not isinstance(name, str):
                raise ParameterError(f"{where}: {{{kind}: ...}} expects a name as text.",
                                     where)
            return _lookup(str(kind), name, where, folder)
        return {k: _resolve(v, f"{where}.{k}", folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{where}[{i}]", folder) for i, v in enumerate(value)]
    return value


def resolve_secrets(config: Mapping[str, Any], secrets_dir: str | Path | None = None
                    ) -> dict[str, Any]:
    """``config`` with every reference replaced by what it names; errors name the field.
    ``secrets_dir``: the folder file references must stay in (None: they are refused)."""
    return {k: _resolve(v, str(k), secrets_dir) for k, v in config.items()}
