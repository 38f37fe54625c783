"""Deletes never cascade into rows nexus may not own.

Revision ID: 0004
Revises: 0003

Deleting a step removed its links from every service that used it (a service made in the web UI, or a
child organization's outside `--org`), and deleting a service removed it from every agreement covering it
(also one the school accepted, which nexus does not manage): the database changed rows no plan showed.
These two foreign keys become RESTRICT; the plan sees the dependents (it archives the service, or refuses
to remove the step). A service's own step links and an agreement's own service links still go with it.
SQLite rebuilds the two tables (batch mode), which drops their revision triggers: they are made again.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, constraint, column, referred table): the links that reach rows nexus may not own.
LINKS = (
    ("service_steps", "fk_service_steps_step_id_steps", "step_id", "steps"),
    ("agreement_services", "fk_agreement_services_service_id_services", "service_id", "services"),
)
# The organization of a link row (as in 0002), for SQLite's triggers made again after the rebuild.
OWNERS = {
    "service_steps": "(SELECT org_id FROM services WHERE id = {row}.service_id)",
    "agreement_services": "(SELECT org_id FROM agreements WHERE id = {row}.agreement_id)",
}
BUMP = "UPDATE organizations SET revision = revision + 1 WHERE id IN ({ids})"


def _sqlite_triggers(table: str) -> None:
    owner = OWNERS[table]
    for event, ids in (
        ("INSERT", owner.format(row="NEW")),
        ("DELETE", owner.format(row="OLD")),
        ("UPDATE", f"{owner.format(row='NEW')}, {owner.format(row='OLD')}"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS nexus_bump_{table}_{event.lower()}")
        op.execute(
            f"CREATE TRIGGER nexus_bump_{table}_{event.lower()} AFTER {event} ON {table} "
            f"BEGIN {BUMP.format(ids=ids)}; END"
        )


def _relink(ondelete: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, column, referred in LINKS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)
        if sqlite:
            _sqlite_triggers(table)


def upgrade() -> None:
    _relink("RESTRICT")


def downgrade() -> None:
    _relink("CASCADE")
