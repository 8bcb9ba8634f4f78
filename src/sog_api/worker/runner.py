"""The worker: runners claim queued operations and run their actions; a poller settles waits.

Claims take a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several worker processes share
one queue); the worker renews it every third of its length while the step runs, and records the
step's result only while the lease is still ours. A worker killed at any instant leaves operations
``running`` under a lease that expires, and another worker (or this one after a restart) takes
them over. A step that outlasts ``worker_step_timeout`` is retried, but only once its cloud call
has ended. Every action is idempotent: creates look for what an earlier attempt made (tagged with
the operation id) before making anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud.base import CloudBackend, CloudError
from sog_api.db.base import utcnow
from sog_api.db.errors import is_unavailable
from sog_api.operations import models as opm
from sog_api.operations.models import Operation
from sog_api.settings import Settings
from sog_api.worker import orbit_flows as _orbit_flows  # noqa: F401  (registers the flows)
from sog_api.worker import volume_flows as _volume_flows  # noqa: F401  (registers the flows)
from sog_api.worker.apply import apply_step, backoff_seconds
from sog_api.worker.context import ActionContext
from sog_api.worker.failures import log_failure
from sog_api.worker.flows import FLOWS, Flow, Step, locked
from sog_api.worker.poller import Poller

log = logging.getLogger("sog_api.worker")

MAX_UNEXPECTED_ATTEMPTS = 5
# The error an operation shows while a step that may have reached the cloud is done again.
TAKEN_OVER = "The worker running this step stopped; another attempt is being made."
GIVEN_BACK = "The worker running this step was stopped; another attempt is being made."


class Worker:
    """Runs operations until stopped; one per process is enough, several share the queue."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        cloud: CloudBackend,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cloud = cloud
        self.wake = wake or asyncio.Event()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.poller = Poller(settings, sessions, cloud)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._runner_loop(n), name=f"sog-runner-{n}")
            for n in range(self.settings.worker_concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._poller_loop(), name="sog-poller"))

    async def stop(self, grace: float | None = None) -> None:
        """Finish the steps in hand (up to ``grace`` seconds), then release what is still held."""
        if grace is None:
            grace = self.settings.worker_shutdown_grace
        self._stopping.set()
        self.wake.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.release_held()

    async def release_held(self) -> None:
        """Give back the operations this worker holds, so another can take them at once."""
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(Operation)
                    .where(Operation.state == opm.RUNNING, Operation.lease_owner == self.id)
                    .values(
                        state=opm.QUEUED,
                        lease_owner=None,
                        lease_expires_at=None,
                        error=func.coalesce(Operation.error, GIVEN_BACK),
                    )
                )
        except Exception as exc:  # the database may be gone at shutdown; leases expire anyway
            log_failure("release_failed", exc, worker=self.id)

    async def _runner_loop(self, n: int) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.run_once()
            except Exception as exc:
                log_failure("runner_error", exc)
                worked = False
            if not worked:
                await self._sleep(self.settings.worker_poll_interval, wakeable=True)

    async def _poller_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poller.poll_once()
                await self.poller.reconcile_if_due()
            except Exception as exc:
                log_failure("poller_error", exc)
            await self._sleep(self.settings.worker_poll_interval, wakeable=False)

    async def _sleep(self, seconds: float, *, wakeable: bool) -> None:
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self.wake.wait()))
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if wakeable:
            self.wake.clear()

    # -- one operation -------------------------------------------------------------------------

    async def run_once(self) -> bool:
        """Claim one operation and run its current action; False when none was ready."""
        op = await self.claim()
        if op is None:
            return False
        self.wake.set()  # there may be more: let another runner look
        flow = FLOWS[op.kind]
        renewal = asyncio.create_task(self._keep_lease(op.id), name=f"sog-lease-{op.id}")
        try:
            step = await self._execute(flow, op)
        finally:
            renewal.cancel()
        log.info(
            "operation_step op=%s kind=%s stage=%s outcome=%s attempt=%s worker=%s",
            op.id, op.kind, op.stage, step.outcome, op.attempts, self.id,
        )  # fmt: skip
        await self.record(flow, op, step)
        return True

    async def _keep_lease(self, op_id: str) -> None:
        """Renew the claim every third of the lease while its step runs."""
        lease = self.settings.worker_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                async with self.sessions.begin() as session:
                    result = await session.execute(
                        update(Operation)
                        .where(
                            Operation.id == op_id,
                            Operation.state == opm.RUNNING,
                            Operation.lease_owner == self.id,
                        )
                        .values(lease_expires_at=utcnow() + timedelta(seconds=lease))
                    )
            except Exception as exc:  # the database may be away for a moment: try again next time
                log_failure("lease_renewal_failed", exc, op=op_id)
                continue
            if cast(CursorResult[Any], result).rowcount == 0:
                log.warning("lease_lost op=%s worker=%s", op_id, self.id)
                return

    async def claim(self) -> Operation | None:
        now = utcnow()
        async with self.sessions.begin() as session:
            query = (
                select(Operation)
                .where(
                    or_(
                        (Operation.state == opm.QUEUED) & (Operation.run_after <= now),
                        (Operation.state == opm.RUNNING) & (Operation.lease_expires_at < now),
                    )
                )
                .order_by(Operation.run_after)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            op = await session.scalar(query)
            if op is None:
                return None
            if op.state == opm.RUNNING and op.error is None:
                # its worker died, or lost the database, during the step: the step may have
                # reached the cloud, so the actions must treat a refusal as a possible repeat
                op.error = TAKEN_OVER
            op.state = opm.RUNNING
            op.lease_owner = self.id
            op.lease_expires_at = now + timedelta(seconds=self.settings.worker_lease_seconds)
            op.attempts += 1
            return op

    async def _execute(self, flow: Flow, op: Operation) -> Step:
        if utcnow() > op.deadline_at:
            return Step.fail("The operation did not finish before its deadline.")
        action = flow.actions.get(op.stage)
        if action is None:
            return Step.fail(f"internal: no action for stage {op.stage}")
        context = ActionContext(op, self.cloud, self.settings, self.sessions)
        timeout = self.settings.worker_step_timeout
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                return await action(context)
        except CloudError as exc:
            if exc.transient:
                return Step.retry(exc.message, delay=exc.retry_after)
            return Step.fail(exc.message)
        except Exception as exc:
            if limit.expired():
                return Step.retry(f"The step did not finish within {timeout:g} s.")
            if is_unavailable(exc):  # not the operation's fault: no attempt counts against it
                log.warning("action_database_unavailable op=%s error=%s", op.id, type(exc).__name__)
                return Step.retry("The database was unavailable; retrying.", backoff_seconds(1))
            log.exception("action_error op=%s kind=%s stage=%s", op.id, op.kind, op.stage)
            if op.attempts >= MAX_UNEXPECTED_ATTEMPTS:
                return Step.fail(f"internal error: {type(exc).__name__}")
            return Step.retry(f"internal error: {type(exc).__name__}")

    async def record(self, flow: Flow, op: Operation, step: Step) -> None:
        """Store the step's result, if we still hold the lease."""
        async with self.sessions.begin() as session:
            row: Operation | None = await locked(session, Operation, op.id)
            if row is None or row.state != opm.RUNNING or row.lease_owner != self.id:
                log.warning("lease_lost op=%s", op.id)
                return
            await apply_step(session, flow, row, step)
        if step.outcome in ("next", "retry"):
            self.wake.set()
