"""A database's own identifier, so that a saved plan is matched to a database by what it is.

Revision ID: 0003
Revises: 0002

`nexus_metadata` holds one random `database_id`, drawn when this revision runs: a plan made through a
read-only role, or through `localhost` rather than `127.0.0.1`, still names the database it applies to,
and a database created again at the same URL is another one. Any role that may SELECT can read it.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "nexus_metadata",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.String(length=255), nullable=False),
    )
    op.bulk_insert(table, [{"key": "database_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("nexus_metadata")
