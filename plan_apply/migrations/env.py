"""Alembic environment: migrations run on the connection nexus hands over (SQLite or PostgreSQL)."""

from __future__ import annotations

from alembic import context

from plan_apply.database.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - nexus always passes its connection
    raise RuntimeError("run migrations through `nexus db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite has almost no ALTER TABLE
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
