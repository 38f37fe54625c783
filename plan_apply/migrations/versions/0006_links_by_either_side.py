"""Links are found from either side, and windows by their agreement: three indexes.

Revision ID: 0006
Revises: 0005

Reading a batch's state asks which other organizations' services link its steps (`service_steps` by
`step_id`), which agreements of other organizations cover its services (`agreement_services` by
`service_id`) and which facilities' windows are scheduled under its agreements (`capacity_windows` by
`agreement_id`). Each table was indexed from the other side only, so each question was a scan of the
whole table per batch: a plan of a fleet (and an apply, which reads each organization's state) grew with
the square of its size.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_service_steps_step_id", "service_steps", "step_id"),
    ("ix_agreement_services_service_id", "agreement_services", "service_id"),
    ("ix_capacity_windows_agreement_id", "capacity_windows", "agreement_id"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
