"""Request bodies as the OpenAPI document states them, built from the models and checks the
server validates with, so the document says exactly what is accepted.

The server parses these bodies with its own code (:class:`~aiwarden.alerting.rules.Rule`,
:class:`~aiwarden.incidents.rollback.RollbackPolicy`, ``TrafficPolicy.from_dict``, the
receivers' constructors), whose messages name the field. The schemas here are derived from
those models (their fields, enums and bounds) and add what their validators check in code:
a rule's stats per metric kind, the fields each kind takes, a receiver's fields per type,
the fields each traffic mode needs. What no JSON Schema can state (a critical threshold at
least as severe as the warning one, a route naming a defined receiver) is said in the
descriptions and tested as refused.
"""

from __future__ import annotations

import inspect
from copy import copy
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, WithJsonSchema, create_model

from aiwarden.alerting.routing import _NAME as _LABEL
from aiwarden.alerting.routing import GROUP_BY_ALL
from aiwarden.alerting.rules import _RESOURCE_STAT, METRIC_STATS, Rule
from aiwarden.engine.detectors import DETECTORS
from aiwarden.errors import ParameterError
from aiwarden.gateway.guardrail_policy import (
    ACTIONS,
    DEFAULT_FALLBACK,
    DEFAULT_MAX_MESSAGE_CHARS,
    HOLD_CHARS,
    MESSAGE_CHARS,
    ON_ERROR,
)
from aiwarden.incidents.canary import CanaryCompare
from aiwarden.incidents.rollback import RollbackPolicy
from aiwarden.monitoring.windows import _UNITS, MAX_DURATION

__all__ = [
    "ALIAS_PATTERN",
    "BOUNDED_DURATION",
    "EMPTY_VALUES",
    "HOLD_PATTERN",
    "MATCHER_TEXT",
    "NAME_PATTERN",
    "PRICE_TABLE",
    "RECEIVER_BODY",
    "RULE_BODY",
    "RULE_IN_FILE",
    "RULE_NAME_PATTERN",
    "SPAN_PATTERN",
    "TRAFFIC_BODY",
    "GuardrailSpec",
    "GuardrailUpstream",
    "PriceSpec",
    "RollbackPolicyBody",
    "RollbackPolicyInFile",
    "duration_pattern",
    "int_pattern",
    "notification_body",
    "notification_schemas",
    "receiver_schemas",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$"  # model and version names
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,99}$"
RULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"


def int_pattern(lo: int, hi: int) -> str:
    """A regex (alternatives, no anchors) of the decimal integers lo..hi written without
    leading zeros: what lets a pattern state a bound exactly."""
    out, full = [], []  # full: digit counts covered whole, written as one [1-9][0-9]{a,b}
    for width in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (width - 1) if width > 1 else 0), min(hi, 10 ** width - 1)
        if a == (10 ** (width - 1) if width > 1 else 1) and b == 10 ** width - 1:
            full.append(width)
        elif a <= b:
            out += _digits(str(a), str(b))
    if full:  # consecutive widths: those of lo's end are short, hi's long
        few, many = full[0] - 1, full[-1] - 1
        out.insert(0 if lo > 0 else 1, "[1-9]" + (
            "" if many == 0 else "[0-9]" + (f"{{{few},{many}}}" if few != many else
                                            f"{{{many}}}" if many > 1 else "")))
    return "|".join(out)


def _digits(lo: str, hi: str) -> list[str]:
    """Alternatives for lo..hi of one width, by their first differing digit."""
    if lo == hi:
        return [lo]
    if lo[0] == hi[0]:
        return [lo[0] + r for r in _digits(lo[1:], hi[1:])]
    n = len(lo) - 1
    tail = "" if n == 0 else "[0-9]" + (f"{{{n}}}" if n > 1 else "")
    first, last, out = int(lo[0]), int(hi[0]), []
    if lo[1:] != "0" * n:
        out += [lo[0] + r for r in _digits(lo[1:], "9" * n)]
        first += 1
    if hi[1:] != "9" * n:
        last -= 1
    if first <= last:
        out.append((str(first) if first == last else f"[{first}-{last}]") + tail)
    if hi[1:] != "9" * n:
        out += [hi[0] + r for r in _digits("0" * n, hi[1:])]
    return out


def duration_pattern(lo: int, hi: int, *, bare_seconds: bool = True) -> str:
    """A regex (no anchors) of the durations parse_duration reads as lo..hi seconds, in
    every unit exactly (``1..3650d`` for 1 s .. 10 years); plain seconds without their
    ``s`` when ``bare_seconds`` (an instant's ``-5m`` needs the unit). No leading zero."""
    out = []
    for unit, size in _UNITS.items():
        least, most = -(-lo // size), hi // size
        if least <= most:
            out.append(f"({int_pattern(least, most)}){unit}"
                       f"{'?' if unit == 's' and bare_seconds else ''}")
    return "|".join(out)


# A duration parse_duration reads, 1 s to MAX_DURATION (10 years) in any unit: 315360000s,
# 5256000m, 87600h, 3650d, 521w at most.
BOUNDED_DURATION = duration_pattern(1, MAX_DURATION)
SPAN_PATTERN = rf"^({BOUNDED_DURATION})$"  # a window: positive
HOLD_PATTERN = rf"^(0[smhdw]?|{BOUNDED_DURATION})$"  # for, keep_firing_for: 0 fires at once
_TARGET = rf"^(@{ALIAS_PATTERN[1:-1]}|{NAME_PATTERN[1:-1]})$"  # a version, or @alias
_IGNORED = "ignored: the path names it"


def _one_type(schema: Any) -> Any:
    """``{"type": [a, b], ...}`` as ``anyOf`` of one type each, recursively: some client
    generators (openapi-python-client) cannot read a list of types inside a union."""
    if isinstance(schema, list):
        return [_one_type(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _one_type(v) for k, v in schema.items()}
    types = out.get("type")
    if isinstance(types, list):
        rest = {k: v for k, v in out.items() if k not in ("type", "description", "default")}
        keep = {k: out[k] for k in ("description", "default") if k in out}
        return {**keep, "anyOf": [{**rest, "type": t} if t != "null" else {"type": "null"}
                                  for t in types]}
    return out


def _field(model: type[BaseModel], name: str, **change: Any) -> tuple[Any, Any]:
    """``model``'s field ``name`` for ``create_model``, its bounds kept, ``change`` applied
    to its default or description."""
    info = copy(model.model_fields[name])
    for key, value in change.items():
        setattr(info, key, value)
    return info.annotation, info


def _duration(pattern: str, default: str, description: str) -> tuple[Any, Any]:
    return Annotated[str, Field(pattern=pattern)], Field(default, description=description)


def _strict(title: str, extra: dict[str, Any] | None = None) -> ConfigDict:
    return ConfigDict(extra="forbid", title=title, json_schema_extra=extra,
                      populate_by_name=True)


# ---------------------------------------------------------------------- alert rules
_COMMON = ("op", "warning", "critical", "hysteresis", "min_rows", "no_data", "on_error",
           "severity", "labels", "annotations", "runbook", "enabled")


def _takes(metric: str, **fields: Any) -> bool:
    """Whether :class:`Rule` accepts a rule of ``metric`` with ``fields``: which fields a
    metric kind takes is asked of the validator itself, so a new metric or check cannot
    leave the document behind."""
    spec = {"name": "probe", "metric": metric, "critical": 1.0, **fields}
    if metric == "resources" and "stat" not in fields:
        spec["stat"] = METRIC_STATS[metric][0]
    try:
        Rule.model_validate(spec)
    except (ValueError, ParameterError):
        return False
    return True


_THRESHOLD = {"anyOf": [{"required": [t], "properties": {t: {"type": "number"}}}
                        for t in ("warning", "critical")]}
_ONE_SEGMENT_WAY = {"not": {"required": ["segment", "segment_by"], "properties": {
    "segment": {"type": "object"}, "segment_by": {"type": "string"}}}}
_SEGMENT = Annotated[dict[str, Any], WithJsonSchema(_one_type({
    "type": "object", "minProperties": 1, "maxProperties": 1,
    "propertyNames": {"minLength": 1},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
    "description": "one segment: {column: value}, e.g. {country: BR}"}))]
_NONE: Any = Annotated[None, Field(description="not taken by this metric")]


def _rule(metric: str, *, in_file: bool) -> type[BaseModel]:
    """The rule body of one metric kind: its stats, and the fields this kind takes."""
    stats: Any = Literal[METRIC_STATS[metric]]  # type: ignore[valid-type]
    fields: dict[str, Any] = {name: _field(Rule, name) for name in _COMMON}
    fields["metric"] = (Literal[metric], ...)  # type: ignore[valid-type]
    if not _takes(metric, stat=None):  # resources: a gauge's mean, max or sum, or a listed stat
        gauge = Annotated[str, Field(pattern=f"^{_RESOURCE_STAT.pattern}$")]
        fields["stat"] = (stats | gauge, Field(description=f"required for {metric}"))
    else:
        first = METRIC_STATS[metric][0] if metric != "drift" else \
            "severity with a column, else share_drifted"
        fields["stat"] = (stats | None, Field(None, description=f"default: {first}"))
    detectors = tuple(d for d in sorted(DETECTORS) if _takes(metric, method=d))
    if _takes(metric, column="c", method="m"):  # drift: a column, the method that decides
        fields["column"] = (str | None, None)
        fields["method"] = (str | None, None)
    elif detectors:  # concept_drift: one detector's change points
        fields["column"] = (Literal[""] | None, None)
        fields["method"] = (Literal[detectors] | None,  # type: ignore[valid-type]
                            Field(None, description="count one detector's change points"))
    else:
        fields["column"] = fields["method"] = (Literal[""] | None, Field(
            None, description="drift metrics only"))
    pair = Annotated[str, Field(min_length=1, max_length=401, pattern=r"^(\*|.+->.+)$")]
    fields["pair"] = (pair | None, Field(None, description=(
        "true->predicted class, e.g. banana->cucumber; '*': one alert per pair; omit: the "
        "most confused pair"))
    ) if _takes(metric, pair="a->b") else (_NONE, None)
    fields["class_"] = (Annotated[str, Field(min_length=1, max_length=200)] | None, Field(
        None, alias="class", description="one class; omit: the worst class")
    ) if _takes(metric, class_="a") else (_NONE, Field(None, alias="class"))
    relative = Literal["reference", "previous"] if _takes(
        metric, relative_to="reference") else Literal["previous"]
    fields["relative_to"] = (relative | None, None)
    segments = _takes(metric, segment_by="c")
    if not segments:
        fields["segment"] = fields["segment_by"] = (_NONE, None)
    else:
        fields["segment"] = (_SEGMENT | None, None)
        fields["segment_by"] = (Annotated[str, Field(pattern=r"\S")] | None, Field(
            None, description="each segment of this column apart"))
    fields["min_gap"] = _field(Rule, "min_gap") if _takes(metric, min_gap=0.1) else (
        _NONE, None)
    fields["min_labels"] = _field(Rule, "min_labels") if _takes(metric, min_labels=1) else (
        _NONE, None)
    fields["window"] = _duration(SPAN_PATTERN, "1h", "the window each evaluation reads")
    fields["for_"] = (Annotated[str, Field(pattern=HOLD_PATTERN)],
                      Field("0s", alias="for", description="how long the breach lasts "
                            "before the rule fires"))
    fields["keep_firing_for"] = _duration(HOLD_PATTERN, "0s", "how long it keeps firing "
                                          "after the breach ends")
    if in_file:
        fields["name"] = (Annotated[str, Field(pattern=RULE_NAME_PATTERN)], ...)
        fields["model"] = _field(Rule, "model")
    else:
        fields["name"] = fields["model"] = (Any, Field(None, description=_IGNORED))
    checks = [_THRESHOLD]
    if segments:
        checks.append(_ONE_SEGMENT_WAY)
    need_column = [st for st in METRIC_STATS[metric] if not _takes(metric, stat=st)]
    if need_column:  # drift: severity and value are of one column
        checks.append({"anyOf": [
            {"required": ["column"], "properties": {"column": {"type": "string"}}},
            {"properties": {"stat": {"not": {"enum": need_column}}}}]})
    title = "".join(p.title() for p in metric.split("_")) + ("Rule" if in_file else "RuleBody")
    extra = {"allOf": checks, "description": (
        f"A {metric} rule (docs/alerting.md). A warning or a critical threshold; with both, "
        "critical must be at least as severe as warning for op (checked by the server).")}
    return create_model(title, __config__=_strict(title, extra), **fields)


def _rule_union(in_file: bool) -> Any:
    variants = tuple(_rule(m, in_file=in_file) for m in METRIC_STATS)
    return Annotated[Union[variants], Field(discriminator="metric")]  # type: ignore  # noqa: UP007


RULE_BODY = _rule_union(in_file=False)  # PUT /rules/{model}/{name}
RULE_IN_FILE = _rule_union(in_file=True)  # an item of a rule file's rules


# read as ``value or {}``: any empty value (null, false, 0, "", []) is none
EMPTY_VALUES = [{"type": "null"}, {"const": False}, {"const": 0},
                {"type": "string", "maxLength": 0}, {"type": "array", "maxItems": 0}]


# ---------------------------------------------------------------------- rollback policies
def _compare() -> type[BaseModel]:
    fields = {n: _field(CanaryCompare, n) for n in CanaryCompare.model_fields if n != "window"}
    fields["window"] = _duration(SPAN_PATTERN, "1h", "the window compared")
    return create_model("CanaryCompareBody", __config__=_strict("CanaryCompareBody"), **fields)


_COMPARE = _compare()


def _rollback(*, in_file: bool) -> type[BaseModel]:
    """The policy of ``PUT .../rollback-policy`` (the path names the model) or of a rule
    file's ``rollback_policies`` (each names its model), from :class:`RollbackPolicy`."""
    fields = {n: _field(RollbackPolicy, n) for n in RollbackPolicy.model_fields
              if n not in ("model", "lookback", "verify_for", "compare")}
    fields["compare"] = (_COMPARE | None, Field(None, description="also stop a canary "
                                                "that is measurably worse"))
    fields["lookback"] = _duration(SPAN_PATTERN, "1h", "only a version the alias moved to "
                                   "this recently is blamed")
    fields["verify_for"] = _duration(SPAN_PATTERN, "15m", "how long after the rollback the "
                                     "metric is checked again")
    fields["model"] = _field(RollbackPolicy, "model") if in_file else (
        Any, Field(None, description=_IGNORED))
    title = "RollbackPolicyInFile" if in_file else "RollbackPolicyBody"
    return create_model(title, __config__=_strict(title), **fields)


RollbackPolicyBody = _rollback(in_file=False)
RollbackPolicyInFile = _rollback(in_file=True)


# ---------------------------------------------------------------------- LLM prices
class PriceSpec(BaseModel):
    """One price as ``aiwarden.llm.prices.parse_prices`` checks it."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0, description="USD per 1,000 input tokens")
    output: float = Field(ge=0, description="USD per 1,000 output tokens")


# what parse_prices accepts as a key: not blank, no leading or trailing '/'
_PRICE_KEY = {"maxLength": 200, "pattern": r"^([^/][\s\S]*)?[^/\s\x1c-\x1f\x85]$"}
# PUT /llm/prices' prices and a rule file's llm_prices
PRICE_TABLE = Annotated[dict[str, PriceSpec], Field(
    max_length=10_000, json_schema_extra={"propertyNames": _PRICE_KEY},
    description="provider/model (or model) -> {input, output} in USD per 1,000 tokens")]


# ---------------------------------------------------------------------- guardrails
class GuardrailUpstream(BaseModel):
    """Where the guardrail forwards: a key is named (environment or file), never sent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "not": {"required": ["api_key_env", "api_key_file"], "properties": {
            "api_key_env": {"type": "string"}, "api_key_file": {"type": "string"}}},
        "description": "api_key_env or api_key_file, not both; the server also checks the "
                       "URL against the egress policy, the variable's name against "
                       "AIWARDEN_UPSTREAM_* (and AIWARDEN_GUARDRAIL_KEY_ENVS) and the file "
                       "against the secrets folder"})
    base_url: str = Field(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/@?#]+(/[^?#]*)?$",
                          description="the upstream's OpenAI-compatible base URL; no user, "
                                      "password, query or fragment")
    api_key_env: str | None = Field(None, min_length=1)
    api_key_file: str | None = Field(None, min_length=1)
    timeout: float = Field(60.0, gt=0, le=600)


# block, redact, flag: read as ``value or []``, so any empty value is none
_CATEGORIES = Annotated[Any, WithJsonSchema({"anyOf": [
    {"type": "array", "items": {"type": "string"}}, *EMPTY_VALUES,
    {"type": "object", "maxProperties": 0}], "description": "category or group names "
    "(docs/guardrails.md): each needs an evaluator this server has; one action a category; "
    "only pii and secrets values can be redacted (checked by the server)"})]


def _guardrail() -> type[BaseModel]:
    """A model's guardrail policy as ``GuardrailPolicy.from_dict`` checks it
    (docs/guardrails.md): ``PUT /models/{name}/guardrail`` and a rule file's
    ``guardrails``."""
    fields: dict[str, Any] = {
        "upstream": (GuardrailUpstream, ...),
        **{action: (_CATEGORIES, None) for action in ACTIONS},
        "fallback": (Annotated[str, Field(pattern=r"[^\s\x1c-\x1f\x85]")], Field(
            DEFAULT_FALLBACK, description="what the client gets instead of a blocked "
                                          "answer")),
        "version": (Annotated[str, Field(min_length=1)] | None, Field(
            None, description="the version events are logged under")),
        "provider": (Annotated[str, Field(min_length=1)], "openai"),
        "max_hold_chars": (int, Field(400, ge=HOLD_CHARS[0], le=HOLD_CHARS[1])),
        "on_error": (Literal[ON_ERROR], "block"),  # type: ignore[valid-type]
        "max_message_chars": (int, Field(DEFAULT_MAX_MESSAGE_CHARS, ge=MESSAGE_CHARS[0],
                                         le=MESSAGE_CHARS[1])),
    }
    return create_model("GuardrailSpec", __config__=_strict("GuardrailSpec", {
        "description": "A model's guardrail policy (docs/guardrails.md)."}), **fields)


GuardrailSpec = _guardrail()


# ---------------------------------------------------------------------- traffic policies
_Target = Annotated[str, Field(pattern=_TARGET, description="a version, or @alias")]
_Percent = Annotated[StrictFloat, Field(ge=0, le=100)]
_Weights = Annotated[dict[str, float], WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": _TARGET},
    "additionalProperties": {"type": "number", "minimum": 0},
    "not": {"additionalProperties": {"type": "number", "maximum": 0}},
    "description": "{target: weight}: weights >= 0, at least one > 0"})]
_AnyWeights = Annotated[dict[str, float], WithJsonSchema({
    "type": "object", "additionalProperties": {"type": "number"},
    "description": "not used by this mode"})]


def _traffic(mode: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "mode": (Literal[mode], Field("off") if mode == "off" else ...),  # type: ignore
        "alias": (Annotated[str, Field(pattern=ALIAS_PATTERN)] | None, Field(
            None, description="the served alias the policy applies to (champion)")),
        "sticky_key": (Annotated[str, Field(min_length=1, pattern=r"\S")] | None, Field(
            None, description="a feature or tag whose value decides the arm")),
        "reason": (str | None, None),
        "challenger": (_Target, ...) if mode in ("canary", "shadow") else (
            str | None, Field(None, description="not used by this mode")),
        "percent": (_Percent, ...) if mode == "canary" else (_Percent | None, None),
        "weights": (_Weights, ...) if mode == "ab" else (_AnyWeights | None, None),
    }
    title = f"Traffic{mode.title()}"
    return create_model(title, __config__=_strict(title), **fields)


# mode is optional (off), so the variants are told apart by it without a discriminator
TRAFFIC_BODY = Annotated[Union[tuple(_traffic(m) for m in ("off", "canary", "shadow", "ab"))],  # noqa: UP007
                         Field(description="A traffic policy; mode off when omitted.")]


# ---------------------------------------------------------------------- receivers
_NON_EMPTY = {"type": "string", "pattern": r"\S"}
_URL = {"type": "string", "pattern": r"^[hH][tT][tT][pP][sS]?://[^\s/?#@]+([/?#][^\s]*)?$",
        "description": "an http(s) URL; its address must be allowed by the egress policy"}
# a secret named instead of written: ${env:NAME} or ${file:PATH} in a string, or a whole
# value {env: NAME} / {file: PATH} (alerting/notifiers/secrets.py); resolved by the server
_SECRET_REF: list[dict[str, Any]] = [
    {"type": "string", "pattern": r"\$\{(env|file):[^}]*\}",
     "description": "with ${env:NAME} or ${file:PATH} references"},
    *({"type": "object", "required": [k], "properties": {k: {"type": "string"}},
       "additionalProperties": False} for k in ("env", "file"))]
_BY_PARAM: dict[str, dict[str, Any]] = {
    "name": _NON_EMPTY, "url": _URL,
    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
    "send_resolved": {"type": "boolean"},
    "headers": {"type": ["object", "null"], "additionalProperties": {
        "anyOf": [{"type": "string"}, *_SECRET_REF[1:]]}},
    "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
    "security": {"type": "string", "enum": ["starttls", "ssl", "none"]},
    "subject_prefix": {"type": "string"},
    "sender": {"type": "string", "pattern": "^[^\r\n,]*@[^\r\n,]*$"},
    "to": {"anyOf": [{"type": "string", "pattern": "^[^\r\n,]*@[^\r\n,]*$"},
                     {"type": "array", "minItems": 1,
                      "items": {"type": "string", "pattern": "^[^\r\n,]*@[^\r\n,]*$"}}]},
}

_SET = {"not": {"type": "null"}}
_EMAIL = [  # username and password together; a password never in clear
    {"anyOf": [{"properties": {"username": {"type": "null"}, "password": {"type": "null"}}},
               {"required": ["username", "password"],
                "properties": {"username": _SET, "password": _SET}}]},
    {"not": {"required": ["password", "security"],
             "properties": {"password": _SET, "security": {"const": "none"}}}}]


def receiver_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per receiver type, from the receiver class's constructor: its
    parameters are the config's fields (``from`` for the sender), those without a default
    are required, and no other field is taken."""
    from aiwarden.alerting.notifiers.base import _REGISTRY

    out = {}
    for kind, cls in sorted(_REGISTRY.items()):
        params = inspect.signature(cls.__init__).parameters
        key = {v: k for k, v in cls.config_aliases.items()}
        props: dict[str, Any] = {"type": {"const": kind}}
        required = ["type"]
        for p, spec in params.items():
            if p in cls._not_config or spec.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            optional = spec.default is not inspect.Parameter.empty
            schema = dict(_BY_PARAM.get(p) or _NON_EMPTY)
            if schema.get("type") == "string" or p == "to":  # may name a secret instead
                schema = {"anyOf": [schema, *_SECRET_REF]}
            if optional and spec.default is None and "type" in schema and \
                    isinstance(schema["type"], str):
                schema["type"] = [schema["type"], "null"]
            elif optional and spec.default is None and "anyOf" in schema:
                schema["anyOf"].append({"type": "null"})
            if optional and spec.default is not None:
                schema["default"] = spec.default
            props[key.get(p, p)] = schema
            if not optional:
                required.append(key.get(p, p))
        title = f"{kind.title().replace('duty', 'Duty')}Receiver"
        out[title] = {"title": title, "type": "object", "properties": props,
                      "required": required, "additionalProperties": False,
                      **({"allOf": _EMAIL} if kind == "email" else {}),
                      "description": f"A {kind} receiver (docs/alerting.md); string fields "
                                     "may be ${env:NAME} or ${file:PATH} references."}
    return _one_type(out)


RECEIVER_BODY = {"oneOf": [{"$ref": f"#/components/schemas/{t}"} for t in receiver_schemas()],
                 "discriminator": {"propertyName": "type", "mapping": {
                     s["properties"]["type"]["const"]: f"#/components/schemas/{t}"
                     for t, s in receiver_schemas().items()}}}


# ---------------------------------------------------------------------- routing
# matchers as text (routing.parse_matchers): braces optional, each NAME OP VALUE; what no
# pattern here says is that a quoted value is well quoted and a regex compiles
MATCHER_TEXT = rf"^\s*\{{?\s*{_LABEL.pattern}\s*(=~|!~|!=|=)"
_MATCHERS = {"anyOf": [
    {"type": "string", "pattern": MATCHER_TEXT,
     "description": 'matchers as text: a="b", c=~"d.*"'},
    {"type": "array", "items": {"anyOf": [
        {"type": "string", "pattern": MATCHER_TEXT},
        {"$ref": "#/components/schemas/Matcher"}]}},
    {"$ref": "#/components/schemas/MatcherMap"},
    {"type": "null"}],
    "description": "label matchers (regexes must compile)"}
_REGEXES = {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                      *EMPTY_VALUES], "description": "{label: regex}"}
_INTERVAL = {"anyOf": [{"type": "string", "pattern": SPAN_PATTERN},
                       {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
                       {"type": "null"}]}
_WAIT = {"anyOf": [{"type": "string", "pattern": HOLD_PATTERN},  # 0s: notify at once
                   {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                   {"type": "null"}]}
_UNSET = {"description": "must be unset on the root route, which takes every alert"}
_EMPTY = [{"type": "null"}, {"type": "array", "maxItems": 0, "items": {"type": "string"}},
          {"type": "object", "maxProperties": 0}, {"type": "string", "maxLength": 0}]


def notification_schemas() -> dict[str, dict[str, Any]]:
    """The routing tree, inhibit rules and escalation policies of a notification config,
    as the router (alerting/routing.py) and incidents (escalation) read them; and the
    receivers, one schema per type (:func:`receiver_schemas`)."""
    ref = "#/components/schemas/"
    route = {"title": "Route", "type": "object", "additionalProperties": False, "properties": {
        "receiver": {"type": "string", "pattern": r"\S",
                     "description": "a receiver defined under receivers, or none"},
        "matchers": _MATCHERS, "match": _MATCHERS, "match_re": _REGEXES,
        "group_by": {"anyOf": [
            {"type": "array", "items": {"type": "string", "pattern": f"^{_LABEL.pattern}$"}},
            {"type": "array", "items": {"const": GROUP_BY_ALL}, "minItems": 1, "maxItems": 1},
            {"type": "null"}], "description": "label names; ['...'] groups by every label"},
        "group_wait": _WAIT, "group_interval": _INTERVAL, "repeat_interval": _INTERVAL,
        "continue": {"type": "boolean"},
        "routes": {"type": ["array", "null"], "items": {"$ref": ref + "Route"}}}}
    root = {**route, "title": "RootRoute", "required": ["receiver"], "properties": {
        # empty matchers; "" is a matcher text with no matcher (refused) but no regexes
        **route["properties"], **{k: {**_UNSET, "anyOf": [
            e for e in _EMPTY if k == "match_re" or e.get("type") != "string"]}
            for k in ("matchers", "match", "match_re")},
        "continue": {**_UNSET, "type": "boolean", "const": False}}}
    sides = {f"{side}_{k}": (_REGEXES if k == "match_re" else _MATCHERS)
             for side in ("source", "target") for k in ("matchers", "match", "match_re")}
    some = {"not": {"anyOf": _EMPTY}}  # each side needs a matcher, under any of its keys
    inhibit = {"title": "InhibitRule", "type": "object", "additionalProperties": False,
               "properties": {**sides, "equal": {"anyOf": [  # read as value or []
                   {"type": "array", "items": {"type": "string", "minLength": 1}},
                   {"type": "object", "maxProperties": 0}, *EMPTY_VALUES]}},
               "allOf": [{"anyOf": [{"required": [f"{side}_{k}"],
                                     "properties": {f"{side}_{k}": some}}
                                    for k in ("matchers", "match", "match_re")]}
                         for side in ("source", "target")]}
    step = {"title": "EscalationStep", "type": "object", "additionalProperties": False,
            "required": ["wait_minutes", "receiver"], "properties": {
                "wait_minutes": {"type": "number", "minimum": 0},
                "receiver": {"type": "string", "minLength": 1,
                             "description": "a receiver defined under receivers"}}}
    policy = {"title": "EscalationPolicy", "type": "object", "required": ["steps"],
               "properties": {
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": ref + "EscalationStep"}},
        "repeat": {"type": "integer", "minimum": 0}}}
    matcher = {"title": "Matcher", "type": "object", "required": ["name", "value"],
               "properties": {"name": {"type": "string"}, "value": {"type": "string"},
                              "op": {"type": "string", "enum": ["=", "!=", "=~", "!~"]},
                              "isEqual": {"type": "boolean"}, "isRegex": {"type": "boolean"}}}
    matcher_map = {"title": "MatcherMap", "type": "object",
                   "description": "{label: value}: equality",
                   "additionalProperties": {"type": ["string", "number"]}}
    return _one_type({"Matcher": matcher, "MatcherMap": matcher_map, "Route": route,
                      "RootRoute": root, "InhibitRule": inhibit, "EscalationStep": step,
                      "EscalationPolicy": policy, **receiver_schemas()})


_NOTIFY_DESCRIPTION = (
    "The notification config: receivers, the routing tree, inhibit rules and escalation "
    "policies per model. The server also checks what no schema can say: every receiver a "
    "route or an escalation step names is defined, matcher regexes compile, receiver URLs "
    "pass the egress policy, secret references resolve, an email ca_file exists.")


def notification_body() -> dict[str, Any]:
    ref = "#/components/schemas/"
    return _one_type({"title": "NotificationConfig", "type": "object",
                      "additionalProperties": False, "minProperties": 1,
            "description": _NOTIFY_DESCRIPTION, "properties": {
                "route": {"anyOf": [{"$ref": ref + "RootRoute"}, {"type": "null"},
                                    {"type": "object", "maxProperties": 0}],
                          "description": "the routing tree (null or {}: every alert to "
                                         "the default receiver)"},
                "receivers": {"type": "array", "items": RECEIVER_BODY},
                "inhibit_rules": {"type": "array", "items": {"$ref": ref + "InhibitRule"}},
                "escalation_policies": {"type": "object", "additionalProperties": {
                    "$ref": ref + "EscalationPolicy"}}}})
