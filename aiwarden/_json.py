"""Where a JSON body breaks, said for a person: the field holding a NaN or Infinity.

JSON has no NaN or Infinity, but Python's ``json.dumps`` writes them, so a batch built with
it is refused by a strict parser (orjson) with a position only. :func:`non_finite` finds the
first such literal and names its path (``rows[3].features.amount``) and row. Shared by the
server's JSON bodies and the standalone gateway's predict route.

>>> field, message = non_finite(b'{"rows": [{"x": 1}, {"x": NaN}]}')
>>> field, message[:43]
('rows[1].x', 'rows[1].x: NaN is not a JSON number (row 1)')
>>> non_finite(b'{"x": 1') is None
True
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["non_finite"]


class _NonFinite:
    def __init__(self, literal: str) -> None:
        self.literal = literal


def _find(doc: Any, path: str) -> tuple[str, str] | None:
    """``(path, literal)`` of the first NaN/Infinity in ``doc``, depth first."""
    if isinstance(doc, _NonFinite):
        return path, doc.literal
    items = (doc.items() if isinstance(doc, dict)
             else enumerate(doc) if isinstance(doc, list) else ())
    for key, value in items:
        sub = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        found = _find(value, sub)
        if found:
            return found
    return None


def non_finite(body: bytes | str, where: str = "body") -> tuple[str, str] | None:
    """``(field, message)`` for the first NaN/Infinity literal in ``body``; None when the
    body has none (or is broken in another way)."""
    try:  # the stdlib parser accepts NaN/Infinity: find where one sits
        found = _find(json.loads(body, parse_constant=_NonFinite), "")
    except (ValueError, RecursionError):  # broken, or nested too deep for this walk
        return None
    if not found:
        return None
    path, literal = found
    path = f"{where}{path}" if path.startswith("[") or not path else path
    row = path[path.find("[") + 1:path.find("]")] if "[" in path else None
    return path, (f"{path}: {literal} is not a JSON number"
                  f"{f' (row {row})' if row is not None else ''}; send null for a missing "
                  "value (json.dumps(..., allow_nan=False) catches these).")
