"""Projects own orbits, volumes, operations and idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base, UTCDateTime, utcnow

DEFAULT_PROJECT_ID = 1
DEFAULT_PROJECT_NAME = "default"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
