"""Organization revision counter bumped by triggers, and the configuration files of the last apply.

Revision ID: 0002
Revises: 0001

Any write to an organization's rows, through nexus, the web UI or plain SQL, bumps
`organizations.revision`. An apply records `applied_revision` and the hashes of the files it applied
(`config_files`); an incremental plan skips an organization only when both are unchanged, so a skipped
organization can never hide drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# table → SQL expression of the organization id of a row, with {row} standing for NEW or OLD.
OWNERS = {
    "profiles": "{row}.org_id",
    "staff": "{row}.org_id",
    "steps": "{row}.org_id",
    "services": "{row}.org_id",
    "partnerships": "{row}.org_id",
    "agreements": "{row}.org_id",
    "invitations": "{row}.org_id",
    "capacity_windows": "(SELECT org_id FROM services WHERE id = {row}.service_id)",
    "service_steps": "(SELECT org_id FROM services WHERE id = {row}.service_id)",
    "agreement_services": "(SELECT org_id FROM agreements WHERE id = {row}.agreement_id)",
    "rotations": (
        "(SELECT s.org_id FROM capacity_windows c JOIN services s ON s.id = c.service_id "
        "WHERE c.id = {row}.capacity_window_id)"
    ),
}
BUMP = "UPDATE organizations SET revision = revision + 1 WHERE id IN ({ids})"
PEOPLE = "UPDATE organizations SET revision = revision + 1 WHERE id IN (SELECT org_id FROM staff WHERE person_id = NEW.id)"
ORG_COLUMNS = ("slug", "parent_id", "labels", "managed", "applied")


def _sqlite_upgrade() -> None:
    for table, owner in OWNERS.items():
        for event, ids in (
            ("INSERT", owner.format(row="NEW")),
            ("DELETE", owner.format(row="OLD")),
            ("UPDATE", f"{owner.format(row='NEW')}, {owner.format(row='OLD')}"),
        ):
            op.execute(
                f"CREATE TRIGGER nexus_bump_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {BUMP.format(ids=ids)}; END"
            )
    op.execute(f"CREATE TRIGGER nexus_bump_people_update AFTER UPDATE ON people BEGIN {PEOPLE}; END")
    op.execute(
        f"CREATE TRIGGER nexus_bump_organizations_update AFTER UPDATE OF {', '.join(ORG_COLUMNS)} "
        "ON organizations BEGIN UPDATE organizations SET revision = revision + 1 WHERE id = NEW.id; END"
    )


# PostgreSQL keeps a new version of a row per UPDATE: bump an organization once per transaction (its row's
# xmin is then this transaction), not once per row written, or a 200-row apply rewrites it 200 times.
ONCE = " AND xmin::text <> (pg_current_xact_id()::text::bigint % 4294967296)::text"


def _postgresql_upgrade() -> None:
    for table, owner in OWNERS.items():
        new, old = owner.format(row="NEW"), owner.format(row="OLD")
        op.execute(
            f"""
            CREATE FUNCTION nexus_bump_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN {BUMP.format(ids=new)}{ONCE};
              ELSIF TG_OP = 'DELETE' THEN {BUMP.format(ids=old)}{ONCE};
              ELSE {BUMP.format(ids=f"{new}, {old}")}{ONCE};
              END IF;
              RETURN NULL;
            END $$;
            CREATE TRIGGER nexus_bump_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}
              FOR EACH ROW EXECUTE FUNCTION nexus_bump_{table}();
            """
        )
    op.execute(
        f"""
        CREATE FUNCTION nexus_bump_people() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {PEOPLE}{ONCE}; RETURN NULL; END $$;
        CREATE TRIGGER nexus_bump_people AFTER UPDATE ON people
          FOR EACH ROW EXECUTE FUNCTION nexus_bump_people();
        CREATE FUNCTION nexus_bump_organizations() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF ({", ".join(f"NEW.{c}" for c in ORG_COLUMNS)}) IS DISTINCT FROM
             ({", ".join(f"OLD.{c}" for c in ORG_COLUMNS)}) THEN
            NEW.revision := OLD.revision + 1;
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER nexus_bump_organizations BEFORE UPDATE ON organizations
          FOR EACH ROW EXECUTE FUNCTION nexus_bump_organizations();
        """
    )


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("config_files", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in [*OWNERS, "people", "organizations"]:
            op.execute(f"DROP TRIGGER IF EXISTS nexus_bump_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS nexus_bump_{table}()")
    else:
        for table in OWNERS:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS nexus_bump_{table}_{event}")
        op.execute("DROP TRIGGER IF EXISTS nexus_bump_people_update")
        op.execute("DROP TRIGGER IF EXISTS nexus_bump_organizations_update")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("config_files")
