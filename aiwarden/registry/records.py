"""What the registry answers: frozen records with ``to_dict()``, and version metadata checks."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from aiwarden.errors import ParameterError

__all__ = ["META_FIELDS", "AliasEvent", "VersionInfo", "check_alias", "check_name",
           "clean_filename", "clean_metadata"]

META_FIELDS = ("description", "metrics", "params", "tags", "source_commit", "training_profile",
               "inputs", "lineage")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class VersionInfo:
    """A registered version: its artifact, metadata, aliases and monitoring reference."""

    model: str
    version: str
    format: str
    sha256: str
    size: int
    registered_by: str
    created_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None
    entry_point: str | None = None
    trusted_types: list[str] = field(default_factory=list)
    trusted_by: str | None = None
    aliases: list[str] = field(default_factory=list)
    reference: dict[str, Any] | None = None  # the monitoring reference of the same version
    version_id: int = field(default=0, repr=False)
    uri: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("version_id")
        out.pop("uri")
        return out


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias, as the append-only history keeps it."""

    id: int
    model: str
    alias: str
    from_version: str | None  # None: the alias was new
    to_version: str | None  # None: the alias was removed
    kind: str
    actor: str
    reason: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(value: Any, field_: str) -> str:
    """Names travel in URLs and artifact keys: letters, digits and ``._:@+-`` only."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ParameterError(f"{field_}: expected 1-200 letters, digits or ._:@+- (starting "
                             f"with a letter or digit); got {value!r}.", field_)
    return value


def clean_filename(value: str | None) -> str | None:
    r"""The name an artifact is saved under when downloaded: the last path part, without
    control or formatting characters (CR/LF would split an HTTP header, U+202E would
    disguise the extension), at most 255 characters; letters of any script are kept.

    >>> clean_filename("../../etc/mod\u00e8le\r\nX-Evil: 1.skops")
    'modèleX-Evil: 1.skops'
    >>> clean_filename("C:\\models\\..") is None
    True
    """
    if value is None:
        return None
    last = re.split(r"[/\\]", str(value))[-1]
    kept = "".join(ch for ch in unicodedata.normalize("NFC", last)
                   if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    kept = kept.strip()
    return None if kept.strip(".") == "" else kept[:255]


def check_alias(value: Any) -> str:
    """Aliases start with a letter, so one is never mistaken for a version number."""
    if not isinstance(value, str) or not _ALIAS.fullmatch(value):
        raise ParameterError(f"alias: expected a letter then up to 99 letters, digits, _ or -; "
                             f"got {value!r}.", "alias")
    return value


def _dict(meta: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = meta.get(key) or {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ParameterError(f"metadata.{key}: expected an object with text keys; got "
                             f"{type(value).__name__}.", f"metadata.{key}")
    return dict(value)


def clean_metadata(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Checked metadata: numbers for metrics, text for tags, JSON for the rest."""
    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(META_FIELDS))
    if unknown:
        raise ParameterError(f"metadata: unknown field(s) {unknown}; use {list(META_FIELDS)}.",
                             f"metadata.{unknown[0]}")
    out: dict[str, Any] = {}
    metrics = _dict(meta, "metrics")
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ParameterError(f"metadata.metrics.{k}: expected a finite number; got {v!r}.",
                                 f"metadata.metrics.{k}")
    out["metrics"] = {k: float(v) for k, v in metrics.items()}
    tags = _dict(meta, "tags")
    for k, v in tags.items():
        if not isinstance(v, str | int | float | bool):
            raise ParameterError(f"metadata.tags.{k}: expected text; got {v!r}.",
                                 f"metadata.tags.{k}")
    out["tags"] = {k: str(v) for k, v in tags.items()}
    out["params"] = _dict(meta, "params")
    for key in ("description", "source_commit"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ParameterError(f"metadata.{key}: expected text; got {meta[key]!r}.",
                                 f"metadata.{key}")
        out[key] = meta.get(key)
    profile = meta.get("training_profile")
    if profile is not None and not isinstance(profile, Mapping):
        raise ParameterError("metadata.training_profile: expected an object.",
                             "metadata.training_profile")
    out["training_profile"] = None if profile is None else dict(profile)
    lineage = meta.get("lineage")  # how a retraining run made it (aiwarden.training)
    if lineage is not None and not isinstance(lineage, Mapping):
        raise ParameterError("metadata.lineage: expected an object.", "metadata.lineage")
    if lineage is not None:
        out["lineage"] = dict(lineage)
    inputs = meta.get("inputs")
    if inputs is not None and (not isinstance(inputs, list | tuple)
                               or not all(isinstance(c, str) for c in inputs)):
        raise ParameterError("metadata.inputs: expected a list of column names.",
                             "metadata.inputs")
    out["inputs"] = None if inputs is None else list(inputs)
    try:
        orjson.dumps(out)
    except TypeError as exc:
        raise ParameterError(f"metadata: not JSON: {exc}", "metadata") from None
    return out
