"""Alembic environment: runs on the connection the server hands it."""

from __future__ import annotations

from alembic import context

from aiwarden.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` run by hand
    raise RuntimeError("Run migrations through aiwarden.store.database.migrate().")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
