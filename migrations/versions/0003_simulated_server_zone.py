"""The simulated cloud records the availability zone of each server

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sim_servers") as batch:
        batch.add_column(sa.Column("availability_zone", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sim_servers") as batch:
        batch.drop_column("availability_zone")
