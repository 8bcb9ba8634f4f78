"""The volumes table: root volumes of orbits and the data volumes customers make."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base, UTCDateTime, utcnow

V_CREATING = "CREATING"
V_AVAILABLE = "AVAILABLE"
V_ATTACHING = "ATTACHING"
V_RUNNING = "RUNNING"
V_DETACHING = "DETACHING"
V_RESIZING = "RESIZING"
V_DELETING = "DELETING"
V_ERROR = "ERROR"
V_DELETED = "DELETED"

VOLUME_STATUSES = (
    V_CREATING, V_AVAILABLE, V_ATTACHING, V_RUNNING, V_DETACHING, V_RESIZING, V_DELETING, V_ERROR,
)  # fmt: skip
NICKNAME_LENGTH = 255
VOLUME_TRANSITIONAL = frozenset({V_CREATING, V_ATTACHING, V_DETACHING, V_RESIZING, V_DELETING})


def busy_message(status: str) -> str:
    """The seed's refusal for a volume in the middle of a change."""
    return f"Volume is in {status.capitalize()} status, please wait until it finish."


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (
        Index("ix_volumes_project_live", "project_id", "deleted_at", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    nickname: Mapped[str] = mapped_column(String(NICKNAME_LENGTH))
    size_gb: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    is_root: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    source_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    orbit_id: Mapped[int | None] = mapped_column(ForeignKey("orbits.id"), index=True)
    partition: Mapped[str | None] = mapped_column(String(64))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    backend_volume_id: Mapped[str | None] = mapped_column(String(64), index=True)
    fault: Mapped[str | None] = mapped_column(Text)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
