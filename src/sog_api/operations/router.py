"""The operation resource: how a long change is going."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel

from sog_api.deps import CallerDep, SessionDep
from sog_api.errors import responses
from sog_api.http import SlashRouter, Timestamp, refuse_nul
from sog_api.operations.models import QUEUED, WAITING, Operation
from sog_api.operations.service import get_operation

router = SlashRouter(tags=["operations"])


class OperationRead(BaseModel):
    attempts: int
    created_at: Timestamp
    error: str | None
    finished_at: Timestamp | None
    id: str
    kind: str
    orbit_id: int | None
    progress: int
    stage: str
    state: Literal["queued", "running", "succeeded", "failed"]
    updated_at: Timestamp
    volume_id: int | None


def operation_read(op: Operation) -> OperationRead:
    state = "running" if op.state == WAITING else op.state
    if op.state == QUEUED and op.attempts > 0:
        state = "running"
    finished: datetime | None = op.finished_at
    return OperationRead(
        attempts=op.attempts, created_at=op.created_at, error=op.error, finished_at=finished,
        id=op.id, kind=op.kind, orbit_id=op.orbit_id, progress=op.progress, stage=op.stage,
        state=state, updated_at=op.updated_at, volume_id=op.volume_id,
    )  # fmt: skip


@router.get("/operations/{operation_id}", response_model=OperationRead, responses=responses(404))
async def get_operation_status(
    operation_id: Annotated[str, Path(max_length=64), AfterValidator(refuse_nul)],
    session: SessionDep,
    caller: CallerDep,
) -> OperationRead:
    """Show a long operation: its kind, state, stage, progress (0-100) and error if it failed."""
    return operation_read(await get_operation(session, caller.project_id, operation_id))
