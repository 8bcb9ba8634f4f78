"""The poller: one batched cloud listing per cycle settles every waiting operation.

Each cycle lists servers and volumes changed since shortly before the oldest wait began (Nova's
and Cinder's ``changes-since``; deleted servers are included), then lets each waiting operation's
check look at that one snapshot. A watched server that does not show up for a while is fetched
on its own (clock skew between us and the cloud), and so is a watched volume the listing lacks, at
once (one deleted before this process first listed it, which Cinder lists nowhere); an operation
past its deadline fails. A listing refused with ``Retry-After`` (a 429, or a 503 that says when)
is not repeated before that time.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud import base as cb
from sog_api.db.base import utcnow
from sog_api.db.errors import is_unavailable
from sog_api.operations import models as opm
from sog_api.operations.models import Operation
from sog_api.settings import Settings
from sog_api.worker.apply import apply_step, mirror_progress
from sog_api.worker.failures import log_failure
from sog_api.worker.flows import FLOWS, Snapshot, Step, Watch, locked
from sog_api.worker.progress import OPENSTACK_FACTOR, band_progress
from sog_api.worker.reconcile import Reconciler

log = logging.getLogger("sog_api.worker")

CHANGES_MARGIN = timedelta(seconds=60)
STALE_AFTER = timedelta(seconds=30)
MAX_SINGLE_GETS = 20
MAX_QUIET_SECONDS = 300.0  # the longest Retry-After the poller honours


class Poller:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], cloud: cb.CloudBackend
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cloud = cloud
        self.cycles = 0
        self.reconciler = Reconciler(sessions, cloud)
        self._next_reconcile = 0.0
        self._quiet_until = 0.0  # monotonic time before which the cloud asked not to be listed
        if settings.cloud == "simulator":
            self.seconds_per_unit = settings.simulator_delay_scale
        else:
            self.seconds_per_unit = OPENSTACK_FACTOR

    async def reconcile_if_due(self) -> None:
        """Every ``reconcile_interval`` seconds, reflect drift of settled orbits."""
        now = time.monotonic()
        if now < self._next_reconcile or now < self._quiet_until:
            return
        self._next_reconcile = now + self.settings.reconcile_interval
        try:
            await self.reconciler.run_once()
        except cb.CloudError as exc:
            log.warning("reconcile_failed error=%s", exc.message)
            self._keep_quiet(exc)
        except Exception as exc:
            log_failure("reconcile_failed", exc)

    def _keep_quiet(self, exc: cb.CloudError) -> None:
        """Honour a ``Retry-After``: list nothing until then (progress and deadlines go on)."""
        if exc.retry_after:
            wait = min(exc.retry_after, MAX_QUIET_SECONDS)
            self._quiet_until = max(self._quiet_until, time.monotonic() + wait)

    async def poll_once(self) -> int:
        """Run one cycle; return how many waiting operations it looked at."""
        async with self.sessions() as session:
            ops = list(
                await session.scalars(
                    select(Operation)
                    .where(Operation.state == opm.WAITING)
                    .order_by(Operation.stage_started_at)
                    .limit(1000)
                )
            )
        if not ops:
            return 0
        self.cycles += 1
        snap = await self._snapshot(ops)
        for op in ops:
            try:
                await self._settle(op, snap)
            except Exception as exc:
                log_failure("settle_error", exc, op=op.id)
                if is_unavailable(exc):
                    break  # the others would meet it too: the next cycle settles them
        return len(ops)

    async def _snapshot(self, ops: list[Operation]) -> Snapshot:
        watches = {
            FLOWS[op.kind].checks[op.stage][0] for op in ops if op.stage in FLOWS[op.kind].checks
        }
        since = min(op.stage_started_at for op in ops) - CHANGES_MARGIN
        snap = Snapshot()
        if time.monotonic() < self._quiet_until:
            return snap
        try:
            if "server" in watches:
                snap.servers = {s.id: s for s in await self.cloud.list_servers(since)}
                snap.servers_listed = True
                await self._fill_stale(ops, "server", snap.servers)
            if "volume" in watches:
                snap.volumes = {v.id: v for v in await self.cloud.list_volumes(since)}
                snap.volumes_listed = True
                await self._fill_stale(ops, "volume", snap.volumes)
        except cb.CloudError as exc:
            log.warning("poll_listing_failed error=%s", exc.message)
            self._keep_quiet(exc)
        return snap

    async def _fill_stale(self, ops: list[Operation], watch: Watch, seen: dict[str, Any]) -> None:
        """Fetch, one by one, the watched servers or volumes the listing lacks for a while."""
        now = utcnow()
        # A server missing from Nova's listing is rare (it lists deleted ones): give clock skew
        # its time. A missing volume is most likely deleted (Cinder lists none): look at once.
        grace = STALE_AFTER if watch == "server" else timedelta(0)
        stale = [
            op for op in ops
            if now - op.stage_started_at >= grace and _watch(op) == watch
            and FLOWS[op.kind].watch_ids is not None
        ]  # fmt: skip
        if not stale:
            return
        async with self.sessions() as session:
            wanted = [i for op in stale for i in await FLOWS[op.kind].watch_ids(session, op)]  # type: ignore[misc]
        missing = [ident for ident in dict.fromkeys(wanted) if ident not in seen]
        for ident in missing[:MAX_SINGLE_GETS]:
            seen[ident] = await self._fetch(watch, ident)

    async def _fetch(self, watch: Watch, ident: str) -> cb.ServerInfo | cb.VolumeInfo:
        """One server or volume; a gone one comes back DELETED, as a listing shows it."""
        try:
            if watch == "server":
                return await self.cloud.get_server(ident)
            return await self.cloud.get_volume(ident)
        except cb.CloudNotFound:
            if watch == "server":
                return cb.ServerInfo(id=ident, name="", status=cb.SERVER_DELETED, flavor_ref="")
            return cb.VolumeInfo(id=ident, name="", status=cb.VOLUME_DELETED, size_gb=0)

    async def _settle(self, op: Operation, snap: Snapshot) -> None:
        flow = FLOWS[op.kind]
        async with self.sessions.begin() as session:
            row: Operation | None = await locked(session, Operation, op.id)
            if row is None or row.state != opm.WAITING or row.stage != op.stage:
                return  # another poller got there first
            now = utcnow()
            if now > row.deadline_at:
                await apply_step(
                    session,
                    flow,
                    row,
                    Step.fail("The operation did not finish before its deadline."),
                )
                return
            watch, check = flow.checks[row.stage]
            listed = snap.servers_listed if watch == "server" else snap.volumes_listed
            step = await check(session, row, snap) if listed else None
            if step is not None:
                await apply_step(session, flow, row, step)
                return
            band = flow.bands[row.stage]
            progress = band_progress(band, row.stage_started_at, now, self.seconds_per_unit)
            if progress > row.progress:
                row.progress = progress
                await mirror_progress(session, row)


def _watch(op: Operation) -> Watch | None:
    """What the operation's current stage watches (None for an action stage)."""
    check = FLOWS[op.kind].checks.get(op.stage)
    return check[0] if check else None
