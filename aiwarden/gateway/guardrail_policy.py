"""A model's guardrail policy: the upstream to forward chat completions to, and which
finding categories are blocked, redacted or only flagged (docs/guardrails.md).

A category may be named on its own (``self_harm``, ``email``) or by its evaluator's group
(``safety``, ``pii``, ``secrets``, ``injection``, ``refusal``), which stands for all of its
categories. Every category needs its evaluator: one that is not available fails here, when
the policy is set, never silently at request time. Only value categories (PII, secrets)
can be redacted: there is nothing to replace a self-harm sentence with but a block.

>>> p = GuardrailPolicy.from_dict({"upstream": {"base_url": "https://api.openai.com/v1"},
...                                "block": ["self_harm"], "redact": ["pii"]})
>>> p.action_of("self_harm"), p.action_of("email"), p.action_of("hate")
('block', 'redact', None)
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiwarden._env_names import env_name_refused
from aiwarden.errors import ParameterError

__all__ = ["ACTIONS", "DEFAULT_FALLBACK", "DEFAULT_MAX_MESSAGE_CHARS", "ENV_PREFIX", "GROUPS",
           "HOLD_CHARS", "INPUT_EVALUATORS", "KEY_ENVS", "MESSAGE_CHARS", "ON_ERROR",
           "OUTPUT_EVALUATORS", "GuardrailPolicy", "KeyUnavailable", "Upstream", "env_refused",
           "evaluator_of", "file_refused"]

ACTIONS = ("block", "redact", "flag")
#: What the client gets instead of a blocked answer.
DEFAULT_FALLBACK = ("I'm sorry, I can't help with that. If you are going through a hard "
                    "time, please reach out to someone you trust or a local crisis line.")
#: Evaluator → the module that defines its CATEGORIES (None: the category is the name).
_MODULES = {"safety": "safety", "pii": "pii", "secrets": "secrets", "injection": None,
            "refusal": None}
#: Which evaluators read the prompt before it is forwarded, and the answer after.
INPUT_EVALUATORS = ("injection", "pii", "secrets")
OUTPUT_EVALUATORS = ("safety", "pii", "secrets", "refusal")
_REDACTABLE = ("pii", "secrets")
#: The longest message text checked (a chat turn, not a document: a longer one is refused
#: rather than holding a worker for seconds).
DEFAULT_MAX_MESSAGE_CHARS = 200_000
#: The bounds of ``max_hold_chars`` and ``max_message_chars``; what ``on_error`` may be.
HOLD_CHARS = (20, 10_000)
MESSAGE_CHARS = (1_000, 10_000_000)
ON_ERROR = ("block", "flag")
#: The environment variables a policy's ``upstream.api_key_env`` may name: those with this
#: prefix, and those listed (comma-separated) in :data:`KEY_ENVS`. Any other name could
#: send one of the server's own secrets (``AIWARDEN_DATABASE_URL``...) to the upstream.
ENV_PREFIX = "AIWARDEN_UPSTREAM_"
KEY_ENVS = "AIWARDEN_GUARDRAIL_KEY_ENVS"
_TOKEN = re.compile(r"[!-~]{1,4096}")  # what may follow "Bearer " in a header


class KeyUnavailable(Exception):
    """The upstream key cannot be read; the message names where from, never the value."""


def env_refused(name: str) -> str | None:
    """Why ``name`` may not be a policy's key variable, or None."""
    return env_name_refused(name, ENV_PREFIX, KEY_ENVS, "an upstream key")


def file_refused(name: str, secrets_dir: str | Path | None) -> str | None:
    """Why ``name`` may not be a policy's key file (outside the secrets folder), or None;
    the file itself is read, and checked, only at request time."""
    if secrets_dir is None:
        return "no secrets folder is configured (AIWARDEN_SECRETS_DIR), so no file can be read."
    base = os.path.realpath(secrets_dir)
    if "\0" in name or not Path(os.path.realpath(Path(base) / name)).is_relative_to(base):
        return (f"{name!r} is outside the secrets folder {base!r} (AIWARDEN_SECRETS_DIR); "
                "name a file inside it.")
    return None


def _categories(evaluator: str) -> tuple[str, ...]:
    module = _MODULES[evaluator]
    if module is None:
        return (evaluator,)
    try:
        mod = importlib.import_module(f"aiwarden.llm.evaluators.{module}")
    except ImportError:
        return ()
    return tuple(getattr(mod, "CATEGORIES", ()))


def _groups() -> dict[str, tuple[str, ...]]:
    return {name: _categories(name) for name in _MODULES}


GROUPS = tuple(_MODULES)


def evaluator_of(category: str) -> str | None:
    """The evaluator that finds ``category`` (None when no available one does)."""
    for name, cats in _groups().items():
        if category in cats:
            return name
    return None


def _evaluator_available(name: str) -> str | None:
    """Why the evaluator ``name`` cannot run, or None."""
    try:
        importlib.import_module(f"aiwarden.llm.evaluators.{name}")
    except ImportError as exc:
        return f"the {name} evaluator is not available ({exc})"
    return None


@dataclass(frozen=True)
class Upstream:
    """Where requests go: an OpenAI-compatible base URL (``.../v1``) and its key, read from
    an environment variable or a file at request time (never stored)."""

    base_url: str
    api_key_env: str | None = None
    api_key_file: str | None = None
    timeout: float = 60.0

    def api_key(self, secrets_dir: str | Path | None = None) -> str | None:
        """The key (None: no key configured, or its variable is not set). A blocking read:
        call it off the event loop. Raises :class:`KeyUnavailable` (its message names the
        variable or file, never the value) when the variable is not one a policy may name,
        the file is not a one-line regular file inside ``secrets_dir``, or the value is not
        a header-safe token."""
        if self.api_key_env:
            why = env_refused(self.api_key_env)
            if why:
                raise KeyUnavailable(f"upstream.api_key_env: {why}")
            value = os.environ.get(self.api_key_env, "").strip() or None
        elif self.api_key_file:
            from aiwarden.alerting.notifiers.secrets import _read_file  # the one reader

            try:
                value = _read_file(self.api_key_file, "upstream.api_key_file",
                                   secrets_dir).strip() or None
            except ParameterError as exc:
                raise KeyUnavailable(str(exc)) from None
        else:
            return None
        if value is not None and not _TOKEN.fullmatch(value):
            where = "api_key_env" if self.api_key_env else "api_key_file"
            raise KeyUnavailable(f"upstream.{where}: the key is not a header-safe token "
                                 "(printable ASCII without spaces).")
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base_url": self.base_url, "timeout": self.timeout}
        if self.api_key_env:
            out["api_key_env"] = self.api_key_env
        if self.api_key_file:
            out["api_key_file"] = self.api_key_file
        return out


@dataclass(frozen=True)
class GuardrailPolicy:
    """See the module docstring; build with :meth:`from_dict` (errors name the field)."""

    upstream: Upstream
    actions: Mapping[str, str] = field(default_factory=dict)  # category → action
    fallback: str = DEFAULT_FALLBACK
    version: str | None = None  # the model version events are logged under
    provider: str = "openai"
    max_hold_chars: int = 400  # streamed text held back at most before it is checked
    on_error: str = "block"  # an evaluator that fails: block (fail closed) or flag
    named: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # action → as given
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS  # a longer message is refused (422)

    def action_of(self, category: str) -> str | None:
        return self.actions.get(category)

    def evaluators(self, stage: str) -> tuple[str, ...]:
        """The evaluators that must run on ``stage`` ("input" / "output")."""
        reads = INPUT_EVALUATORS if stage == "input" else OUTPUT_EVALUATORS
        need = {evaluator_of(c) for c in self.actions}
        return tuple(e for e in reads if e in need)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "guardrail") -> GuardrailPolicy:
        if not isinstance(doc, Mapping):
            raise ParameterError(f"{where}: expected a mapping, got {type(doc).__name__}.",
                                 where)
        known = {"upstream", *ACTIONS, "fallback", "version", "provider", "max_hold_chars",
                 "on_error", "max_message_chars"}
        extra = sorted(set(doc) - known)
        if extra:
            raise ParameterError(f"{where}.{extra[0]}: unknown field; expected one of "
                                 f"{sorted(known)}.", f"{where}.{extra[0]}")
        upstream = _upstream(doc.get("upstream"), f"{where}.upstream")
        groups = _groups()
        actions: dict[str, str] = {}
        named: dict[str, tuple[str, ...]] = {}
        for action in ACTIONS:
            names = doc.get(action) or []
            f = f"{where}.{action}"
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ParameterError(f"{f}: expected a list of category names.", f)
            named[action] = tuple(names)
            for n in names:
                cats = _expand(n, groups, f)
                for c in cats:
                    if c in actions and actions[c] != action:
                        raise ParameterError(f"{f}: category {c!r} is already in "
                                             f"{where}.{actions[c]}; one action a category.", f)
                    if action == "redact" and evaluator_of(c) not in _REDACTABLE:
                        raise ParameterError(
                            f"{f}: {c!r} cannot be redacted (only PII and secrets values "
                            "can); block or flag it.", f)
                    actions[c] = action
        fallback = doc.get("fallback", DEFAULT_FALLBACK)
        if not isinstance(fallback, str) or not fallback.strip():
            raise ParameterError(f"{where}.fallback: expected a non-empty text.",
                                 f"{where}.fallback")
        version = doc.get("version")
        if version is not None and (not isinstance(version, str) or not version):
            raise ParameterError(f"{where}.version: expected a version label.",
                                 f"{where}.version")
        provider = doc.get("provider", "openai")
        if not isinstance(provider, str) or not provider:
            raise ParameterError(f"{where}.provider: expected a provider name.",
                                 f"{where}.provider")
        hold = _int_in(doc.get("max_hold_chars", 400), HOLD_CHARS, f"{where}.max_hold_chars")
        on_error = doc.get("on_error", "block")
        if on_error not in ON_ERROR:
            raise ParameterError(f"{where}.on_error: expected 'block' (fail closed) or "
                                 f"'flag' (pass, recorded), got {on_error!r}.",
                                 f"{where}.on_error")
        most = _int_in(doc.get("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS), MESSAGE_CHARS,
                       f"{where}.max_message_chars")
        return cls(upstream, actions, fallback, version, provider, hold, on_error, named,
                   most)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"upstream": self.upstream.to_dict(),
                               **{a: list(self.named.get(a, ())) for a in ACTIONS},
                               "fallback": self.fallback, "provider": self.provider,
                               "max_hold_chars": self.max_hold_chars,
                               "on_error": self.on_error,
                               "max_message_chars": self.max_message_chars}
        if self.version is not None:
            out["version"] = self.version
        return out


def _int_in(v: Any, bounds: tuple[int, int], where: str) -> int:
    """``v`` as an int within ``bounds``; 400.0 is one (an integer to JSON Schema and the
    OpenAPI document), True and 400.5 are not."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not bounds[0] <= v <= bounds[1]:
        raise ParameterError(f"{where}: expected an int in [{bounds[0]}, {bounds[1]}], got "
                             f"{v!r}.", where)
    return v


def _expand(name: str, groups: dict[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    if name in groups:
        why = _evaluator_available(name)
        if why is not None or not groups[name]:
            raise ParameterError(f"{where}: {name!r} needs {why or 'its evaluator'}.", where)
        return groups[name]
    ev = evaluator_of(name)
    if ev is None:
        valid = sorted({*groups, *(c for cats in groups.values() for c in cats)})
        missing = [g for g in groups if _evaluator_available(g)]
        hint = f" (not available: {', '.join(missing)})" if missing else ""
        raise ParameterError(f"{where}: unknown category {name!r}; expected one of "
                             f"{valid}{hint}.", where)
    return (name,)


def _upstream(doc: Any, where: str) -> Upstream:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("base_url"), str):
        raise ParameterError(f"{where}.base_url: required, the upstream's OpenAI-compatible "
                             "base URL (e.g. https://api.openai.com/v1).", f"{where}.base_url")
    extra = sorted(set(doc) - {"base_url", "api_key_env", "api_key_file", "timeout"})
    if extra:
        raise ParameterError(f"{where}.{extra[0]}: unknown field.", f"{where}.{extra[0]}")
    url = doc["base_url"].rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise ParameterError(f"{where}.base_url: expected an http(s) URL, got {url!r}.",
                             f"{where}.base_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError as exc:  # an unbalanced "[" or "]" (the long fuzz's 500)
        raise ParameterError(f"{where}.base_url: not a valid URL ({exc}).",
                             f"{where}.base_url") from None
    if "@" in parts.netloc or parts.query or parts.fragment or "?" in url or "#" in url:
        # the URL is stored and shown to every reader of the policy: no credential in it
        raise ParameterError(f"{where}.base_url: a user, password, query or fragment is not "
                             "allowed (the URL is stored and shown in clear); give the key "
                             "with api_key_env or api_key_file.", f"{where}.base_url")
    env, path = doc.get("api_key_env"), doc.get("api_key_file")
    for k, v in (("api_key_env", env), ("api_key_file", path)):
        if v is not None and (not isinstance(v, str) or not v):
            raise ParameterError(f"{where}.{k}: expected a non-empty text.", f"{where}.{k}")
    if env and path:
        raise ParameterError(f"{where}.api_key_file: give api_key_env or api_key_file, not "
                             "both.", f"{where}.api_key_file")
    if env and env_refused(env):
        raise ParameterError(f"{where}.api_key_env: {env_refused(env)}", f"{where}.api_key_env")
    timeout = doc.get("timeout", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not math.isfinite(timeout) or not 0 < timeout <= 600:
        raise ParameterError(f"{where}.timeout: expected seconds in (0, 600], got "
                             f"{timeout!r}.", f"{where}.timeout")
    return Upstream(url, env, path, float(timeout))
