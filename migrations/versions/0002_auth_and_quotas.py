"""API keys and per-project quotas

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sog_api.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUOTA_COLUMNS = ("quota_orbits", "quota_vcpus", "quota_ram_gb", "quota_volume_gb")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_api_keys_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_project_id"), ["project_id"], unique=False)

    # Nullable columns (null = unlimited): SQLite adds them in place, no table copy.
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for name in QUOTA_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))

    if op.get_context().dialect.name == "postgresql":
        # 0001 inserted the default project with an explicit id, which left the sequence at 1:
        # the first project made through the sequence would collide with it.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('projects', 'id'),"
            " (SELECT max(id) FROM projects))"
        )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for name in reversed(QUOTA_COLUMNS):
            batch_op.drop_column(name)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_project_id"))

    op.drop_table("api_keys")
