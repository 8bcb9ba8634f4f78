"""Projects own orbits, volumes, operations and idempotency keys; API keys belong to a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base, UTCDateTime, utcnow

DEFAULT_PROJECT_ID = 1
DEFAULT_PROJECT_NAME = "default"


class Project(Base):
    """A tenant. Each ``quota_*`` column is a limit; null means unlimited."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    quota_orbits: Mapped[int | None] = mapped_column(Integer)
    quota_vcpus: Mapped[int | None] = mapped_column(Integer)
    quota_ram_gb: Mapped[int | None] = mapped_column(Integer)
    quota_volume_gb: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    """An API key: only its SHA-256 digest is stored; ``prefix`` identifies it in listings."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
