"""Pipelines and runs in the database: every state change is a compare-and-set.

Why compare-and-set: several server processes may share one database; a run is claimed by
exactly one of them (``queued -> running`` where it is still queued), and it ends exactly once
(``running -> final`` only by its holder), so a crash, a restart or a second process can never
record a run's end twice or lose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from aiwarden.store.tables import training_pipelines as pipelines_t
from aiwarden.store.tables import training_runs as runs_t

__all__ = ["ACTIVE", "FINAL", "PipelineRow", "RunRow", "claim", "enqueue", "finish",
           "get_pipeline", "get_run", "heartbeat", "list_pipelines", "list_runs",
           "put_pipeline", "request_cancel", "save_pipeline_state", "stale_running"]

QUEUED, RUNNING = "queued", "running"
ACTIVE = (QUEUED, RUNNING)
FINAL = ("succeeded", "failed", "blocked", "cancelled")


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(frozen=True)
class PipelineRow:
    model_id: int
    spec: dict[str, Any]
    updated_at: float
    updated_by: str | None
    state: dict[str, Any]


@dataclass(frozen=True)
class RunRow:
    id: int
    model_id: int
    state: str
    trigger: str
    trigger_detail: dict[str, Any]
    dedupe_key: str | None
    spec: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    holder: str | None
    cancel_requested: bool
    reason: str | None
    data: dict[str, Any]
    gates: list[dict[str, Any]]
    result: dict[str, Any]
    version: str | None
    run_dir: str | None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or self.heartbeat_at or self.started_at) - self.started_at


def _run(r: Any) -> RunRow:
    return RunRow(int(r.id), r.model_id, r.state, r.trigger, orjson.loads(r.trigger_detail),
                  r.dedupe_key, orjson.loads(r.spec), r.created_at, r.started_at,
                  r.finished_at, r.heartbeat_at, r.holder, bool(r.cancel_requested), r.reason,
                  orjson.loads(r.data), orjson.loads(r.gates), orjson.loads(r.result),
                  r.version, r.run_dir)


# ---------------------------------------------------------------- pipelines
def put_pipeline(conn: Connection, model_id: int, spec: Mapping[str, Any], by: str | None,
                 now: float) -> None:
    """Create or replace the model's pipeline; its trigger bookkeeping is kept."""
    exists = conn.execute(select(pipelines_t.c.model_id).where(
        pipelines_t.c.model_id == model_id)).first()
    values = {"spec": _json(dict(spec)), "updated_at": now, "updated_by": by}
    if exists:
        conn.execute(update(pipelines_t).where(pipelines_t.c.model_id == model_id)
                     .values(**values))
    else:
        conn.execute(insert(pipelines_t).values(model_id=model_id, state="{}", **values))


def get_pipeline(conn: Connection, model_id: int) -> PipelineRow | None:
    r = conn.execute(select(pipelines_t).where(pipelines_t.c.model_id == model_id)).first()
    return None if r is None else PipelineRow(r.model_id, orjson.loads(r.spec), r.updated_at,
                                              r.updated_by, orjson.loads(r.state or "{}"))


def list_pipelines(conn: Connection) -> list[PipelineRow]:
    return [PipelineRow(r.model_id, orjson.loads(r.spec), r.updated_at, r.updated_by,
                        orjson.loads(r.state or "{}"))
            for r in conn.execute(select(pipelines_t).order_by(pipelines_t.c.model_id))]


def delete_pipeline(conn: Connection, model_id: int) -> bool:
    return conn.execute(delete(pipelines_t).where(pipelines_t.c.model_id == model_id)
                        ).rowcount > 0


def save_pipeline_state(conn: Connection, model_id: int, state: Mapping[str, Any]) -> None:
    conn.execute(update(pipelines_t).where(pipelines_t.c.model_id == model_id)
                 .values(state=_json(dict(state))))


# --------------------------------------------------------------------- runs
def enqueue(conn: Connection, model_id: int, *, trigger: str, detail: Mapping[str, Any],
            spec: Mapping[str, Any], now: float, dedupe_key: str | None = None) -> RunRow | None:
    """Queue a run; None when a queued or running run of the model has the same
    ``dedupe_key`` (ten drift alerts at once queue one run)."""
    if dedupe_key is not None:
        dup = conn.execute(select(runs_t.c.id).where(and_(
            runs_t.c.model_id == model_id, runs_t.c.dedupe_key == dedupe_key,
            runs_t.c.state.in_(ACTIVE)))).first()
        if dup is not None:
            return None
    res = conn.execute(insert(runs_t).values(
        model_id=model_id, state=QUEUED, trigger=trigger, trigger_detail=_json(dict(detail)),
        dedupe_key=dedupe_key, spec=_json(dict(spec)), created_at=now,
        cancel_requested=False, data="{}", gates="[]", result="{}"))
    return get_run(conn, int(res.inserted_primary_key[0]))


def get_run(conn: Connection, run_id: int) -> RunRow | None:
    r = conn.execute(select(runs_t).where(runs_t.c.id == run_id)).first()
    return None if r is None else _run(r)


def list_runs(conn: Connection, model_id: int | None = None, *,
              states: Sequence[str] | None = None, limit: int = 50) -> list[RunRow]:
    q = select(runs_t).order_by(runs_t.c.id.desc()).limit(limit)
    if model_id is not None:
        q = q.where(runs_t.c.model_id == model_id)
    if states:
        q = q.where(runs_t.c.state.in_(list(states)))
    return [_run(r) for r in conn.execute(q)]


def running_count(conn: Connection, model_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(runs_t).where(and_(
        runs_t.c.model_id == model_id, runs_t.c.state == RUNNING))).scalar_one())


def last_started(conn: Connection, model_id: int, triggers: Sequence[str]) -> float | None:
    """When the model's latest run of these triggers was queued (cooldowns count from it;
    cancelled runs count too, or cancelling would invite the next storm)."""
    return conn.execute(select(func.max(runs_t.c.created_at)).where(and_(
        runs_t.c.model_id == model_id, runs_t.c.trigger.in_(list(triggers))))).scalar()


def claim(conn: Connection, run_id: int, holder: str, now: float, run_dir: str) -> bool:
    """``queued -> running`` for ``holder``; False when another process took it first."""
    return conn.execute(update(runs_t).where(and_(
        runs_t.c.id == run_id, runs_t.c.state == QUEUED)).values(
        state=RUNNING, holder=holder, started_at=now, heartbeat_at=now,
        run_dir=run_dir)).rowcount == 1


def heartbeat(conn: Connection, run_id: int, holder: str, now: float, **fields: Any
              ) -> bool:
    """Still alive (and any progress: data, gates); False when the run is no longer ours."""
    values: dict[str, Any] = {"heartbeat_at": now}
    for key in ("data", "gates", "result"):
        if key in fields:
            values[key] = _json(fields[key])
    return conn.execute(update(runs_t).where(and_(
        runs_t.c.id == run_id, runs_t.c.state == RUNNING,
        runs_t.c.holder == holder)).values(**values)).rowcount == 1


def finish(conn: Connection, run_id: int, holder: str | None, state: str, reason: str,
           now: float, *, data: Any = None, gates: Any = None, result: Any = None,
           version: str | None = None) -> bool:
    """End a run once: only its holder, only while it runs (``holder=None``: a queued run
    cancelled before anyone took it). False when it had already ended."""
    assert state in FINAL, state
    where = [runs_t.c.id == run_id]
    if holder is None:
        where.append(runs_t.c.state == QUEUED)
    else:
        where += [runs_t.c.state == RUNNING, runs_t.c.holder == holder]
    values: dict[str, Any] = {"state": state, "reason": reason, "finished_at": now}
    for key, value in (("data", data), ("gates", gates), ("result", result)):
        if value is not None:
            values[key] = _json(value)
    if version is not None:
        values["version"] = version
    return conn.execute(update(runs_t).where(and_(*where)).values(**values)).rowcount == 1


def request_cancel(conn: Connection, run_id: int, now: float, by: str = "someone"
                   ) -> RunRow | None:
    """A queued run is cancelled at once; a running one is told to stop (its holder kills
    the process and records the end, keeping who asked). None: no such run."""
    run = get_run(conn, run_id)
    if run is None or run.state in FINAL:
        return run
    if run.state == QUEUED and finish(conn, run_id, None, "cancelled",
                                      f"cancelled by {by} before it started", now):
        return get_run(conn, run_id)
    conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(
        cancel_requested=True, reason=f"cancelled by {by} while it ran"))
    return get_run(conn, run_id)


def cancel_requested(conn: Connection, run_id: int) -> bool:
    return bool(conn.execute(select(runs_t.c.cancel_requested).where(
        runs_t.c.id == run_id)).scalar())


def stale_running(conn: Connection, before: float) -> list[RunRow]:
    """Runs whose holder stopped beating before ``before``: their process died."""
    q = select(runs_t).where(and_(runs_t.c.state == RUNNING, runs_t.c.heartbeat_at < before))
    return [_run(r) for r in conn.execute(q)]


def update_result(conn: Connection, run_id: int, result: Mapping[str, Any]) -> None:
    """After the end: the promotion of a succeeded run moves on (canary, promoted, rolled
    back) without touching its state."""
    conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(result=_json(dict(result))))
