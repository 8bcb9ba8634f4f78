"""Operations: the durable work queue, audit trail and idempotency record in one table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base, JSONType, UTCDateTime, utcnow

# Operation states. "queued": a worker should run its next step; "running": a worker holds it
# under a lease; "waiting": the cloud is doing the work and the poller watches for the result.
QUEUED = "queued"
RUNNING = "running"
WAITING = "waiting"
SUCCEEDED = "succeeded"
FAILED = "failed"
OPEN_STATES = (QUEUED, RUNNING, WAITING)


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_claim", "state", "run_after"),
        Index("ix_operations_orbit", "orbit_id"),
        Index("ix_operations_volume", "volume_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    kind: Mapped[str] = mapped_column(String(32))
    orbit_id: Mapped[int | None] = mapped_column(ForeignKey("orbits.id"))
    volume_id: Mapped[int | None] = mapped_column(ForeignKey("volumes.id"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    secret: Mapped[str | None] = mapped_column(Text)  # encrypted, erased once used
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """One row per (project, scope, transaction_id): the unique constraint makes replays safe."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("project_id", "scope", "transaction_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    scope: Mapped[str] = mapped_column(String(16))
    transaction_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
