"""aiwarden: keep production models honest.

The pure computation lives in :mod:`aiwarden.engine`; ``aiwarden.Client`` is the SDK's
client (:mod:`aiwarden.sdk`). Nothing here does work at import time.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["BackgroundLogger", "Client"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from aiwarden import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'aiwarden' has no attribute {name!r}")
