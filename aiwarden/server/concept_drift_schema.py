"""The concept-drift settings body as the OpenAPI document describes it: every detector's
parameters with their types and bounds (the engine's), so clients and fuzzers send what
the server accepts. The handler still parses with ``ConceptDriftSettings.parse``, whose
errors name the field; the two relations no schema states are listed in the description.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool

from aiwarden._no_bool import NoBoolNumbers
from aiwarden.monitoring.concept_settings import MAX_INT_PARAM

__all__ = ["ConceptDriftSettingsBody"]

_Count = Annotated[int, Field(le=MAX_INT_PARAM)]


class _Strict(NoBoolNumbers):
    """Parameters left out or null take the engine detector's default."""

    model_config = ConfigDict(extra="forbid")


class AdwinParams(_Strict):
    delta: Annotated[float, Field(gt=0, lt=1)] | None = 0.002
    clock: Annotated[_Count, Field(ge=1)] | None = 32
    max_buckets: Annotated[_Count, Field(ge=1)] | None = 5
    min_window_length: Annotated[_Count, Field(ge=1)] | None = 5
    grace_period: Annotated[_Count, Field(ge=0)] | None = 10


class DdmParams(_Strict):
    """``warning_threshold`` must not exceed ``drift_threshold``."""

    warm_start: Annotated[_Count, Field(ge=0)] | None = 30
    warning_threshold: Annotated[float, Field(gt=0)] | None = 2.0
    drift_threshold: Annotated[float, Field(gt=0)] | None = 3.0


class PageHinkleyParams(_Strict):
    min_instances: Annotated[_Count, Field(ge=1)] | None = 30
    delta: Annotated[float, Field(ge=0)] | None = 0.005
    threshold: Annotated[float, Field(gt=0)] | None = 50.0
    alpha: Annotated[float, Field(gt=0, le=1)] | None = 0.9999
    mode: Literal["up", "down", "both"] | None = "both"


class DetectorParams(_Strict):
    adwin: AdwinParams | None = None
    ddm: DdmParams | None = None
    page_hinkley: PageHinkleyParams | None = None


class ConceptDriftSettingsBody(_Strict):
    """Omitted (or null) fields take their defaults. ``detectors``: a list of names or an
    object of name to parameters. Refused although the schema allows it: DDM whose
    ``warning_threshold`` exceeds its ``drift_threshold``, and DDM for a regression model
    (its outcomes are absolute errors, not 0/1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "enabled": True, "label_delay": "1h", "detectors": {"adwin": {}, "ddm": {}}}})
    enabled: StrictBool | None = None
    label_delay: Annotated[int, Field(ge=0, le=MAX_INT_PARAM)] | Annotated[
        str, Field(pattern=r"^\s*[0-9]{1,6}\s*[smhdw]?\s*$")] | None = None
    detectors: list[Literal["adwin", "ddm", "page_hinkley"]] | DetectorParams | None = None
