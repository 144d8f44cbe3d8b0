"""The registry's errors, drawn once.

    AiwardenError (aiwarden.errors)
    ├── NotFound, Conflict (aiwarden.store.models_repo)   unknown model/version/alias (404),
    │                                                     an immutable thing exists (409)
    └── RegistryError                    root of what only the registry raises
        ├── ArtifactFormatError          bytes are not the declared format, or the format is
        │                                unknown (also ValueError; HTTP 422)
        ├── UntrustedArtifactError       loading would run code nobody with authority trusted:
        │                                pickle/joblib/entry point without an admin's trust,
        │                                skops types off the allow-list (HTTP 403)
        ├── ArtifactIntegrityError       the stored bytes changed since registration: both
        │                                SHA-256 are in the message, never the store's
        │                                location (HTTP 409 artifact_integrity, also on predict)
        └── ArtifactStoreError           the artifact store cannot be reached or lacks a
                                         dependency (HTTP 503)
"""

from __future__ import annotations

from aiwarden.errors import AiwardenError, without_paths

__all__ = ["ArtifactFormatError", "ArtifactIntegrityError", "ArtifactStoreError",
           "RegistryError", "UntrustedArtifactError"]


class RegistryError(AiwardenError):
    """Root of the registry's own errors."""


class ArtifactFormatError(RegistryError, ValueError):
    """The artifact cannot be read as its format, or the format is unknown."""


class UntrustedArtifactError(RegistryError):
    """Registering or loading this artifact would run code that nobody trusted."""


class ArtifactIntegrityError(RegistryError):
    """The artifact's bytes are not the bytes that were registered."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message, "sha256")
        self.expected, self.actual = expected, actual


class ArtifactStoreError(RegistryError):
    """The artifact store failed (unreachable, missing file, fsspec not installed)."""


def why(exc: BaseException) -> str:
    """A third-party error's message for ours, without the server's file paths."""
    return without_paths(str(exc))
