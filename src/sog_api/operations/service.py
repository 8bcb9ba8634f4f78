"""Create operations, and keep idempotency keys: the records that make retries safe."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.db.base import utcnow
from sog_api.errors import Conflict, NotFound
from sog_api.operations.models import QUEUED, IdempotencyKey, Operation
from sog_api.settings import Settings


def new_operation(
    session: AsyncSession,
    settings: Settings,
    *,
    project_id: int,
    kind: str,
    stage: str,
    orbit_id: int | None = None,
    volume_id: int | None = None,
    params: dict[str, Any] | None = None,
    secret: str | None = None,
) -> Operation:
    """Add a queued operation to the session; the caller's transaction commits it."""
    now = utcnow()
    operation = Operation(
        id=str(uuid.uuid4()),
        project_id=project_id,
        kind=kind,
        stage=stage,
        orbit_id=orbit_id,
        volume_id=volume_id,
        params=params or {},
        secret=secret,
        state=QUEUED,
        progress=0,
        attempts=0,
        run_after=now,
        stage_started_at=now,
        deadline_at=now + timedelta(seconds=settings.operation_deadline_seconds),
        created_at=now,
        updated_at=now,
    )
    session.add(operation)
    return operation


async def get_operation(session: AsyncSession, project_id: int, operation_id: str) -> Operation:
    """The caller's operation, or 404."""
    operation = await session.get(Operation, operation_id)
    if operation is None or operation.project_id != project_id:
        raise NotFound(f"Operation {operation_id} not found")
    return operation


def request_hash(settings: Settings, params: dict[str, Any]) -> str:
    """A keyed hash of the request's parameters (they may hold a password)."""
    canonical = json.dumps(params, sort_keys=True, default=str).encode()
    return hmac.new(settings.secret_key.encode(), canonical, hashlib.sha256).hexdigest()


async def claim_key(
    session: AsyncSession, *, project_id: int, scope: str, transaction_id: str, digest: str
) -> tuple[IdempotencyKey, bool]:
    """Insert the key and return it with True, or return the earlier record with False.

    The unique constraint decides between racing requests: the loser's insert fails (on
    PostgreSQL it waits for the winner's commit first) and it reads the winner's record.
    A record with other parameters is a 409. Claim the key before checking anything that the
    first request itself may have changed (a boot volume it took, an orbit since deleted), so
    that a repeat answers what the first did; a request refused after the claim rolls it back.
    """
    key = IdempotencyKey(
        project_id=project_id, scope=scope, transaction_id=transaction_id,
        request_hash=digest, result={},
    )  # fmt: skip
    try:
        async with session.begin_nested():
            session.add(key)
            await session.flush()
    except IntegrityError:
        existing = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.project_id == project_id,
                IdempotencyKey.scope == scope,
                IdempotencyKey.transaction_id == transaction_id,
            )
        )
        if existing is None:  # pragma: no cover - the winner rolled back; let the client retry
            raise Conflict(
                "A request with this transaction_id is in progress; retry.",
                code="idempotency_in_progress",
            ) from None
        if existing.request_hash != digest:
            raise Conflict(
                f"transaction_id '{transaction_id}' was already used with other parameters.",
                code="idempotency_mismatch",
            ) from None
        return existing, False
    return key, True


def remember_response(key: IdempotencyKey | None, body: Any) -> None:
    """Keep the first answer with its key: a repeat answers exactly that, whatever happened since.

    It is kept as JSON text, so that it comes back byte for byte (JSONB reorders keys).
    """
    if key is not None:
        key.result = {**key.result, "response": json.dumps(body, separators=(",", ":"))}


def remembered_response(key: IdempotencyKey) -> Any | None:
    """The first answer kept by ``remember_response`` (None for keys older than it)."""
    text = key.result.get("response")
    return None if text is None else json.loads(text)
