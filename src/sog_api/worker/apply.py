"""Recording a step: the one place that moves an operation from stage to stage."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import RetryCallState, wait_exponential, wait_random_exponential

from sog_api.db.base import utcnow
from sog_api.operations import models as opm
from sog_api.operations.models import Operation
from sog_api.orbits.models import Orbit
from sog_api.worker.flows import Flow, Step

log = logging.getLogger("sog_api.worker")

# "Equal jitter": half of the capped exponential delay is fixed, the other half random, so that
# operations that failed together (a cloud outage) spread out again, even at the cap.
BACKOFF_CAP = 30.0
_BACKOFF = wait_exponential(multiplier=0.5, max=BACKOFF_CAP / 2) + wait_random_exponential(
    multiplier=0.5, max=BACKOFF_CAP / 2
)


def backoff_seconds(attempt: int) -> float:
    """Capped exponential backoff with jitter for the ``attempt``-th retry (from 1): between
    0.5 and 1 s at first, doubling, then between 15 and 30 s."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    return float(_BACKOFF(state))


async def apply_step(session: AsyncSession, flow: Flow, op: Operation, step: Step) -> None:
    """Move the (locked) operation on by one step; shared by the runner and the poller."""
    now = utcnow()
    if step.apply is not None:
        await step.apply(session)
    op.lease_owner, op.lease_expires_at = None, None
    if step.outcome in ("wait", "next"):
        assert step.stage is not None
        op.state = opm.WAITING if step.outcome == "wait" else opm.QUEUED
        op.stage, op.stage_started_at, op.run_after = step.stage, now, now
        op.error = None
        op.progress = max(op.progress, flow.bands[step.stage].low)
        await mirror_progress(session, op)
    elif step.outcome == "retry":
        op.state = opm.QUEUED
        op.error = step.message
        delay = step.delay if step.delay is not None else backoff_seconds(op.attempts)
        op.run_after = now + timedelta(seconds=delay)
        if op.run_after > op.deadline_at:
            await _finish(session, flow, op, "The operation did not finish before its deadline: "
                          f"{step.message}")  # fmt: skip
    elif step.outcome == "done":
        op.state, op.progress, op.finished_at, op.error = opm.SUCCEEDED, 100, now, None
        op.secret = None
        log.info("operation_succeeded op=%s kind=%s", op.id, op.kind)
    else:
        await _finish(session, flow, op, step.message or "failed")


async def _finish(session: AsyncSession, flow: Flow, op: Operation, message: str) -> None:
    op.state, op.finished_at, op.error, op.secret = opm.FAILED, utcnow(), message, None
    log.warning("operation_failed op=%s kind=%s stage=%s error=%s", op.id, op.kind, op.stage,
                message)  # fmt: skip
    await flow.on_fail(session, op, message)


async def mirror_progress(session: AsyncSession, op: Operation) -> None:
    """Show the operation's progress on the orbit it is carrying out."""
    if op.orbit_id is not None:
        await session.execute(
            update(Orbit)
            .where(
                Orbit.id == op.orbit_id, Orbit.operation_id == op.id, Orbit.progress < op.progress
            )
            .values(progress=op.progress)
        )
