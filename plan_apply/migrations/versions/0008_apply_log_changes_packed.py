"""The apply log's changes are stored packed: zlib-compressed JSON in a binary column.

Revision ID: 0008
Revises: 0007

The history was most of a fleet's database: a first apply of 1,000 facilities logged 107 MB of JSON (45%
of the SQLite file), which PostgreSQL parsed into `jsonb` and compressed again in every transaction, and
which a 10,000-facility database could not keep in memory beside the rows a plan reads. Packed, it is an
eighth of that (`plan_apply.database.packed`). Existing entries are converted in batches of ids, one
SELECT and one executemany each; `nexus history` reads them as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from plan_apply.database.dialects import json_column
from plan_apply.database.packed import pack, unpack

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 500


def _convert(
    source: sa.types.TypeEngine[Any], target: sa.types.TypeEngine[Any], how: Callable[[Any], Any]
) -> None:
    """Fill `changes_new` (of type `target`) from `changes` (read as `source`) for every entry, in batches."""
    log = sa.table(
        "apply_log", sa.column("id"), sa.column("changes", source), sa.column("changes_new", target)
    )
    connection = op.get_bind()
    update = sa.update(log).where(log.c.id == sa.bindparam("id_")).values(changes_new=sa.bindparam("new_"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(log.c.id, log.c.changes).where(log.c.id > last).order_by(log.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(update, [{"id_": row.id, "new_": how(row.changes)} for row in rows])
        last = rows[-1].id


def _replace(
    source: sa.types.TypeEngine[Any], target: sa.types.TypeEngine[Any], how: Callable[[Any], Any]
) -> None:
    """Replace `changes` (of type `source`) by a column of type `target` holding `how` of each value."""
    with op.batch_alter_table("apply_log") as batch:
        batch.add_column(sa.Column("changes_new", target))
    _convert(source, target, how)
    with op.batch_alter_table("apply_log") as batch:
        batch.drop_column("changes")
        batch.alter_column("changes_new", new_column_name="changes", nullable=False)


def upgrade() -> None:
    _replace(json_column(), sa.LargeBinary(), pack)


def downgrade() -> None:
    _replace(sa.LargeBinary(), json_column(), unpack)
