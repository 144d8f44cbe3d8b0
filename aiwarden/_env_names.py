"""Which environment variables a stored setting may name.

Whoever may change a receiver or a guardrail policy could otherwise name any variable of the
server's environment (``AIWARDEN_DATABASE_URL``, a cloud token) and have the server send its
value to a URL of their choosing. A setting may name only variables with a purpose-specific
prefix, or those the operator listed (comma-separated) in another variable; the refusal does
not tell whether the refused variable exists.
"""

from __future__ import annotations

import os

__all__ = ["env_name_refused"]


def env_name_refused(name: str, prefix: str, listing: str, purpose: str) -> str | None:
    """Why ``name`` may not be named for ``purpose``, or None when it may."""
    listed = {v.strip() for v in os.environ.get(listing, "").split(",") if v.strip()}
    if name in listed or (name.startswith(prefix) and len(name) > len(prefix)):
        return None
    return (f"variable {name!r} may not hold {purpose}: name one starting with "
            f"{prefix} or list it in {listing} (the server's environment).")
