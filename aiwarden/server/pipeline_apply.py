"""``pipelines:`` of a rule file (``aiwarden apply``): each model's training pipeline.

The same checks and the same store as ``PUT /models/{name}/pipeline``: every pipeline is
validated (an error names ``pipelines[i].field``) and the server's consent to run code is
checked before the apply writes anything; a dry run diffs each pipeline field by field
against the stored one. Models the file does not name keep their pipelines (as with
``rollback_policies:``): deleting one is ``DELETE /models/{name}/pipeline``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from aiwarden.alerting.apply import field_changes
from aiwarden.errors import ParameterError
from aiwarden.server.access import actor
from aiwarden.server.errors import Forbidden
from aiwarden.store import models_repo
from aiwarden.store.models_repo import NotFound
from aiwarden.training.spec import PipelineSpec

__all__ = ["apply_pipelines", "check_pipelines"]


def check_pipelines(request: Request, specs: Any) -> list[PipelineSpec]:
    """The file's pipelines, checked; refused as a whole before anything is written."""
    from aiwarden.server.training_routes import may_run, parse_pipeline, training_for

    if specs is None:
        return []
    if not isinstance(specs, list):
        raise ParameterError("pipelines: expected a list of pipelines, each naming its model.",
                             "pipelines")
    out: list[PipelineSpec] = []
    for i, body in enumerate(specs):
        where = f"pipelines[{i}]"
        if not isinstance(body, dict):
            raise ParameterError(f"{where}: expected a mapping with model and entry (or "
                                 "command).", where)
        if not body.get("model"):
            raise ParameterError(f"{where}.model: name the model the pipeline trains.",
                                 f"{where}.model")
        # null is unset, as in PUT .../pipeline (else the error names no field)
        if (body.get("entry") is None) == (body.get("command") is None):
            raise ParameterError(f"{where}.entry: give exactly one of entry "
                                 "(package.module:function) or command.", f"{where}.entry")
        spec = parse_pipeline(body, where)
        training_for(request.app).check_executor(spec, where)  # the scheduler's egress
        if any(p.model == spec.model for p in out):
            raise ParameterError(f"{where}.model: model {spec.model!r} has a pipeline above "
                                 "already; one pipeline per model.", f"{where}.model")
        out.append(spec)
    if not all(may_run(request, spec.entry) for spec in out):
        raise Forbidden("pipelines: a training pipeline runs code on the server's machine, so "
                        "applying one needs an admin API key: this server has no keys. Create "
                        "one (`aiwarden keys create NAME --scopes admin`) and give it with "
                        "--api-key, or start the server with --allow-code-artifacts if only "
                        "you can reach it.", "pipelines")
    mon = request.app.state.monitor
    with mon.db.read() as conn:
        for i, spec in enumerate(out):
            try:
                models_repo.get_model(conn, spec.model)
            except NotFound:
                raise ParameterError(f"pipelines[{i}].model: no model {spec.model!r}; register "
                                     "it first.", f"pipelines[{i}].model") from None
    return out


def apply_pipelines(request: Request, specs: list[PipelineSpec], dry_run: bool
                    ) -> list[dict[str, Any]]:
    """The plan's diff entries for ``specs``; stores them unless ``dry_run``."""
    from aiwarden.server.training_routes import training_for

    svc = training_for(request.app)
    diff = []
    for spec in specs:
        old = svc.pipeline(spec.model)
        if old is None:  # a new pipeline: the fields the file sets (defaults are documented)
            fields = field_changes({}, spec.model_dump(mode="json", exclude_unset=True))
        else:
            fields = field_changes(old.model_dump(mode="json"), spec.model_dump(mode="json"))
        if fields:
            diff.append({"kind": "pipeline", "name": spec.model,
                         "action": "create" if old is None else "update", "fields": fields})
            if not dry_run:
                svc.put_pipeline(spec, actor(request))
    return diff
