"""The orbits table: one row per virtual machine a customer asked for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base, UTCDateTime, utcnow

CREATING = "CREATING"
BOOTING = "BOOTING"
RUNNING = "RUNNING"
PAUSING = "PAUSING"
PAUSED = "PAUSED"
REBOOTING = "REBOOTING"
RESIZING = "RESIZING"
STOPPED = "STOPPED"
DELETING = "DELETING"
ERROR = "ERROR"
DELETED = "DELETED"

ORBIT_STATUSES = (
    CREATING, BOOTING, RUNNING, PAUSING, PAUSED, REBOOTING, RESIZING, STOPPED, DELETING, ERROR,
)  # fmt: skip
TRANSITIONAL = frozenset({CREATING, BOOTING, PAUSING, REBOOTING, RESIZING, DELETING})
ACTIVE_STATUSES = frozenset({BOOTING, RUNNING, PAUSING, PAUSED, REBOOTING, RESIZING, STOPPED})


class Orbit(Base):
    __tablename__ = "orbits"
    __table_args__ = (
        Index("ix_orbits_project_live", "project_id", "deleted_at", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    vm_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    ipaddr: Mapped[str | None] = mapped_column(String(64))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    delete_root: Mapped[bool] = mapped_column(Boolean, default=False)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id"))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    ssh_key_value: Mapped[str] = mapped_column(Text)
    server_id: Mapped[str | None] = mapped_column(String(64), index=True)
    fault: Mapped[str | None] = mapped_column(Text)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        """True once the server exists and is not being made, removed or broken."""
        return self.status in ACTIVE_STATUSES
