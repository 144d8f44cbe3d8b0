"""Whether monitoring would keep the events of a request, asked before the model runs.

The gateway logs every prediction as an ingest row (docs/api.md). A row ingest quarantines
(a boolean in a numerical feature, a prediction_id holding NUL, ...) was served with a 200
whose event never reached the profiles, and a NUL id can never join its label (outside
review, 2026-12-06). So the gateway asks ingest itself: the verdict and its wording are
:func:`aiwarden.monitoring.rows.check`'s, run on the rows the request would log.

That check costs about 0.5 ms for one row, as much as the rest of a request, so a screen
runs first: it passes only values ingest takes whatever the column (numbers in a numerical
column, plain scalars elsewhere, ids without NUL). Anything else goes to ingest's check,
which decides and words the refusal (a NUL
id by ingest's ``nul_ids`` and ``NUL_REASON``); the screen never refuses on its own. The
screen tests an id with ``in``: ``nul_ids`` on a one-id Arrow array cost 17 of its 20 µs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from aiwarden.engine.schema import ColumnType, Role, Schema
from aiwarden.errors import DataError
from aiwarden.gateway._rows import Item, event
from aiwarden.monitoring import rows
from aiwarden.monitoring.rows import RowError

__all__ = ["IngestCheck", "refusal_error"]

_NUMBER = frozenset({int, float, type(None), np.float64, np.float32, np.int64, np.int32})
_SCALAR = _NUMBER | {str, bool, np.bool_}
_PID, _FEATURES, _TAGS = (attrgetter(a) for a in ("prediction_id", "features", "tags"))
_LOGGED_BY_LATER = (Role.TARGET, Role.TIMESTAMP, Role.PREDICTION, Role.SCORE)


@dataclass(frozen=True)
class IngestCheck:
    """Ingest's verdict on a request's rows, for one version's schema (None: ids only)."""

    schema: Schema | None
    numeric: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()  # columns ingest reads from a request

    @classmethod
    def of(cls, schema: Schema | None) -> IngestCheck:
        if schema is None:
            return cls(None)
        cols = [c for c in schema.columns if c.role not in _LOGGED_BY_LATER]
        return cls(schema, frozenset(c.name for c in cols if c.dtype == ColumnType.NUMERICAL),
                   frozenset(c.name for c in cols))

    def refusals(self, items: Sequence[Item], version: str) -> list[RowError]:
        """What ingest would quarantine among these rows, first error of each row."""
        if self._plain(items):
            return []
        return self._check(items, version)

    def _plain(self, items: Sequence[Item]) -> bool:
        """True when every value is one ingest takes: the screen, never a refusal."""
        if "\x00" in "".join(map(_PID, items)):  # to ingest's nul_ids, below
            return False
        if self.schema is None:
            return True
        return _takes(list(map(_FEATURES, items)), self.numeric) and (
            not any(map(_TAGS, items)) or _takes([it.tags or {} for it in items],
                                                  self.numeric))

    def _check(self, items: Sequence[Item], version: str, error: str = "") -> list[RowError]:
        """Ingest's check on the events these items would be logged as ("" error: served,
        with no prediction yet)."""
        try:
            batch = rows.from_json([event(it, version, time.time(), 0.0, error=error)
                                    for it in items], self.schema)
            rows.check(batch, self.schema, now=time.time())
        except DataError:  # none of its features is a schema column: the model's own
            return []  # refusal names the column it lacks; ingest keeps a failed event
        return sorted(batch.errors.values(), key=lambda e: e.row)

    def loggable(self, items: Sequence[Item], version: str, error: str) -> list[Item]:
        """The items with what ingest refuses taken out (a bad feature dropped, a bad id
        replaced by a fresh one), so their error events are kept and counted as errors
        rather than quarantined. Only on the refusal path."""
        out = list(items)
        for _ in range(len(self.known) + 2):  # ingest names one field a row per pass
            found = self._check(out, version, error)
            if not found:
                break
            for e in found:
                out[e.row] = _without(out[e.row], e.field)
        return out


def _takes(parts: list[dict[str, Any]], numeric: frozenset[str]) -> bool:
    """Whether every value is a plain scalar, and a number in the ``numeric`` columns.

    When the rows of a batch share their columns, column by column in C (``map``,
    ``set``) rather than value by value in Python: that loop cost a 1,000-row batch +22 %
    CPU (bench/gateway_ingestable.py). Every row has as many columns as the first, and
    each of the first's (or ``itemgetter`` raises KeyError): they are the same columns.
    One row, or rows with columns of their own, go value by value.
    """
    if len(parts) > 1 and sum(map(len, parts)) == len(parts[0]) * len(parts):
        try:
            return all(set(map(type, map(itemgetter(k), parts))) <= (
                _NUMBER if k in numeric else _SCALAR) for k in parts[0])
        except KeyError:
            pass
    for d in parts:
        for k, v in d.items():
            if type(v) not in (_NUMBER if k in numeric else _SCALAR):
                return False
    return True


def _without(it: Item, where: str) -> Item:
    if where == rows.PID:
        return replace(it, prediction_id=uuid.uuid4().hex)
    name = where.split(".", 1)[1] if where.startswith(("features.", "tags.")) else where
    feats = {k: v for k, v in it.features.items() if k != name}
    tags = None if it.tags is None else {k: v for k, v in it.tags.items() if k != name}
    return replace(it, features=feats, tags=tags)


def refusal_error(e: RowError, single: bool, index: int) -> DataError:
    """The refusal the caller sees: ingest's reason and field; in a batch the message
    names the row, as the gateway's type checks do (gateway/_check.py)."""
    where = "" if single else f" (row {index})"
    return DataError(f"{e.field}{where}: {e.reason} (monitoring would quarantine this "
                     "row).", e.field)
