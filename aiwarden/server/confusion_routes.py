"""GET /models/{name}/confusion: a classifier's confusion matrix over time (docs/confusion.md).

The numbers come from the labels already joined into the bucket rollups
(:mod:`aiwarden.monitoring.confusion`); this module only parses and documents.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.monitoring import confusion
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers

__all__ = ["router"]

router = APIRouter()


class ClassNumbers(Open):
    class_: str = Field(alias="class")
    support: int = Field(description="labelled rows of this true class")
    predicted: int = Field(description="labelled rows predicted as this class")
    recall: float | None = Field(description="null without true rows of the class")
    precision: float | None = Field(description="null when the class was never predicted")
    f1: float | None


class ConfusedPair(Open):
    true: str
    pred: str
    count: int = Field(description="labelled rows of class `true` predicted as `pred`")
    rate: float = Field(description="count over the rows of class `true` (its support)")


class ConfusionWindow(Open):
    labels: int = Field(description="labels joined to the window's predictions")
    n: int | None = Field(None, description="labelled rows in the matrix (known classes)")
    matrix: list[list[int]] | None = Field(
        None, description="matrix[i][j]: rows of true classes[i] predicted classes[j]; "
        "absent (with reason) when no label joined yet")
    per_class: list[ClassNumbers] | None = None
    pairs: list[ConfusedPair] | None = Field(
        None, description="the most confused pairs (off the diagonal), by count")


class ConfusionPoint(ConfusionWindow):
    start: str
    end: str
    rows: int = Field(description="predictions in the window")
    reason: str | None = Field(None, description="why the window has no matrix")


class Confusion(Open):
    model: str
    version: str
    classes: list[str] = Field(description="the reference schema's classes, matrix order")
    start: str
    end: str
    step: int = Field(description="seconds per point")
    total: ConfusionWindow = Field(description="the whole range (the points summed)")
    points: list[ConfusionPoint]
    segment: dict[str, str] | None = Field(None, description="the segment counted, when "
                                           "one was asked: {column, value}")


@router.get("/models/{name}/confusion", dependencies=[requires("read")],
            tags=["queries"], responses=answers(Confusion, 404))
async def get_confusion(request: Request, name: str, window: str | None = None,
                        start: str | None = None, end: str | None = None,
                        step: str | None = None, version: str | None = None,
                        segment: str | None = None,
                        top: int = Query(confusion.TOP_PAIRS, ge=1, le=1000)
                        ) -> dict[str, Any]:
    """A classifier's confusion matrix per ``step`` (default: about 48 points) over
    ``window`` (``1d``: the range ending at ``end``, default now) or ``start``..``end``,
    with per-class recall and precision and the ``top`` most confused pairs per point and
    for the whole range; ``segment`` (``store:7``) counts one segment's rows."""
    mon = _monitor(request)
    return await run_in_threadpool(confusion.report, mon, name, window=window, start=start,
                                   end=end, step=step, version=version, segment=segment,
                                   top=top)
