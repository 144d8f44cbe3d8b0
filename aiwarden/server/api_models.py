"""The API's answers as pydantic models: what the OpenAPI document promises, per route.

These models document; handlers still return plain dicts rendered by orjson, so a model
costs nothing per request. schemathesis (tests/server/test_schemathesis.py) checks that
the answers match them. Open-ended payloads (metric values, rule specs, receiver configs)
are ``extra="allow"`` with the fields every answer has typed.

``answers(Model, 404, 409)`` builds a route's ``responses=``; ``body_doc(...)`` its
``openapi_extra`` request body for handlers that read the raw body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictFloat,
    WithJsonSchema,
    model_validator,
)

from aiwarden._no_bool import NoBoolNumbers
from aiwarden.incidents.rollback import RollbackPolicy
from aiwarden.monitoring.windows import MAX_DURATION
from aiwarden.server.pipeline_schema import pipeline_body
from aiwarden.server.spec_models import (
    ALIAS_PATTERN,
    BOUNDED_DURATION,
    EMPTY_VALUES,
    MATCHER_TEXT,
    NAME_PATTERN,
    PRICE_TABLE,
    RULE_BODY,
    RULE_IN_FILE,
    TRAFFIC_BODY,
    GuardrailSpec,
    RollbackPolicyBody,
    RollbackPolicyInFile,
    duration_pattern,
    notification_body,
)

__all__ = [
    "ALIAS_PATTERN", "ARROW", "BODY_MODELS", "DURATION_PATTERN", "INSTANT_PATTERN",
    "NAME_PATTERN", "PARQUET", "SEGMENT_PATTERN", "Error", "ErrorDetail",
    "Open", "RollbackPolicy", "answers", "body_doc", "json_int",
    "json_integer",
]

# An instant as query parameters take it (monitoring.windows.parse_instant): now, a duration
# before now (-1h, now-30m: at most MAX_DURATION, 10 years, in every unit: now-3650d),
# epoch seconds (not negative: -1 is a typo of -1h), or ISO 8601 (days to 28 and years
# 1000-2999 here; the server reads every real date from year 940 to 3000, and a little
# whitespace).
INSTANT_PATTERN = (  # empty: the parameter's default
    rf"^(|now|(now)?-({duration_pattern(1, MAX_DURATION, bare_seconds=False)})"
    r"|[0-9]{1,10}(\.[0-9]+)?([eE]-[0-9]+)?"  # decimals, negative exponents: any (ST201)
    r"|[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?)$")
# 90, 5m, 1h, 7d, 2w, at most 10 years (MAX_DURATION); empty: the default
DURATION_PATTERN = rf"^({BOUNDED_DURATION})?$"
# a segment (monitoring.segments.parse): column:value or column=value, the first separator
# after a non-empty column name; empty: every row
SEGMENT_PATTERN = r"^([^:=]+[:=][\s\S]+)?$"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def json_integer(value: Any) -> Any:
    """A JSON integer (7 or 7.0, as JSON Schema reads it), never text or a boolean: a lax
    parse took "7" and false (schemathesis ST201), a strict one refused 7.0 (ST202)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(value)


def json_int(**bounds: int) -> Any:
    """An integer field with ``ge``/``le`` bounds that takes JSON integers only: the bounds
    come first, or the document loses them (pydantic then writes 'ge' instead of
    'minimum', and the fuzzer sends 0 to an id that must be >= 1)."""
    return Annotated[int, Field(**bounds), BeforeValidator(json_integer)]


class Open(BaseModel):
    """An object whose listed fields are typed and which may carry more."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Open):
    error: str = Field(description="machine-readable kind, e.g. not_found, invalid")
    message: str = Field(description="what is wrong and how to fix it")
    field: str | None = Field(description="the parameter, body field or header at fault")


class Error(BaseModel):
    """Every error answer: ``{"detail": {"error", "message", "field"}}``."""

    detail: ErrorDetail


# ------------------------------------------------------------------ request bodies
_Dtype = Literal["numerical", "categorical", "boolean", "datetime", "text", "identifier"]
_Role = Literal["feature", "prediction", "score", "target", "id", "timestamp", "segment"]
_Task = Literal["binary", "multiclass", "regression", "none"]


class ColumnSpec(BaseModel):
    # a segment column is categorical or boolean, its name at most 90 characters
    # (monitoring/segments.check_schema)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"properties": {"role": {"not": {"const": "segment"}}}},
        {"properties": {"dtype": {"enum": ["categorical", "boolean"]},
                        "name": {"maxLength": 90}}}]})

    name: str = Field(min_length=1, max_length=1000)
    dtype: _Dtype
    role: _Role = "feature"
    label: str | None = None


class SchemaSpec(NoBoolNumbers):
    """A version's schema as ``GET .../versions/{v}`` shows it (``format`` 1)."""

    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnSpec]
    task: _Task = "none"
    classes: list[str] = Field(default=[])
    # documented as an integer in [1, 1], not const 1: openapi-python-client 0.29 writes
    # `!= 1and` for an integer const, a SyntaxError in the generated client
    format: Annotated[Literal[1], WithJsonSchema({"type": "integer", "minimum": 1,
                                                 "maximum": 1})] = 1
    version: int = Field(default=1, ge=1, le=2**31 - 1)


# matchers as text, as routing.parse_matchers reads them (the pattern is the document's:
# the server's own message names what is wrong)
_MatcherText = Annotated[str, Field(json_schema_extra={"pattern": MATCHER_TEXT})]


class SilenceSpec(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid")

    # none would silence every alert: the server refuses it (a matcher must not match the
    # empty string) with that reason, so the bounds are the document's alone
    matchers: Annotated[_MatcherText, Field(min_length=1)] | Annotated[
        list[_MatcherText | dict[str, Any]], Field(json_schema_extra={"minItems": 1})] | Annotated[
        dict[str, Any], Field(json_schema_extra={"minProperties": 1})] = Field(
        description='e.g. ["model=fraud", "severity=~warn.*"] or {"model": "fraud"}')
    ends_at: str | float = Field(description="ISO 8601 or epoch seconds")
    starts_at: str | float | None = None
    comment: str = ""


class RuleSpec(Open):
    """One alert rule (docs/alerting.md); the model and name come from the path. The
    server checks it with :class:`~aiwarden.alerting.rules.Rule`; the document states it
    per metric kind (:data:`~aiwarden.server.spec_models.RULE_BODY`)."""


class NotificationConfig(BaseModel):
    """The whole notification config, replaced at once: an unknown top-level key is a 422
    naming it, and a body with none of the sections is refused, since either would store
    an empty config and silence paging (a typo, ``{"recievers": [...]}``, did: review of
    2026-12-06). Each section's inside is checked by the notification center."""

    model_config = ConfigDict(extra="forbid")

    route: dict[str, Any] | None = None
    receivers: list[dict[str, Any]] = []
    inhibit_rules: list[dict[str, Any]] = []
    escalation_policies: dict[str, Any] = {}

    @model_validator(mode="after")
    def _some_section(self) -> NotificationConfig:
        if not self.model_fields_set:
            raise ValueError(
                f"the config names none of {', '.join(type(self).model_fields)}: send the "
                "sections to store ({\"receivers\": []} clears the receivers)")
        return self


class TrafficSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "canary", "shadow", "ab"] = "off"
    alias: str | None = Field(default=None, pattern=ALIAS_PATTERN)
    challenger: str | None = None
    percent: StrictFloat | None = Field(default=None, ge=0, le=100)
    weights: dict[str, StrictFloat] | None = Field(default=None,
                                             description="{target: weight} for mode ab")
    sticky_key: str | None = Field(default=None, min_length=1, pattern=r"\S")
    reason: str | None = None


class RollbackPolicySpec(Open):
    """A rollback policy (docs/rollback.md); the model comes from the path. The server
    checks it with :class:`~aiwarden.incidents.rollback.RollbackPolicy`."""


class Rows(RootModel[list[Any] | dict[str, Any]]):
    """A row object, a list of them, or ``{"rows": [...]}`` (docs/api.md); a list item
    that is not a row object is quarantined with its reason, not refused."""


class ReferenceRows(RootModel[list[Any] | dict[str, Any]]):
    """A reference table as JSON: row objects, one object of columns, or one row; it needs
    a column and a row (documented by :data:`REFERENCE_ROWS`)."""


# what tabular_io.read_table makes a table of: a list of row objects, at least one with a
# field; or one object, of columns (every value a list) or a row; values are scalars (the
# monitor refuses a column of nested values)
_SCALAR = {"anyOf": [{"type": t} for t in ("string", "number", "boolean", "null")]}
REFERENCE_ROWS = {
    "title": "ReferenceRows",
    "description": "A reference table: a list of row objects (at least one with a field), "
                   "an object of columns ({column: [values]}, all of one length: checked by "
                   "the server), or one row object. Values are scalars.",
    "anyOf": [
        {"type": "array", "minItems": 1,
         "items": {"type": "object", "additionalProperties": _SCALAR},
         "contains": {"type": "object", "minProperties": 1}},
        {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "array", "minItems": 1, "items": _SCALAR}},
        {"type": "object", "minProperties": 1, "additionalProperties": _SCALAR}]}


class SampleList(BaseModel):
    samples: list[Any]


class Samples(RootModel[list[Any] | SampleList]):
    """Resource samples: a list, or ``{"samples": [...]}``; an item that is not a sample
    object is counted as rejected with its reason."""


class RuleFile(Open):
    """A rule file (YAML or JSON): ``rules``, optionally ``route``, ``receivers``,
    ``inhibit_rules``, ``escalation_policies``, ``rollback_policies``."""

    rules: list[dict[str, Any]] = []


class RuleFileDoc(BaseModel):
    """A rule file (YAML or JSON): ``rules``; optionally the notification config's
    sections (``route``, ``receivers``, ``inhibit_rules``, ``escalation_policies``),
    ``rollback_policies``, ``llm_prices``, ``guardrails`` and ``pipelines``; no other
    section. Rule names are unique per model; guardrails and pipelines name registered
    models, one pipeline a model."""

    model_config = ConfigDict(title="RuleFile", extra="forbid")

    rules: list[RULE_IN_FILE] = []  # type: ignore[valid-type]
    # each section as its own route states it (the model named in the item or the key)
    rollback_policies: list[RollbackPolicyInFile] | None = Field(  # type: ignore[valid-type]
        None, description="rollback policies, each naming its model (docs/rollback.md)")
    llm_prices: PRICE_TABLE | None = Field(None, description="the server's price overrides "
                                           "(docs/llm.md), as PUT /llm/prices' prices")
    guardrails: dict[str, GuardrailSpec] | None = Field(  # type: ignore[valid-type]
        None, description="model name -> guardrail policy (docs/guardrails.md)")
    pipelines: list[dict[str, Any]] | None = Field(  # items: PipelineInFile
        None, description="training pipelines, each naming its model (docs/training.md)")


def rule_file_doc() -> dict[str, Any]:
    """:class:`RuleFileDoc` with the notification config's sections as that body states
    them (the apply route takes them out before the rules)."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(RuleFileDoc).json_schema(ref_template="#/components/schemas/{model}")
    # the apply route reads each notification section as ``value or default``
    schema["properties"] |= {k: {"anyOf": [v, *EMPTY_VALUES]}
                             for k, v in notification_body()["properties"].items()}
    schema["properties"]["pipelines"]["anyOf"][0]["items"] = {
        "$ref": "#/components/schemas/PipelineInFile"}
    schema.setdefault("$defs", {})["PipelineInFile"] = pipeline_body(in_file=True)
    return schema


class PredictRequest(Open):
    features: dict[str, Any] | None = None
    prediction_id: str | None = None
    tags: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------ answers
class Status(Open):
    status: str


class Model(Open):
    name: str
    task: str | None
    description: str | None
    created_at: float


class Version(Open):
    version: str
    created_at: float
    has_reference: bool
    reference_rows: int | None
    fingerprint: str | None
    schema_: dict[str, Any] | None = Field(alias="schema")


class ModelDetail(Model):
    versions: list[Version]
    predictions: int
    labels_pending: int
    quarantined: int


class Reference(Open):
    version: str
    rows: int
    columns: int
    fingerprint: str
    schema_: dict[str, Any] = Field(alias="schema")


class Ingested(Open):
    received: int
    accepted: int
    duplicates: int
    quarantined: int
    labels_joined: int
    errors: list[dict[str, Any]]
    ignored_columns: list[str] = Field(
        default=[], description="columns of the body no schema column takes (not stored)")
    schema_from: dict[str, str] = Field(
        default={}, description="{version written: version whose schema typed its rows}, "
        "for versions without a reference of their own")


class LabelsIngested(Open):
    received: int
    joined: int
    pending: int
    duplicates: int
    rejected: int
    errors: list[dict[str, Any]]
    ignored_columns: list[str] = Field(
        default=[], description="keys or columns of the body a label does not take (a label "
        "has no time of its own: it joins its prediction's)")


class ResourcesIngested(Open):
    received: int
    accepted: int
    rejected: int
    errors: list[dict[str, Any]]


class Point(Open):
    start: str
    end: str
    rows: int
    value: Any = Field(description="a number, an object (drift, quality) or null")


class Series(Open):
    model: str
    version: str
    metric: str
    start: str
    end: str
    step: float
    points: list[Point]


class Segments(Open):
    """A version's segment columns, each with the values it keeps, then ``__other__``."""

    model: str
    version: str
    top_n: int
    other: str
    columns: dict[str, list[str]]


class Comparison(Open):
    model: str
    version: str
    window: dict[str, Any]
    baseline: str | dict[str, Any]
    drift: Any
    quality: Any


class Quarantined(Open):
    id: int = Field(description="what replay, release and drop name it by")
    received_at: str | None
    timestamp: str | None
    prediction_id: str | None
    field: str | None
    reason: str | None
    payload: Any


class StoredRule(Open):
    model: str
    name: str
    source: str | None
    rule: dict[str, Any]
    updated_at: str | None


class RuleWritten(Open):
    status: str
    rule: dict[str, Any]


class Applied(Open):
    dry_run: bool
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]
    diff: list[dict[str, Any]] = Field(description="per rule, receiver, route, inhibit rules "
                                       "and escalation policies changed: {kind, name, action, "
                                       "fields: [{field, current, desired}]}; secrets as ***")
    notifications: list[str]
    rollback_policies: list[str]
    llm_prices: list[str] | None = Field(None, description="the price overrides the file "
                                         "set (None: the file has no llm_prices section)")
    guardrails: list[str] | None = Field(None, description="the models whose guardrail "
                                         "policy the file set (None: no guardrails section)")
    pipelines: list[str] = Field(default_factory=list, description="the models whose "
                                 "training pipeline the file declares")


class AlertInstance(Open):
    labels: dict[str, Any]
    state: dict[str, Any] = Field(description="phase, severity, since, value, error ...")
    rule: dict[str, Any] | None
    runbook: Any
    events: list[dict[str, Any]]


class Evaluation(Open):
    incidents: list[int]
    evaluated: bool = Field(description="whether this process held the evaluator lease")
    instances: int
    errors: Any
    seconds: float
    transitions: list[dict[str, Any]]


class Incident(Open):
    id: int
    model: str
    key: str
    title: str
    severity: str | None
    status: str
    assignee: str | None
    created_at: float
    acknowledged_at: float | None
    mitigated_at: float | None
    resolved_at: float | None
    declined_at: float | None
    held_open: bool
    runbooks: list[str]
    alerts: list[dict[str, Any]]
    comments: list[dict[str, Any]]


class IncidentDetail(Incident):
    timeline: list[dict[str, Any]]


class Postmortem(Open):
    incident_id: int
    text: str | None
    edited_by: str | None
    updated_at: float | None
    edited: bool


class Silence(Open):
    id: str
    matchers: list[dict[str, Any]]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str


class RegistryModel(Open):
    name: str
    versions: int
    latest: str
    aliases: dict[str, str]


class RegisteredVersion(Open):
    model: str
    version: str
    format: str
    sha256: str
    size: int
    registered_by: str
    created_at: float
    metadata: dict[str, Any]
    filename: str | None
    entry_point: str | None
    trusted_types: list[str] = Field(description="skops types trusted at registration")
    trusted_by: str | None = Field(description="who trusted the artifact's code, if anyone")
    aliases: list[str]
    reference: dict[str, Any] | None


class AliasEvent(Open):
    id: int
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    kind: str
    actor: str
    reason: str
    at: float


class AliasMoved(Open):
    model: str
    alias: str
    version: str
    changed: bool
    previous: str | None
    event: AliasEvent | None


class Rolled(Open):
    model: str
    alias: str
    from_version: str
    to_version: str
    rule: str | None = Field(description="the alert rule behind an automatic rollback")
    value: Any = Field(description="that rule's value when it fired")
    reason: str
    actor: str
    at: float
    verify_at: float


class RcaSlice(Open):
    """A failing slice (every field of ``aiwarden.engine.slices.Slice.to_dict``)."""

    description: str = Field(description="e.g. amount < 10")
    conditions: list[list[Any]] = Field(description="[feature, op, value] each")
    support: int = Field(description="the slice's labelled rows in the window")
    support_share: float
    metric_value: float = Field(description="the metric in the slice")
    rest_value: float = Field(description="the metric on the other rows")
    overall_value: float
    difference: float
    lift: float | None = Field(description="null when the overall metric is not positive")
    excess: float = Field(description="support x difference")
    marginal_excess: float = Field(description="the excess on rows no earlier slice covers")
    p_value: float
    adjusted_p_value: float
    ci_low: float | None
    ci_high: float | None
    example_ids: list[str] | None = Field(
        default=None, description="at most 5 prediction ids of the slice's rows in the window, "
        "a seeded sample preferring wrong predictions (a regressor's: absolute error above "
        "the rest's mean): ids for POST /models/{name}/explain and the dashboard's "
        "prediction pages (absent for an LLM's slices, whose suspects name request ids)")


class RcaSlices(Open):
    labelled_rows: int
    metric: str = Field(description="error_rate, abs_error or unsafe_rate")
    slices: list[RcaSlice]


class RcaReport(Open):
    model: str
    version: str
    window: dict[str, Any]
    suspects: list[dict[str, Any]]
    drift: dict[str, Any] | None = Field(default=None, description="absent without a "
                                         "reference or rows in the window, as the next three")
    quality: dict[str, Any] | None = None
    slices: RcaSlices | None = None
    prediction: dict[str, Any] | None = None
    segments: dict[str, Any] | None = Field(
        default=None, description="per segment column, where performance fell (absent as "
        "drift)")
    changes: list[dict[str, Any]]
    seconds: float


class ResponseTimes(Open):
    """MTTA and MTTR of the model's incidents in the window (seconds, or null)."""


class NotificationSettings(Open):
    route: dict[str, Any] | None
    inhibit_rules: list[Any]
    escalation_policies: dict[str, Any]
    receivers: list[dict[str, Any]]


class Attempt(Open):
    """One delivery attempt: receiver, ok, status, error (no secrets, no remote body)."""


class Queued(Open):
    """A message still owed, with its tries so far and next attempt."""


class VersionComparison(Open):
    """Two versions on one window: volumes, failures, latency, performance, rate tests."""


class PendingRollback(Open):
    """A rollback waiting for its verification."""


class Prediction(Open):
    prediction_id: str
    prediction: Any
    version: str
    scores: dict[str, Any] | None = Field(default=None, description="absent when the model "
                                          "gives no scores")
    duplicate: bool | None = Field(default=None, description="true when the prediction_id was "
                                   "served before with the same features (a retry): "
                                   "monitoring keeps the first event")


class Predictions(Open):
    predictions: list[Prediction]


class Traffic(Open):
    model: str
    mode: Literal["off", "canary", "shadow", "ab"]
    revision: int
    updated_at: float | None
    updated_by: str | None
    reason: str | None
    alias: str | None = None
    challenger: str | None = None
    percent: float | None = None
    weights: dict[str, float] | None = None
    sticky_key: str | None = None


class GatewayStats(Open):
    model: str
    gateways: list[dict[str, Any]]


class GatewayState(Open):
    stamp: list[Any]
    aliases: dict[str, str] | None = Field(default=None, description="absent when the "
                                           "caller's stamp is current")
    policy: dict[str, Any] | None = None


class Reloaded(Open):
    model: str
    reloaded: Any


class Flushed(Open):
    model: str
    flushed: Any
    gateways: list[dict[str, Any]]


class Ready(Open):
    status: str
    database: str | None = None
    reason: str | None = None


# bodies a handler reads loosely and checks in code, documented exactly (spec_models)
_DOCUMENTED_AS: dict[type[BaseModel], Any] = {
    RuleSpec: RULE_BODY, RuleFile: rule_file_doc(), TrafficSpec: TRAFFIC_BODY,
    RollbackPolicySpec: RollbackPolicyBody, ReferenceRows: REFERENCE_ROWS,
    NotificationConfig: notification_body()}


# ------------------------------------------------------------------ route helpers
_BINARY = {"schema": {"type": "string", "format": "binary"}}
# tables (tabular_io.read_table): an empty body is refused ("The body is empty")
_TABLES = {PARQUET, ARROW, "text/csv"}
# named by body_doc; docs.py adds their schemas: a model, a type or a JSON Schema
BODY_MODELS: dict[str, Any] = {}


def answers(model: Any = None, *errors: int, status: int = 200,
            media: str | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the success answer (a model, or ``media`` bytes) and the
    error statuses particular to it. Statuses every route shares (401, 403, 413, 422,
    429 ...) are added to the whole document by :mod:`aiwarden.server.docs`."""
    out: dict[int | str, dict[str, Any]] = {}
    if media is not None:
        out[status] = {"content": {media: {"schema": {"type": "string"}}
                                   if media.startswith("text/") else _BINARY}}
    elif model is not None:
        out[status] = {"model": model}
    for code in errors:
        out[code] = {"model": Error}
    return out


def body_doc(*media: str, json: type[BaseModel] | None = None, required: bool = True,
             multipart: bool = False, schema: Any = None) -> dict[str, Any]:
    """``openapi_extra`` for a handler that reads the raw body: which types it takes.
    ``schema`` (a type or a JSON Schema) documents a ``json`` model the handler checks
    further in code, under the model's name."""
    content: dict[str, Any] = {}
    if json is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{json.__name__}"}}
    for m in media:
        if m == "application/yaml" and json is not None:  # the JSON body's document as
            # YAML, stated by the same schema (its keys alone left every section unsaid)
            content[m] = {"schema": {"$ref": f"#/components/schemas/{json.__name__}"}}
        else:
            raw = {"type": "string"} if m.startswith("text/") else dict(_BINARY["schema"])
            content[m] = {"schema": raw | ({"minLength": 1, "description": "a table: at least "
                                               "one column and one row"}
                                              if m in _TABLES else {})}
    if multipart:
        content["multipart/form-data"] = {"schema": {
            "type": "object", "required": ["artifact"], "properties": {
                "artifact": {"type": "string", "format": "binary"},
                "version": {"type": "string", "pattern": NAME_PATTERN},
                **{k: {"type": "string"} for k in ("format", "filename", "entry_point",
                                                   "trust", "task", "metadata")}}}}
    if json is not None:
        BODY_MODELS[json.__name__] = schema if schema is not None else _DOCUMENTED_AS.get(
            json, json)
    return {"requestBody": {"required": required, "content": content}}
