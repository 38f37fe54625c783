"""Organizations are found by their parent: one index.

Revision ID: 0007
Revises: 0006

A school is invited once per health system: each organization's transaction asks which of its
descendants have already invited a school, walking `organizations` down by `parent_id`. Without an index
each step of that walk was a scan of every organization (SQLite built a throwaway index each time), so a
first apply of a fleet grew with the square of its size.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_organizations_parent_id", "organizations", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_organizations_parent_id", table_name="organizations")
