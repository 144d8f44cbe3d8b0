"""The model registry: versions with verified artifacts in safe formats, and aliases with
an append-only history (docs/registry.md).

>>> from aiwarden.registry import FORMATS
>>> sorted(FORMATS)
['joblib', 'onnx', 'pickle', 'prompt', 'python', 'skops']
"""

from aiwarden.registry._errors import (
    ArtifactFormatError,
    ArtifactIntegrityError,
    ArtifactStoreError,
    RegistryError,
    UntrustedArtifactError,
)
from aiwarden.registry.artifacts import (
    ArtifactStore,
    FsspecStore,
    LocalStore,
    default_artifacts_url,
    open_store,
)
from aiwarden.registry.formats import FORMATS, ArtifactFormat
from aiwarden.registry.predictor import Predictor
from aiwarden.registry.records import AliasEvent, VersionInfo
from aiwarden.registry.service import UNSET, Registry

__all__ = [
    "FORMATS", "UNSET", "AliasEvent", "ArtifactFormat", "ArtifactFormatError",
    "ArtifactIntegrityError", "ArtifactStore", "ArtifactStoreError", "FsspecStore", "LocalStore",
    "Predictor", "Registry", "RegistryError", "UntrustedArtifactError", "VersionInfo",
    "default_artifacts_url", "open_store",
]
