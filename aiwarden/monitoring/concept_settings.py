"""Per-model settings of the concept-drift detectors: which ones, their parameters, and how
long to wait for labels.

Stored as one JSON document per model (``kv_state``), written through the API or
``aiwarden apply``-style clients; a model with none gets the defaults of its task. Every
parameter left out takes the engine detector's own default, so the settings a user reads
back are the complete ones the server runs with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiwarden.engine.detectors import DETECTORS, make_detector
from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import parse_duration

__all__ = ["DEFAULT_LABEL_DELAY", "MAX_INT_PARAM", "ConceptDriftSettings",
           "default_detectors"]

#: Seconds an outcome waits, after its prediction, before the detectors read it.
DEFAULT_LABEL_DELAY = 3600
#: Largest integer setting: counts beyond it are mistakes, and JSON stores 64-bit at most.
MAX_INT_PARAM = 10**9
_ZERO = re.compile(r"\s*0+\s*[smhdw]?\s*")
_KEYS = ("enabled", "label_delay", "detectors")


def default_detectors(task: str | None) -> tuple[str, ...]:
    """ADWIN, for any task with labels: on seeded stationary 0/1 error streams (rate 0.1,
    1,000,000 outcomes) it raised no false alarm, where Page–Hinkley raised 10 and DDM 38
    (11 with ``warm_start=1000``) (docs/concept-drift.md). Page–Hinkley's threshold is in
    the loss's units, so it has no scale-free default; both are a setting away."""
    return ("adwin",) if task in ("binary", "multiclass", "regression") else ()


@dataclass(frozen=True)
class ConceptDriftSettings:
    """``detectors`` None means the task's defaults (:func:`default_detectors`)."""

    enabled: bool = True
    label_delay: int = DEFAULT_LABEL_DELAY
    detectors: dict[str, dict[str, Any]] | None = field(default=None)

    @classmethod
    def parse(cls, doc: Any, task: str | None = None) -> ConceptDriftSettings:
        """Validate a settings document; errors name the field, e.g. ``detectors.adwin.delta``.

        ``detectors`` is a list of names (engine defaults) or a mapping of name to
        parameters. ``task`` (when known) refuses DDM on a regressor's loss stream.
        """
        if not isinstance(doc, Mapping):
            raise ParameterError("concept drift settings: expected a JSON object with "
                                 f"{', '.join(_KEYS)}.", "body")
        unknown = sorted(set(doc) - set(_KEYS))  # null or not: an unknown key is a mistake
        doc = {k: v for k, v in doc.items() if v is not None}  # null: the default
        if unknown:
            raise ParameterError(f"{unknown[0]}: unknown setting; use {', '.join(_KEYS)}.",
                                 unknown[0])
        enabled = doc.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ParameterError(f"enabled: expected true or false; got {enabled!r}.",
                                 "enabled")
        delay = doc.get("label_delay", DEFAULT_LABEL_DELAY)
        if not isinstance(delay, int | str) or isinstance(delay, bool) or (
                isinstance(delay, int) and not 0 <= delay <= MAX_INT_PARAM):
            raise ParameterError(f"label_delay: expected seconds in [0, {MAX_INT_PARAM}] or a "
                                 f"duration like '30m'; got {delay!r}.", "label_delay")
        zero = delay == 0 or (isinstance(delay, str) and _ZERO.fullmatch(delay))
        delay = 0 if zero else parse_duration(delay, "label_delay")
        if delay > MAX_INT_PARAM:
            raise ParameterError(f"label_delay: at most {MAX_INT_PARAM} seconds; got {delay}.",
                                 "label_delay")
        raw = doc.get("detectors")
        detectors = None if raw is None else _detectors(raw, task)
        return cls(enabled=enabled, label_delay=delay, detectors=detectors)

    def resolved(self, task: str | None) -> dict[str, dict[str, Any]]:
        """Every detector this model runs, with every parameter (engine defaults filled)."""
        chosen = self.detectors if self.detectors is not None else {
            name: {} for name in default_detectors(task)}
        return {name: dict(make_detector(name, **params).params)
                for name, params in sorted(chosen.items())}

    def to_dict(self, task: str | None) -> dict[str, Any]:
        return {"enabled": self.enabled, "label_delay": self.label_delay,
                "detectors": self.resolved(task),
                "defaults": self.detectors is None}

    def stored(self) -> dict[str, Any]:
        """What is kept in the database (only what the user set)."""
        return {"enabled": self.enabled, "label_delay": self.label_delay,
                "detectors": self.detectors}


def _detectors(raw: Any, task: str | None) -> dict[str, dict[str, Any]]:
    valid = ", ".join(sorted(DETECTORS))
    if isinstance(raw, list):
        raw = {name: {} for name in raw} if all(isinstance(n, str) for n in raw) else None
    if not isinstance(raw, Mapping):
        raise ParameterError("detectors: expected a list of names or an object of name to "
                             f"parameters, with names among {valid}.", "detectors")
    out: dict[str, dict[str, Any]] = {}
    for name, params in raw.items():
        where = f"detectors.{name}"
        if name not in DETECTORS:
            raise ParameterError(f"{where}: unknown detector; choose from {valid}.", where)
        if params is None:
            params = {}
        elif isinstance(params, Mapping):
            params = {k: v for k, v in params.items() if v is not None}  # null: the default
        if not isinstance(params, Mapping):
            raise ParameterError(f"{where}: expected an object of parameters; got {params!r}.",
                                 where)
        allowed = DETECTORS[name]._param_names
        for key, value in params.items():
            if key not in allowed:
                raise ParameterError(f"{where}.{key}: unknown parameter; {name} takes "
                                     f"{', '.join(allowed)}.", f"{where}.{key}")
            if isinstance(value, int) and not isinstance(value, bool) \
                    and abs(value) > MAX_INT_PARAM:
                raise ParameterError(f"{where}.{key}: at most {MAX_INT_PARAM}; got {value}.",
                                     f"{where}.{key}")
        try:
            make_detector(name, **params)
        except ParameterError as exc:
            bad = next((k for k in params if f"'{k}' parameter" in str(exc)), None)
            at = f"{where}.{bad}" if bad else where
            raise ParameterError(f"{at}: {exc}", at) from None
        if name == "ddm" and task == "regression":
            raise ParameterError(f"{where}: DDM needs a 0/1 error stream, and this regression "
                                 "model streams absolute errors; use adwin or page_hinkley.",
                                 where)
        out[name] = dict(params)
    return out
