"""Downsampling: minute partials kept N days, hourly ones a year, daily ones forever.

Every ingest writes each bucket's partial at every rollup level (``profiles._rows``), so a
coarser level already holds the merge of the finer partials under it. Downsampling is then
only a delete of fine partials past their horizon, in whole units of the next level kept
longer, in chunks of ids (memory and lock time bounded whatever the store's size); no
profile is rewritten. A window aligned to the coarser level reads exactly the same
partials before and after (``windows.cover`` takes the widest level that fits), and reads
snap the boundaries of older windows to the finest level still kept there
(:meth:`RetentionPolicy.snap`), so an answer never depends on whether the job ran yet.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from aiwarden.errors import ParameterError
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles, model_versions, segment_profiles

__all__ = ["CHUNK", "RetentionPolicy", "downsample"]

HOUR, DAY = 3600, 86400
CHUNK = 5000  # partial ids deleted per transaction: bounds memory and write-lock time


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each rollup level is kept, in days; 0 keeps it forever.

    ``minute_days`` covers the levels under an hour (the bucket, 10 minutes),
    ``hour_days`` those from an hour to under a day; day partials are kept forever.
    """

    minute_days: float = 30.0
    hour_days: float = 365.0

    def __post_init__(self) -> None:
        for field in ("minute_days", "hour_days"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ParameterError(f"{field}: expected a number of days >= 0 (0: forever), "
                                     f"got {value!r}.", field)
        # a window reads the widest level that fits it, so a coarse level must outlive the
        # finer ones or an aligned window of old data would read nothing
        if self._days(HOUR) < self._days(60):
            raise ParameterError(
                f"hour_days: hourly partials must be kept at least as long as minute ones "
                f"({self.hour_days} < {self.minute_days}; 0 means forever).", "hour_days")

    def _days(self, level: int) -> float:
        days = self.minute_days if level < HOUR else self.hour_days if level < DAY else 0
        return math.inf if days == 0 else float(days)

    def keep(self, level: int) -> float:
        """Seconds the partials of ``level`` are kept (``inf``: forever)."""
        return self._days(level) * DAY

    def cutoffs(self, levels: tuple[int, ...], now: float) -> dict[int, int]:
        """``level -> start`` before which that level's partials may be deleted.

        Deleted spans are whole units of the next coarser level kept longer (its parent),
        one unit short of the horizon: readers on another process's clock, or snapping a
        window's ragged edge, still find every partial they read."""
        out: dict[int, int] = {}
        for i, level in enumerate(levels):
            keep = self.keep(level)
            if math.isinf(keep):
                continue
            parent = next((p for p in levels[i + 1:] if self.keep(p) > keep), None)
            if parent is None:  # the coarsest level kept: never deleted
                continue
            out[level] = int((now - keep) // parent * parent) - parent
        return out

    def resolution(self, t: float, now: float, levels: tuple[int, ...]) -> int:
        """The finest level whose partials are all still kept at instant ``t``."""
        for level in levels:
            if t >= now - self.keep(level):
                return level
        return levels[-1]

    def snap(self, bounds: list[int], now: float, levels: tuple[int, ...]) -> list[int]:
        """Window boundaries moved onto the finest level kept at their age: every one but
        the last down, the last up, so consecutive windows stay consecutive and the whole
        range is still covered."""
        out = []
        for i, b in enumerate(bounds):
            r = self.resolution(b, now, levels)
            out.append(-(-b // r) * r if i == len(bounds) - 1 else b // r * r)
        return out

    def note(self, width: int, t: float, now: float, levels: tuple[int, ...]) -> str | None:
        """Why a window of ``width`` seconds at ``t`` was widened or emptied, else None."""
        r = self.resolution(t, now, levels)
        if r <= levels[0] or width % r == 0:
            return None
        finer = max(w for w in levels if w < r)  # the level gone there
        return (f"data older than {self.keep(finer) / DAY:g} days is kept at "
                f"{_name(r)} resolution (downsampled); use a step that is a multiple of "
                f"{_name(r)} for this range")


def _name(seconds: int) -> str:
    if seconds % DAY == 0:
        return f"{seconds // DAY}d"
    if seconds % HOUR == 0:
        return f"{seconds // HOUR}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def downsample(db: Database, policy: RetentionPolicy, levels: tuple[int, ...],
               now: float | None = None, chunk: int = CHUNK) -> int:
    """Delete partials (the model's and its segments') past their level's horizon; returns
    the partials deleted. Each transaction deletes at most ``chunk`` ids under the model's
    write lock, so ingest of that model waits one chunk at most; concurrent readers that
    listed a deleted partial retry on a fresh listing (``profiles.read_windows``), which
    for a window aligned to the kept level never lists the deleted ones again."""
    cutoffs = policy.cutoffs(levels, time.time() if now is None else now)
    if not cutoffs:
        return 0
    with db.read() as conn:
        models = [m.id for m in repo.list_models(conn)]
    removed = 0
    for model_id in models:
        with db.read() as conn:
            versions = conn.execute(select(model_versions.c.id).where(
                model_versions.c.model_id == model_id)).scalars().all()
        for t in (bucket_profiles, segment_profiles):
            for version_id in versions:
                for level, cutoff in cutoffs.items():
                    # seeks on the key index (model, version, [segment,] level, start)
                    where = (t.c.model_id == model_id, t.c.version_id == version_id,
                             t.c.level == level, t.c.start < cutoff)
                    while True:
                        with db.write(model_id) as conn:
                            ids = conn.execute(select(t.c.id).where(*where).limit(chunk)
                                               ).scalars().all()
                            if ids:
                                conn.execute(delete(t).where(t.c.id.in_(ids)))
                        removed += len(ids)
                        if len(ids) < chunk:
                            break
    return removed
