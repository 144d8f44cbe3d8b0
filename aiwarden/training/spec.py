"""A model's training pipeline, as declared in the rules YAML (``pipelines:``) or over REST.

Why a declaration and not code: the pipeline is reviewed in the user's repository next to the
alert rules, applied with ``aiwarden apply --dry-run`` first, and every field a run depends on
(the data window, the gates' limits, the executor) is recorded with the run, so a promoted
version can always say how it was made.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from aiwarden._no_bool import NoBoolNumbers
from aiwarden.monitoring.windows import parse_duration

__all__ = ["DataSpec", "ExecutorSpec", "GateSpec", "HoldoutSpec", "ImageAuditSpec",
           "PipelineSpec", "PromotionSpec", "TriggerSpec"]

_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class _Strict(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(value: str, name: str) -> str:
    parse_duration(value, name)
    return value


class DataSpec(_Strict):
    """Where the training rows come from: labelled production events of a window (exported
    as Parquet), optionally unioned with the previous run's training set or a file/URI."""

    window: str = "7d"
    source: Literal["events", "file"] = "events"
    uri: str | None = None  # a Parquet/CSV file (source: file, or unioned with the events)
    # an image model's training images: a folder (DIR/<label>/<file>, DIR/<split>/<label>/...)
    # or a manifest (CSV/JSON/JSONL with path, label, split); audited before anything trains
    images: str | None = Field(None, min_length=1)
    union_previous: bool = False
    min_rows: int = Field(200, ge=1)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        return _duration(v, "data.window")

    @model_validator(mode="after")
    def _file_needs_uri(self) -> DataSpec:
        if self.source == "file" and not self.uri:
            raise ValueError("data.uri is required when data.source is 'file'")
        return self


class HoldoutSpec(_Strict):
    """The rows both champion and challenger are judged on: the most recent labelled
    ``window`` (closest to what the model will serve), else a seeded random ``share``."""

    window: str | None = "1d"
    share: float = Field(0.2, gt=0, lt=1)
    seed: int = 0

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        return None if v is None else _duration(v, "holdout.window")


class TriggerSpec(_Strict):
    """What starts a run; ``cooldown`` and ``max_concurrent`` stop retrain storms."""

    schedule: str | None = None  # cron, e.g. "0 3 * * 1"
    on_alerts: list[str] = Field(default_factory=list)  # rule names; "*" for any
    label_volume: int | None = Field(None, ge=1)  # N new labelled events since the last run
    cooldown: str = "6h"
    max_concurrent: int = Field(1, ge=1, le=16)

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        return _duration(v, "triggers.cooldown")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            from aiwarden.training.schedule import check_cron

            check_cron(v)
        return v


class ImageAuditSpec(_Strict):
    """How many images of each kind the image audit lets through (``data.images``); a null
    limit is not checked (label issues and outliers are off unless given: they fit a model)."""

    max_corrupt: int | None = Field(0, ge=0)  # undecodable, truncated, garbled
    max_constant: int | None = Field(0, ge=0)  # one-colour frames
    max_duplicate: int | None = Field(0, ge=0)  # exact and near duplicates
    max_leakage: int | None = Field(0, ge=0)  # a test/val image repeating a training one
    max_label_issues: int | None = Field(None, ge=0)
    max_outliers: int | None = Field(None, ge=0)


class GateSpec(_Strict):
    """Limits of the gates in ``training.gates``; a gate set to null is skipped and says so."""

    data_policy: Literal["block", "quarantine"] = "block"
    max_bad_share: float = Field(0.01, ge=0, le=1)
    labels: bool = True
    text_audit: bool = True  # text models: unsafe and PII rows in the training data block
    image_audit: ImageAuditSpec | None = Field(default_factory=ImageAuditSpec)  # data.images
    overfit_metric: str | None = None  # default: the comparison metric
    max_overfit_gap: float | None = Field(0.05, ge=0)
    metric: Literal["accuracy", "roc_auc", "mae"] | None = None  # default: by task
    alpha: float = Field(0.05, gt=0, lt=1)
    min_value: float | None = None
    require_better: bool = False
    slice_min_drop: float | None = Field(0.02, ge=0)
    latency_budget_ms: float | None = Field(50.0, gt=0)  # p95 per predict() of the sample


class ExecutorSpec(_Strict):
    """Where the training function runs: a local subprocess (default) or a Dask cluster."""

    kind: Literal["local", "dask"] = "local"
    address: str | None = None  # dask: the scheduler, e.g. tcp://10.0.0.5:8786
    time_limit: str = "1h"
    memory_mb: int | None = Field(None, ge=64)

    @field_validator("time_limit")
    @classmethod
    def _limit(cls, v: str) -> str:
        return _duration(v, "executor.time_limit")


class PromotionSpec(_Strict):
    """A blessed candidate becomes the challenger and goes to canary or shadow; it is promoted
    to champion when the canary analysis passes for ``hold``, else rolled back."""

    mode: Literal["canary", "shadow", "manual"] = "canary"
    share: float = Field(0.1, gt=0, le=0.5)
    hold: str = "1h"

    @field_validator("hold")
    @classmethod
    def _hold(cls, v: str) -> str:
        return _duration(v, "promotion.hold")


class PipelineSpec(_Strict):
    """One model's training pipeline."""

    model: str = Field(min_length=1, max_length=200)
    entry: str | None = None  # package.module:function
    command: list[str] | None = None  # or a command (argv), run with the context as JSON
    params: dict[str, Any] = Field(default_factory=dict)
    data: DataSpec = Field(default_factory=DataSpec)
    holdout: HoldoutSpec = Field(default_factory=HoldoutSpec)
    triggers: TriggerSpec = Field(default_factory=TriggerSpec)
    gates: GateSpec = Field(default_factory=GateSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    enabled: bool = True

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str | None) -> str | None:
        if v is not None and not _ENTRY.match(v):
            raise ValueError("entry must be 'package.module:function'")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or not all(isinstance(a, str) and a for a in v)):
            raise ValueError("command must be a non-empty list of arguments")
        return v

    @model_validator(mode="after")
    def _one_way_to_train(self) -> PipelineSpec:
        if (self.entry is None) == (self.command is None):
            raise ValueError("give exactly one of entry (package.module:function) or command")
        return self
