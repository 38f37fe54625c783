"""People are found by their email in lowercase: an index on `lower(email)`.

Revision ID: 0005
Revises: 0004

Every apply that writes staff looks its people up with `lower(email) IN (...)`; without an index on the
expression that is a scan of the whole table per organization, so a first apply of a fleet grew with the
square of its staff.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_people_lower_email", "people", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_people_lower_email", table_name="people")
