"""The platform's tables, as SQLAlchemy Core metadata: the one description alembic migrates to.

Every table the configuration can write has `managed` (created or adopted by nexus) and `applied`
(the normalized record nexus last wrote: the baseline that tells drift from a configuration change).
`rotations` and `people`'s own fields are the platform's; nexus only reads them.
"""

from __future__ import annotations

import sqlalchemy as sa

from plan_apply.database.dialects import json_column
from plan_apply.database.packed import PackedJSON

__all__ = [
    "agreement_services",
    "agreements",
    "apply_log",
    "capacity_windows",
    "documents",
    "invitations",
    "metadata",
    "organizations",
    "partnerships",
    "people",
    "profiles",
    "rotations",
    "schools",
    "service_steps",
    "services",
    "staff",
    "steps",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSON = json_column()


def _ownership() -> list[sa.Column[object]]:
    return [
        sa.Column("managed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("applied", JSON, nullable=True),
    ]


def _org_fk() -> sa.Column[int]:
    return sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False, index=True)


organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(255), nullable=False, unique=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=True, index=True),
    sa.Column("labels", JSON, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("config_hash", sa.String(80), nullable=True),
    sa.Column("applied_revision", sa.BigInteger, nullable=True),
    sa.Column("config_files", JSON, nullable=True),
    *_ownership(),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id"), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("website", sa.String(2000)),
    sa.Column("email", sa.String(254)),
    sa.Column("phone", sa.String(50)),
    sa.Column("address", JSON),
    sa.Column("timezone", sa.String(64)),
    *_ownership(),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(50)),
    sa.Column("bio", sa.Text),
    sa.Column("photo_url", sa.String(2000)),
)
sa.Index("ix_people_lower_email", sa.func.lower(people.c.email))

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("title", sa.String(200)),
    *_ownership(),
    sa.UniqueConstraint("org_id", "person_id"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("completed_by", sa.String(30), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("instructions", sa.Text),
    sa.Column("required", sa.Boolean, nullable=False),
    sa.Column("due_days", sa.Integer),
    sa.Column("expires_after_days", sa.Integer),
    sa.Column("applies_to", JSON),
    sa.Column("all_services", sa.Boolean, nullable=False),
    sa.Column("fields", JSON),
    *_ownership(),
    sa.UniqueConstraint("org_id", "key"),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("location", sa.String(200)),
    sa.Column("department", sa.String(200)),
    sa.Column("disciplines", JSON, nullable=False),
    sa.Column("specialties", JSON),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("archived_at", sa.DateTime(timezone=True)),
    *_ownership(),
    sa.UniqueConstraint("org_id", "key"),
)

service_steps = sa.Table(
    "service_steps",
    metadata,
    sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    # A step is never removed from under a service (maybe not nexus's): the plan sees the link first.
    sa.Column(
        "step_id", sa.Integer, sa.ForeignKey("steps.id", ondelete="RESTRICT"), primary_key=True, index=True
    ),
)

schools = sa.Table(
    "schools",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(255), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
)

partnerships = sa.Table(
    "partnerships",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("school_key", sa.String(255), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("contact_email", sa.String(254)),
    sa.Column("status", sa.String(20), nullable=False),
    *_ownership(),
    sa.UniqueConstraint("org_id", "school_key"),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("school_key", sa.String(255), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

agreements = sa.Table(
    "agreements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _org_fk(),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("school_key", sa.String(255), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date),
    sa.Column("reminder_days", sa.Integer),
    sa.Column("disciplines", JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id")),
    sa.Column("proposed", JSON),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("archived_at", sa.DateTime(timezone=True)),
    *_ownership(),
    sa.UniqueConstraint("org_id", "key"),
)

agreement_services = sa.Table(
    "agreement_services",
    metadata,
    sa.Column(
        "agreement_id", sa.Integer, sa.ForeignKey("agreements.id", ondelete="CASCADE"), primary_key=True
    ),
    # A service is never deleted from under an agreement (maybe the school's accepted terms): archived.
    sa.Column(
        "service_id",
        sa.Integer,
        sa.ForeignKey("services.id", ondelete="RESTRICT"),
        primary_key=True,
        index=True,
    ),
)

capacity_windows = sa.Table(
    "capacity_windows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id"), nullable=False, index=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("workflow", sa.String(30), nullable=False),
    sa.Column("agreement_id", sa.Integer, sa.ForeignKey("agreements.id"), index=True),
    sa.Column("disciplines", JSON, nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("max_group_size", sa.Integer, nullable=False),
    sa.Column("allow_specific_dates", sa.Boolean, nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("archived_at", sa.DateTime(timezone=True)),
    *_ownership(),
    sa.UniqueConstraint("service_id", "key"),
)

rotations = sa.Table(
    "rotations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "capacity_window_id",
        sa.Integer,
        sa.ForeignKey("capacity_windows.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("student", sa.String(200), nullable=False),
    sa.Column("school_key", sa.String(255)),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="scheduled"),
)

apply_log = sa.Table(
    "apply_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_slug", sa.String(255), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("commit_sha", sa.String(64)),
    sa.Column("plan_hash", sa.String(80), nullable=False),
    sa.Column("fingerprint_before", sa.String(80), nullable=False),
    sa.Column("summary", JSON, nullable=False),
    sa.Column("changes", PackedJSON, nullable=False),  # zlib-compressed JSON (migration 0008)
)
