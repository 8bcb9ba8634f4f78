"""Per-project quotas: orbits, vCPUs, RAM GB and volume GB (a null limit means unlimited).

``check_quota`` locks the project row (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite transactions
are ``BEGIN IMMEDIATE``) before it counts, so two racing creates of one project are serialised and
cannot both slip under a limit. Call it in the transaction that adds the resources, *before*
adding them, and after locking the other rows the request needs (resources first, the project
row last: one lock order everywhere, no deadlocks).

Growth that the cloud has not carried out yet (a resize in flight) is not in the resource rows;
put ``quota_reserve(...)`` into the operation's params and it counts as used while the
operation is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog.models import Flavor
from sog_api.errors import Forbidden, NotFound
from sog_api.operations.models import OPEN_STATES, Operation
from sog_api.orbits.models import Orbit
from sog_api.projects.models import Project
from sog_api.volumes.models import Volume

RESERVE_PARAM = "quota_reserve"
# quota name: (project column, how the refusal names it)
QUOTAS = {
    "orbits": ("quota_orbits", "orbits"),
    "vcpus": ("quota_vcpus", "vCPUs"),
    "ram": ("quota_ram_gb", "GB of RAM"),
    "volume_gb": ("quota_volume_gb", "GB of volumes"),
}


class QuotaExceeded(Forbidden):
    code = "quota_exceeded"


@dataclass
class Usage:
    orbits: int = 0
    vcpus: int = 0
    ram: int = 0
    volume_gb: int = 0


def quota_reserve(*, vcpus: int = 0, ram: int = 0, volume_gb: int = 0) -> dict[str, Any]:
    """Operation params holding growth not yet made, e.g. ``params={..., **quota_reserve(...)}``."""
    amounts = {k: v for k, v in (("vcpus", vcpus), ("ram", ram), ("volume_gb", volume_gb)) if v > 0}
    return {RESERVE_PARAM: amounts} if amounts else {}


async def usage(session: AsyncSession, project_id: int) -> Usage:
    """What the project's live orbits and volumes use, with growth reserved by open operations."""
    orbits, vcpus, ram = (
        await session.execute(
            select(
                func.count(Orbit.id),
                func.coalesce(func.sum(Flavor.vcpus), 0),
                func.coalesce(func.sum(Flavor.ram), 0),
            )
            .join(Flavor, Flavor.id == Orbit.flavor_id)
            .where(Orbit.project_id == project_id, Orbit.deleted_at.is_(None))
        )
    ).one()
    volume_gb = await session.scalar(
        select(func.coalesce(func.sum(Volume.size_gb), 0)).where(
            Volume.project_id == project_id, Volume.deleted_at.is_(None)
        )
    )
    used = Usage(orbits=int(orbits), vcpus=int(vcpus), ram=int(ram), volume_gb=int(volume_gb or 0))
    open_params = await session.scalars(
        select(Operation.params).where(
            Operation.project_id == project_id, Operation.state.in_(OPEN_STATES)
        )
    )
    for params in open_params:
        for name, amount in (params or {}).get(RESERVE_PARAM, {}).items():
            if name in ("vcpus", "ram", "volume_gb"):
                setattr(used, name, getattr(used, name) + int(amount))
    return used


async def check_quota(
    session: AsyncSession,
    project_id: int,
    *,
    orbits: int = 0,
    vcpus: int = 0,
    ram: int = 0,
    volume_gb: int = 0,
) -> None:
    """Lock the project row; refuse (403 ``quota_exceeded``) what would go over a quota."""
    # NO KEY UPDATE: exclusive between quota checks, but compatible with the KEY SHARE lock
    # that inserting a row referencing the project takes (FOR UPDATE would deadlock with it).
    project = await session.scalar(
        select(Project)
        .where(Project.id == project_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if project is None:
        raise NotFound(f"Project {project_id} not found")
    wanted = {"orbits": orbits, "vcpus": vcpus, "ram": ram, "volume_gb": volume_gb}
    limited = {
        name: limit
        for name, (column, _label) in QUOTAS.items()
        if wanted[name] > 0 and (limit := getattr(project, column)) is not None
    }
    if not limited:
        return
    used = await usage(session, project_id)
    for name, limit in limited.items():
        in_use = getattr(used, name)
        if in_use + wanted[name] > limit:
            raise _refusal(name, limit, in_use, wanted[name])


def _refusal(name: str, limit: int, in_use: int, requested: int) -> QuotaExceeded:
    label = QUOTAS[name][1]
    detail = (
        f"Quota exceeded for {label}: the project may use {limit}, uses {in_use},"
        f" and this request needs {requested} more."
    )
    entry = {
        "loc": ["quota", name], "msg": detail, "type": "quota_exceeded",
        "quota": name, "limit": limit, "in_use": in_use, "requested": requested,
    }  # fmt: skip
    return QuotaExceeded(detail, errors=[entry])
