"""A pydantic declaration checked with the house error: the first problem, its field named
(``where.field`` inside a file: ``pipelines[0].triggers.schedule``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aiwarden.errors import ParameterError

__all__ = ["validated"]

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], spec: Mapping[str, Any], where: str = "", *,
              what: str = "body") -> M:
    try:
        return model.model_validate(dict(spec))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or what
        field = f"{where}.{loc}" if where else loc
        msg = str(err["msg"]).removeprefix("Value error, ")
        msg = msg.removeprefix(f"{loc}: ")  # a validator that named its field already
        raise ParameterError(f"{field}: {msg}", field) from None
