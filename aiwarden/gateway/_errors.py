"""The gateway's errors, drawn once.

    AiwardenError (aiwarden.errors)
    ├── NotFound (aiwarden.store.models_repo)   unknown model, alias not set (HTTP 404)
    └── GatewayError                            root of what only the gateway raises
        ├── InvalidRequestError                 the request body cannot be served as sent:
        │                                       ``field`` says where (also ValueError; 422)
        └── PredictionError                     the model raised; ``status`` is 422 when it
            │                                   rejected the input, 500 otherwise, and the
            │                                   message names the version and the reason
            └── PredictionIdConflict            a prediction_id already used for other
                                                features (409): monitoring keeps the first
"""

from __future__ import annotations

from aiwarden.errors import AiwardenError

__all__ = ["GatewayError", "InvalidRequestError", "PredictionError", "PredictionIdConflict"]


class GatewayError(AiwardenError):
    """Root of the gateway's own errors."""


class InvalidRequestError(GatewayError, ValueError):
    """The request is not a row (or rows) of features."""


class PredictionError(GatewayError):
    """The model raised while predicting; the event was logged with ``error``."""

    def __init__(self, message: str, *, status: int, kind: str, version: str,
                 field: str | None = None) -> None:
        super().__init__(message, field)
        self.status, self.kind, self.version = status, kind, version


class PredictionIdConflict(PredictionError):
    """A caller's prediction_id already named a request with other features: ingest keeps
    one event per id, so this one would be dropped without a word. Nothing ran, nothing
    was logged (409 ``conflict``)."""

    def __init__(self, message: str, *, version: str, field: str) -> None:
        super().__init__(message, status=409, kind="conflict", version=version, field=field)
