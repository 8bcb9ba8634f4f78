"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sog_api.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "availability_zones",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_availability_zones")),
    )
    op.create_table(
        "flavors",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram", sa.Integer(), nullable=False),
        sa.Column("hourly", sa.Float(), nullable=False),
        sa.Column("network_usage", sa.Integer(), nullable=False),
        sa.Column("is_configurable", sa.Boolean(), nullable=False),
        sa.Column("backend_flavor", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flavors")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("image_name", sa.String(length=255), nullable=False),
        sa.Column("os_distro", sa.String(length=64), nullable=False),
        sa.Column("backend_image", sa.String(length=255), nullable=False),
        sa.Column("min_disk_gb", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "sim_servers",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("flavor_ref", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_state", sa.String(length=32), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("boot_volume_id", sa.String(length=36), nullable=True),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sim_servers")),
        sa.UniqueConstraint("id", name=op.f("uq_sim_servers_id")),
    )
    with op.batch_alter_table("sim_servers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sim_servers_tag"), ["tag"], unique=False)

    op.create_table(
        "sim_volumes",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("image_ref", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("server_id", sa.String(length=36), nullable=True),
        sa.Column("device", sa.String(length=32), nullable=True),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sim_volumes")),
        sa.UniqueConstraint("id", name=op.f("uq_sim_volumes_id")),
    )
    with op.batch_alter_table("sim_volumes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sim_volumes_tag"), ["tag"], unique=False)

    op.create_table(
        "volume_templates",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("hourly", sa.Float(), nullable=False),
        sa.Column("monthly", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_templates")),
        sa.UniqueConstraint("capacity", name=op.f("uq_volume_templates_capacity")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_idempotency_keys_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "project_id",
            "scope",
            "transaction_id",
            name=op.f("uq_idempotency_keys_project_id_scope_transaction_id"),
        ),
    )
    op.create_table(
        "orbits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("ipaddr", sa.String(length=64), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("delete_root", sa.Boolean(), nullable=False),
        sa.Column("flavor_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("ssh_key_value", sa.Text(), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("operation_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["flavor_id"], ["flavors.id"], name=op.f("fk_orbits_flavor_id_flavors")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_orbits_image_id_images")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_orbits_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orbits")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("orbits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orbits_project_live", ["project_id", "deleted_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orbits_server_id"), ["server_id"], unique=False)

    op.create_table(
        "volumes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("nickname", sa.String(length=255), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_root", sa.Boolean(), nullable=False),
        sa.Column("is_bootable", sa.Boolean(), nullable=False),
        sa.Column("source_image_id", sa.Integer(), nullable=True),
        sa.Column("orbit_id", sa.Integer(), nullable=True),
        sa.Column("partition", sa.String(length=64), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("backend_volume_id", sa.String(length=64), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("operation_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["orbit_id"], ["orbits.id"], name=op.f("fk_volumes_orbit_id_orbits")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_volumes_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["source_image_id"], ["images.id"], name=op.f("fk_volumes_source_image_id_images")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volumes_backend_volume_id"), ["backend_volume_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_volumes_orbit_id"), ["orbit_id"], unique=False)
        batch_op.create_index(
            "ix_volumes_project_live", ["project_id", "deleted_at", "id"], unique=False
        )

    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("orbit_id", sa.Integer(), nullable=True),
        sa.Column("volume_id", sa.Integer(), nullable=True),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("run_after", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stage_started_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sog_api.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["orbit_id"], ["orbits.id"], name=op.f("fk_operations_orbit_id_orbits")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_operations_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_operations_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index("ix_operations_claim", ["state", "run_after"], unique=False)
        batch_op.create_index("ix_operations_orbit", ["orbit_id"], unique=False)
        batch_op.create_index("ix_operations_volume", ["volume_id"], unique=False)

    projects = sa.table(
        "projects",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("created_at", sog_api.db.base.UTCDateTime()),
    )
    op.bulk_insert(projects, [{"id": 1, "name": "default", "created_at": sog_api.db.base.utcnow()}])


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_volume")
        batch_op.drop_index("ix_operations_orbit")
        batch_op.drop_index("ix_operations_claim")

    op.drop_table("operations")
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_index("ix_volumes_project_live")
        batch_op.drop_index(batch_op.f("ix_volumes_orbit_id"))
        batch_op.drop_index(batch_op.f("ix_volumes_backend_volume_id"))

    op.drop_table("volumes")
    with op.batch_alter_table("orbits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orbits_server_id"))
        batch_op.drop_index("ix_orbits_project_live")

    op.drop_table("orbits")
    op.drop_table("idempotency_keys")
    op.drop_table("volume_templates")
    with op.batch_alter_table("sim_volumes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sim_volumes_tag"))

    op.drop_table("sim_volumes")
    with op.batch_alter_table("sim_servers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sim_servers_tag"))

    op.drop_table("sim_servers")
    op.drop_table("projects")
    op.drop_table("images")
    op.drop_table("flavors")
    op.drop_table("availability_zones")
