"""Registry rows in, records out; every function on a Connection the caller owns.

Writers hold the model's write lock (``Database.write(model_id)``), so reading an alias
and appending its move happen in one serialised transaction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, select

from aiwarden.registry.records import AliasEvent, VersionInfo
from aiwarden.store.models_repo import ModelRow
from aiwarden.store.tables import alias_events, model_aliases, model_artifacts, model_versions

__all__ = ["add_event", "alias_target", "aliases", "artifact_of", "events", "insert_artifact",
           "labels", "remove_alias", "upsert_alias", "versions"]

_COLS = (model_versions.c.version, model_versions.c.fingerprint,
         model_versions.c.reference_rows, *model_artifacts.c)


def insert_artifact(conn: Connection, *, version_id: int, model_id: int, **values: Any) -> None:
    values["meta"] = orjson.dumps(values["meta"]).decode()
    values["trusted_types"] = orjson.dumps(values["trusted_types"]).decode()
    conn.execute(model_artifacts.insert().values(version_id=version_id, model_id=model_id,
                                                 created_at=time.time(), **values))


def _info(model: ModelRow, row: Any, alias_map: dict[int, list[str]]) -> VersionInfo:
    ref = {"fingerprint": row.fingerprint, "rows": row.reference_rows} \
        if row.fingerprint is not None else None
    return VersionInfo(
        model=model.name, version=row.version, format=row.format, sha256=row.sha256,
        size=int(row.size), registered_by=row.registered_by, created_at=row.created_at,
        metadata=orjson.loads(row.meta), filename=row.filename, entry_point=row.entry_point,
        trusted_types=orjson.loads(row.trusted_types or "[]"), trusted_by=row.trusted_by,
        aliases=sorted(alias_map.get(row.version_id, [])), reference=ref,
        version_id=row.version_id, uri=row.uri)


def aliases(conn: Connection, model_id: int) -> dict[str, int]:
    """alias → version id."""
    rows = conn.execute(select(model_aliases.c.alias, model_aliases.c.version_id)
                        .where(model_aliases.c.model_id == model_id))
    return {r.alias: r.version_id for r in rows}


def versions(conn: Connection, model: ModelRow, *, version: str | None = None,
             version_id: int | None = None, latest: bool = False) -> list[VersionInfo]:
    """Registered versions (those with an artifact), oldest first, or the one asked for."""
    q = select(*_COLS).join(model_versions, model_versions.c.id == model_artifacts.c.version_id)\
        .where(model_artifacts.c.model_id == model.id)
    if version is not None:
        q = q.where(model_versions.c.version == version)
    if version_id is not None:
        q = q.where(model_artifacts.c.version_id == version_id)
    q = q.order_by(model_artifacts.c.version_id.desc()).limit(1) if latest else \
        q.order_by(model_artifacts.c.version_id)
    by_version: dict[int, list[str]] = {}
    for alias, vid in aliases(conn, model.id).items():
        by_version.setdefault(vid, []).append(alias)
    return [_info(model, r, by_version) for r in conn.execute(q)]


def artifact_of(conn: Connection, version_id: int) -> Any:
    return conn.execute(select(model_artifacts).where(
        model_artifacts.c.version_id == version_id)).first()


def labels(conn: Connection, model_id: int) -> dict[int, str]:
    """version id → version label, for reading history."""
    rows = conn.execute(select(model_versions.c.id, model_versions.c.version)
                        .where(model_versions.c.model_id == model_id))
    return {r.id: r.version for r in rows}


def alias_target(conn: Connection, model_id: int, alias: str) -> int | None:
    return conn.execute(select(model_aliases.c.version_id).where(
        model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)).scalar()


def upsert_alias(conn: Connection, model_id: int, alias: str, version_id: int, actor: str,
                 exists: bool) -> None:
    """Point the alias; the caller holds the model's lock and knows whether it exists."""
    values = {"version_id": version_id, "updated_at": time.time(), "updated_by": actor}
    if exists:
        conn.execute(model_aliases.update().where(model_aliases.c.model_id == model_id,
                                                  model_aliases.c.alias == alias).values(values))
    else:
        conn.execute(model_aliases.insert().values(model_id=model_id, alias=alias, **values))


def remove_alias(conn: Connection, model_id: int, alias: str) -> None:
    conn.execute(model_aliases.delete().where(model_aliases.c.model_id == model_id,
                                              model_aliases.c.alias == alias))


def add_event(conn: Connection, model: ModelRow, alias: str, from_id: int | None,
              to_id: int | None, kind: str, actor: str, reason: str) -> AliasEvent:
    at = time.time()
    res = conn.execute(alias_events.insert().values(
        model_id=model.id, alias=alias, from_version_id=from_id, to_version_id=to_id, kind=kind,
        actor=actor, reason=reason, at=at))
    names = labels(conn, model.id)
    return AliasEvent(int(res.inserted_primary_key[0]), model.name, alias, names.get(from_id),
                      names.get(to_id), kind, actor, reason, at)


def events(conn: Connection, model: ModelRow, alias: str | None = None, limit: int = 100,
           moved_from: bool = False) -> list[AliasEvent]:
    """Newest first; ``moved_from`` keeps only moves away from a version."""
    q = select(alias_events).where(alias_events.c.model_id == model.id)
    if alias is not None:
        q = q.where(alias_events.c.alias == alias)
    if moved_from:
        q = q.where(alias_events.c.from_version_id.is_not(None))
    names = labels(conn, model.id)
    return [AliasEvent(r.id, model.name, r.alias, names.get(r.from_version_id),
                       names.get(r.to_version_id), r.kind, r.actor, r.reason, r.at)
            for r in conn.execute(q.order_by(alias_events.c.id.desc()).limit(limit))]
