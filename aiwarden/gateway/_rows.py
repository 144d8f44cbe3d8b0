"""Requests in, model inputs and event rows out (the ingest row format of docs/api.md)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aiwarden.errors import AiwardenError, DataError, SchemaError, without_paths
from aiwarden.gateway._errors import InvalidRequestError, PredictionError
from aiwarden.gateway._watchdog import PredictTimeout
from aiwarden.monitoring.rows import MAX_ID as _MAX_ID

__all__ = ["Item", "event", "failure", "frame", "parse_request", "shadow_id"]

MAX_ROWS = 10_000


@dataclass(frozen=True)
class Item:
    """One row to predict: the id the event is logged under, and what the caller sent."""

    prediction_id: str
    features: dict[str, Any]
    tags: dict[str, Any] | None
    given_id: bool  # the caller chose the id: it routes deterministically


def _item(doc: Any, where: str) -> Item:
    if not isinstance(doc, Mapping):
        raise InvalidRequestError(f"{where or 'body'}: expected an object with 'features'.",
                                  where or "body")
    features = doc.get("features")
    if not isinstance(features, Mapping) or not features:
        raise InvalidRequestError(f"{where}features: expected an object of feature name → "
                                  f"value; got {type(features).__name__}.", f"{where}features")
    tags = doc.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidRequestError(f"{where}tags: expected an object.", f"{where}tags")
    pid = doc.get("prediction_id")
    if pid is None or pid == "":
        return Item(uuid.uuid4().hex, dict(features), None if tags is None else dict(tags),
                    False)
    if isinstance(pid, bool) or not isinstance(pid, str | int) or len(str(pid)) > _MAX_ID:
        raise InvalidRequestError(f"{where}prediction_id: expected text or an integer of at "
                                  f"most {_MAX_ID} characters; got {pid!r}.",
                                  f"{where}prediction_id")
    return Item(str(pid), dict(features), None if tags is None else dict(tags), True)


def parse_request(doc: Any) -> tuple[list[Item], bool]:
    """Items, and whether the caller sent one row (``{"features"}``) or ``{"rows": [...]}``."""
    if isinstance(doc, Mapping) and "rows" in doc and "features" not in doc:
        rows = doc["rows"]
        if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
            raise InvalidRequestError("rows: expected a non-empty list of row objects.", "rows")
        if len(rows) > MAX_ROWS:
            raise InvalidRequestError(f"rows: at most {MAX_ROWS} rows per request; got "
                                      f"{len(rows)}.", "rows")
        return [_item(r, f"rows[{i}].") for i, r in enumerate(rows)], False
    return [_item(doc, "")], True


def frame(items: Sequence[Item]) -> pd.DataFrame:
    """The model's input: one row per item, columns from the features."""
    if len(items) == 1:
        return pd.DataFrame({k: [v] for k, v in items[0].features.items()})
    return pd.DataFrame([it.features for it in items])


def shadow_id(prediction_id: str, version: str) -> str:
    """The id a shadow's event is logged under (ids are unique per model, and the served
    version's event already holds the caller's). Send labels under it too to score the
    shadow on labelled traffic."""
    out = f"{prediction_id}@shadow-{version}"
    if len(out) > _MAX_ID:
        out = f"{hashlib.sha256(prediction_id.encode()).hexdigest()}@shadow-{version}"[:_MAX_ID]
    return out


def failure(exc: BaseException, model: str, version: str) -> PredictionError:
    """What the caller is told when the model raised: 504 when a version on trial did not
    answer in time (aiwarden/gateway/_watchdog.py), 422 when it refused the input (our
    column checks, or the ValueError/TypeError scikit-learn raises for bad values), 500
    for anything else; the message names the version and the reason."""
    text = f"{type(exc).__name__}: {without_paths(str(exc))}"[:1000]  # no server paths
    if isinstance(exc, PredictTimeout):  # a version on trial that does not answer
        return PredictionError(f"{model} version {version} did not answer: {exc}",
                               status=504, kind="model_timeout", version=version)
    if isinstance(exc, DataError | SchemaError):
        return PredictionError(f"{model} version {version} cannot use this input: {exc}",
                               status=422, kind="invalid_input", version=version,
                               field=_features_field(exc))
    if isinstance(exc, ValueError | TypeError | KeyError | IndexError) \
            and not isinstance(exc, AiwardenError):
        return PredictionError(f"{model} version {version} rejected the input: {text}",
                               status=422, kind="model_rejected_input", version=version,
                               field="features")
    return PredictionError(f"{model} version {version} failed while predicting: {text}",
                           status=500, kind="model_error", version=version)


def _features_field(exc: AiwardenError) -> str:
    return f"features.{exc.field}" if exc.field else "features"


def event(it: Item, version: str, ts: float, ms: float, prediction: Any = None,
          scores: dict[str, float] | None = None, error: str | None = None) -> dict[str, Any]:
    """The ingest row of one prediction (docs/api.md), under the version that made it."""
    row: dict[str, Any] = {"prediction_id": it.prediction_id, "timestamp": ts,
                           "version": version, "features": it.features, "latency_ms": ms}
    if error is not None:
        row["error"] = error
    else:
        row["prediction"] = prediction
        if scores is not None:
            row["scores"] = scores
    if it.tags:
        row["tags"] = it.tags
    return row
