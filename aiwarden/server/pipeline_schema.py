"""The training pipeline body (``PUT /models/{name}/pipeline``) as the OpenAPI document
states it: :class:`~aiwarden.training.spec.PipelineSpec`'s own schema (fields, enums,
bounds) plus what its validators check in code: exactly one of ``entry`` or ``command``,
the entry's form, a non-empty argv, durations parse_duration reads, ``data.uri`` for a
file source. What no schema states (a cron line that parses) is in the description.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from aiwarden.server.spec_models import SPAN_PATTERN
from aiwarden.training.spec import _ENTRY, PipelineSpec

__all__ = ["PipelineBody", "pipeline_body"]

# the duration fields of each part, as the part's validators read them
_DURATIONS = {"DataSpec": ("window",), "HoldoutSpec": ("window",),
              "TriggerSpec": ("cooldown",), "ExecutorSpec": ("time_limit",),
              "PromotionSpec": ("hold",)}
_SET = {"not": {"type": "null"}}


class PipelineBody(BaseModel):
    """The name the document gives the body (the answer is ``PipelineSpec``)."""


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its ``$defs`` references replaced by the parts themselves."""
    if isinstance(schema, list):
        return [_inline(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _inline(defs[ref.rsplit("/", 1)[1]], defs)
    return {k: _inline(v, defs) for k, v in schema.items()}


def _duration(prop: dict[str, Any]) -> None:
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["pattern"] = SPAN_PATTERN


def pipeline_body(*, in_file: bool = False) -> dict[str, Any]:
    """The body of ``PUT /models/{name}/pipeline`` (the path names the model), or with
    ``in_file`` an item of a rule file's ``pipelines`` (each names its model)."""
    schema = PipelineSpec.model_json_schema()
    defs = schema.pop("$defs", {})
    for name, fields in _DURATIONS.items():
        for field in fields:
            _duration(defs[name]["properties"][field])
    defs["DataSpec"]["anyOf"] = [  # a file source names its file
        {"not": {"required": ["source"], "properties": {"source": {"const": "file"}}}},
        {"required": ["uri"], "properties": {"uri": {"type": "string", "minLength": 1}}}]
    defs["TriggerSpec"]["properties"]["schedule"]["description"] = \
        "a cron line (five fields, e.g. '0 3 * * 1'): checked by the server"
    props = schema["properties"]
    props["entry"]["anyOf"][0]["pattern"] = _ENTRY.pattern
    props["entry"]["description"] = "package.module:function"
    props["command"]["anyOf"][0].update(minItems=1, items={"type": "string", "minLength": 1})
    props["command"]["description"] = "or an argv, run with the context as JSON"
    if not in_file:
        props["model"] = {"description": "ignored: the path names it"}
        schema["required"] = [r for r in schema.get("required", []) if r != "model"]
    schema["oneOf"] = [{"required": [f], "properties": {f: _SET}} for f in ("entry", "command")]
    schema["title"] = "PipelineInFile" if in_file else "PipelineBody"
    schema["description"] = ("A model's training pipeline (docs/training.md): exactly one of "
                             "entry or command; the server also checks that the cron "
                             "schedule parses" + (", that the model is registered and has "
                             "one pipeline in the file." if in_file else "."))
    return _bounded_ints(_inline(copy.deepcopy(schema), defs))


def _bounded_ints(schema: Any) -> Any:
    """Every integer field within what the server stores: -2**63 to 2**64 - 1 (orjson's
    signed and unsigned 64-bit; ``jsonbody.huge_int``); ``params``, any JSON, is checked by
    the server alone."""
    if isinstance(schema, list):
        return [_bounded_ints(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded_ints(v) for k, v in schema.items()}
    if out.get("type") == "integer":
        out.setdefault("maximum", 2**64 - 1)
        out.setdefault("minimum", -2**63)
    return out
