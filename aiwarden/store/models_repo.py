"""Models and their versions, with each version's schema, reference and sample."""

from __future__ import annotations

import functools
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, select
from sqlalchemy.exc import IntegrityError

from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Schema
from aiwarden.errors import AiwardenError
from aiwarden.store.tables import model_aliases, model_versions, models

__all__ = ["Conflict", "ModelRow", "NotFound", "VersionRow", "create_model", "create_version",
           "get_model", "get_version", "get_version_by_id", "inherits_from", "list_models",
           "list_versions", "load_reference", "reference_source", "set_reference",
           "versions_and_serving"]

CHAMPION = "champion"  # the alias whose version serves (and takes unversioned events)


class NotFound(AiwardenError):
    """A model or version that does not exist (HTTP 404)."""


class Conflict(AiwardenError):
    """Something that exists already (HTTP 409)."""


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    task: str | None
    description: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "description": self.description,
                "created_at": self.created_at}


@dataclass(frozen=True)
class VersionRow:
    id: int
    model_id: int
    version: str
    schema: Schema | None
    fingerprint: str | None
    reference_rows: int | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "created_at": self.created_at,
                "has_reference": self.fingerprint is not None,
                "reference_rows": self.reference_rows, "fingerprint": self.fingerprint,
                "schema": None if self.schema is None else self.schema.to_dict()}


def _model(row: Any) -> ModelRow:
    return ModelRow(row.id, row.name, row.task, row.description, row.created_at)


@functools.lru_cache(maxsize=1024)
def _schema(text: str) -> Schema:
    """Parsed once per distinct text: every metric query and alert cycle looks a version
    up, and a wide schema takes longer to parse than the query takes (Schema is frozen)."""
    return Schema.from_dict(orjson.loads(text))


def _version(row: Any) -> VersionRow:
    schema = _schema(row.schema) if row.schema else None
    return VersionRow(row.id, row.model_id, row.version, schema, row.fingerprint,
                      row.reference_rows, row.created_at)


_VERSION_COLS = (model_versions.c.id, model_versions.c.model_id, model_versions.c.version,
                 model_versions.c.schema, model_versions.c.fingerprint,
                 model_versions.c.reference_rows, model_versions.c.created_at)


def create_model(conn: Connection, name: str, task: str | None = None,
                 description: str | None = None) -> ModelRow:
    now = time.time()  # one instant: the answer's created_at is the one stored
    try:
        with conn.begin_nested():
            res = conn.execute(models.insert().values(
                name=name, task=task, description=description, created_at=now))
    except IntegrityError:
        raise Conflict(f"Model {name!r} exists already.", "name") from None
    return get_model(conn, name) if res.inserted_primary_key is None else ModelRow(
        int(res.inserted_primary_key[0]), name, task, description, now)


def get_model(conn: Connection, name: str) -> ModelRow:
    row = conn.execute(select(models).where(models.c.name == name)).first()
    if row is None:
        raise NotFound(f"No model named {name!r}.", "name")
    return _model(row)


def list_models(conn: Connection) -> list[ModelRow]:
    return [_model(r) for r in conn.execute(select(models).order_by(models.c.name))]


def create_version(conn: Connection, model: ModelRow, version: str,
                   schema: Schema | None = None) -> VersionRow:
    try:
        with conn.begin_nested():
            conn.execute(model_versions.insert().values(
                model_id=model.id, version=version, created_at=time.time(),
                schema=None if schema is None else orjson.dumps(schema.to_dict()).decode()))
    except IntegrityError:
        raise Conflict(f"Model {model.name!r} has a version {version!r} already.",
                       "version") from None
    return get_version(conn, model, version)


def get_version(conn: Connection, model: ModelRow, version: str | None = None) -> VersionRow:
    """The named version, or the one serving: behind the ``champion`` alias when the
    registry set one (a newer version may be only a candidate), else the latest."""
    q = select(*_VERSION_COLS).where(model_versions.c.model_id == model.id)
    if version is None:
        champion = conn.execute(q.join_from(model_versions, model_aliases, and_(
            model_aliases.c.version_id == model_versions.c.id,
            model_aliases.c.model_id == model.id, model_aliases.c.alias == CHAMPION))).first()
        if champion is not None:
            return _version(champion)
    else:
        q = q.where(model_versions.c.version == version)
    row = conn.execute(q.order_by(model_versions.c.id.desc()).limit(1)).first()
    if row is None:
        what = f"version {version!r}" if version is not None else "version"
        raise NotFound(f"Model {model.name!r} has no {what}.", "version")
    return _version(row)


def inherits_from(version: VersionRow, versions: list[VersionRow],
                  serving: VersionRow | None) -> VersionRow | None:
    """The version whose schema and reference ``version`` uses when it has neither.

    A version registered without a reference (``aiwarden registry register``) replaces
    the one serving: it is monitored against the serving version's reference when that
    one has a reference, else against the latest earlier version with a reference (else
    the latest of all). A version with its own schema or reference inherits nothing.
    """
    if version.fingerprint is not None or version.schema is not None:
        return None
    if serving is not None and serving.id != version.id and serving.fingerprint is not None:
        return serving
    with_ref = [v for v in versions if v.fingerprint is not None and v.id != version.id]
    earlier = [v for v in with_ref if v.id < version.id]
    pick = earlier or with_ref
    return max(pick, key=lambda v: v.id) if pick else None


def reference_source(conn: Connection, version_id: int) -> int | None:
    """Id of the version whose reference applies to ``version_id`` when it has none."""
    row = conn.execute(select(*_VERSION_COLS).where(model_versions.c.id == version_id)).first()
    if row is None or row.fingerprint is not None or row.schema:
        return None
    model = conn.execute(select(models).where(models.c.id == row.model_id)).first()
    if model is None:
        return None
    m = _model(model)
    src = inherits_from(_version(row), list_versions(conn, m), get_version(conn, m))
    return None if src is None else src.id


def get_version_by_id(conn: Connection, version_id: int) -> VersionRow | None:
    row = conn.execute(select(*_VERSION_COLS).where(model_versions.c.id == version_id)).first()
    return None if row is None else _version(row)


def list_versions(conn: Connection, model: ModelRow) -> list[VersionRow]:
    q = select(*_VERSION_COLS).where(model_versions.c.model_id == model.id)
    return [_version(r) for r in conn.execute(q.order_by(model_versions.c.id))]


def versions_and_serving(conn: Connection, model: ModelRow
                         ) -> tuple[list[VersionRow], VersionRow | None]:
    """:func:`list_versions` and the serving version (as :func:`get_version` picks it)
    in one statement: ingest asks for both on every request, and on PostgreSQL each
    statement is a round trip (three here before)."""
    champion = and_(model_aliases.c.version_id == model_versions.c.id,
                    model_aliases.c.model_id == model.id, model_aliases.c.alias == CHAMPION)
    rows = conn.execute(select(*_VERSION_COLS, model_aliases.c.alias)
                        .select_from(model_versions.outerjoin(model_aliases, champion))
                        .where(model_versions.c.model_id == model.id)
                        .order_by(model_versions.c.id)).all()
    versions = [_version(r) for r in rows]
    serving = next((v for v, r in zip(versions, rows, strict=True) if r.alias is not None),
                   versions[-1] if versions else None)
    return versions, serving


def set_reference(conn: Connection, version: VersionRow, ref: Reference, rows: int,
                  sample: bytes | None) -> None:
    blob = zlib.compress(orjson.dumps(ref.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY), 3)
    conn.execute(model_versions.update().where(model_versions.c.id == version.id).values(
        reference=blob, fingerprint=ref.fingerprint, reference_rows=rows, sample=sample,
        schema=orjson.dumps(ref.schema_.to_dict()).decode()))


def copy_reference(conn: Connection, source_id: int, version: VersionRow) -> bool:
    """Give ``version`` (which has none) the reference of version ``source_id``, for good: a
    referenceless version inherits from whichever version serves, so promoting it would
    switch the reference its stored profiles were counted on. False: ``version`` has one."""
    src = conn.execute(select(model_versions.c.reference, model_versions.c.fingerprint,
                              model_versions.c.reference_rows, model_versions.c.sample,
                              model_versions.c.schema)
                       .where(model_versions.c.id == source_id)).first()
    if src is None or src.fingerprint is None:
        return False
    return conn.execute(model_versions.update().where(
        model_versions.c.id == version.id, model_versions.c.fingerprint.is_(None),
        model_versions.c.schema.is_(None)).values(
        reference=src.reference, fingerprint=src.fingerprint,
        reference_rows=src.reference_rows, sample=src.sample, schema=src.schema)
    ).rowcount == 1


def load_reference(conn: Connection, version_id: int) -> Reference | None:
    blob = conn.execute(select(model_versions.c.reference)
                        .where(model_versions.c.id == version_id)).scalar()
    return None if blob is None else Reference.from_dict(orjson.loads(zlib.decompress(blob)))


def has_sample(conn: Connection, version_id: int) -> bool:
    """Whether the version stores a sample of reference rows (without reading it)."""
    return conn.execute(select(model_versions.c.id).where(
        model_versions.c.id == version_id, model_versions.c.sample.is_not(None))).first() \
        is not None


def load_sample(conn: Connection, version_id: int) -> bytes | None:
    return conn.execute(select(model_versions.c.sample)
                        .where(model_versions.c.id == version_id)).scalar()
