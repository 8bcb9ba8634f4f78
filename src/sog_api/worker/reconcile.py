"""Drift: reflect what happened to settled orbits' servers behind our back.

Someone may stop, pause, break or delete a server with the cloud's own tools. Every
``SOG_RECONCILE_INTERVAL`` seconds the poller lists the servers changed since the last pass (one
call) and moves each settled orbit to the status its server shows. An orbit whose row changed
after the listing began is left for the next pass (which looks at the same changes again), so a
listing taken just before one of our operations finished cannot undo it. The server's own
``updated`` time is not compared with ours: Nova floors it to the second and the cloud's clock
is not ours, so such a comparison loses changes made within a second (or the clock skew) of
any update of the orbit's row.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud import base as cb
from sog_api.db.base import utcnow
from sog_api.orbits import models as om
from sog_api.orbits.models import Orbit

log = logging.getLogger("sog_api.worker")

SETTLED = (om.RUNNING, om.PAUSED, om.STOPPED, om.ERROR)
MARGIN = timedelta(seconds=60)
DELETED_FAULT = "The server was deleted outside sog-api."


def drifted_status(info: cb.ServerInfo) -> tuple[str, str | None] | None:
    """The orbit status (and fault) a settled server's state means, or None to leave it."""
    if info.task_state is not None:
        return None
    if info.status == cb.SERVER_DELETED:
        return om.ERROR, DELETED_FAULT
    if info.status == cb.SERVER_ERROR:
        return om.ERROR, info.fault or "The server went into ERROR in the cloud."
    mapping = {cb.SERVER_ACTIVE: om.RUNNING, cb.SERVER_PAUSED: om.PAUSED,
               cb.SERVER_SHUTOFF: om.STOPPED}  # fmt: skip
    status = mapping.get(info.status)
    return (status, None) if status else None


class Reconciler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cloud: cb.CloudBackend) -> None:
        self.sessions = sessions
        self.cloud = cloud
        self.last_pass: datetime | None = None

    async def run_once(self) -> int:
        """List changed servers once and settle drifted orbits; return how many changed."""
        started = utcnow()
        since = self.last_pass - MARGIN if self.last_pass else None
        servers = {s.id: s for s in await self.cloud.list_servers(since)}
        changed, deferred = 0, False
        async with self.sessions.begin() as session:
            orbits = await session.scalars(
                select(Orbit)
                .where(
                    Orbit.status.in_(SETTLED),
                    Orbit.deleted_at.is_(None),
                    Orbit.server_id.is_not(None),
                )
                .with_for_update()
            )
            for orbit in orbits:
                info = servers.get(orbit.server_id or "")
                if info is None and since is None:  # a full listing that lacks it: gone
                    info = cb.ServerInfo(orbit.server_id or "", "", cb.SERVER_DELETED, "")
                if info is None:
                    continue
                if orbit.updated_at >= started:  # changed while we listed: look again next pass
                    deferred = True
                    continue
                changed += self._apply(orbit, info)
        if not deferred:
            self.last_pass = started
        return changed

    @staticmethod
    def _apply(orbit: Orbit, info: cb.ServerInfo) -> int:
        drift = drifted_status(info)
        if drift is None or (orbit.status, orbit.fault) == drift:
            return 0
        if orbit.status == om.ERROR and orbit.fault == DELETED_FAULT:
            return 0  # nothing brings a deleted server back
        log.warning("orbit_drift orbit=%s from=%s to=%s", orbit.id, orbit.status, drift[0])
        orbit.status, orbit.fault = drift
        if info.ip:
            orbit.ipaddr = info.ip
        return 1
