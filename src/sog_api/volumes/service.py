"""The volume rules of the contract: the only place that changes a volume's status on request.

Every change loads the volume row under a lock (``FOR UPDATE`` on PostgreSQL; SQLite transactions
start with ``BEGIN IMMEDIATE``), and the orbit row after it when the change involves one (always
in that order, as the worker does), checks the rule, changes the status and adds the operation
that carries it out, all in the caller's one transaction, so two racing requests cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog import repository as catalog
from sog_api.catalog.models import VolumeTemplate
from sog_api.errors import Conflict, InvalidParameter, NotFound
from sog_api.operations.models import IdempotencyKey, Operation
from sog_api.operations.service import claim_key, new_operation, remembered_response, request_hash
from sog_api.orbits import models as om
from sog_api.orbits import service as orbit_service
from sog_api.orbits.models import Orbit
from sog_api.projects.quotas import check_quota, quota_reserve
from sog_api.settings import Settings
from sog_api.volumes import models as vm
from sog_api.volumes.models import Volume
from sog_api.volumes.schemas import (
    VolumeCreateQuery,
    VolumeListQuery,
    VolumePatchQuery,
    VolumePutQuery,
)


@dataclass
class Outcome:
    """What a mutating request produced: the volume and the operation carrying the change out.

    For a create with a ``transaction_id``: ``key`` is the key a fresh request claimed (keep
    the answer with it), and ``response`` is the first answer when this request repeats it.
    """

    volume: Volume | None
    operation_id: str | None
    key: IdempotencyKey | None = None
    response: Any = None


async def list_volumes(
    session: AsyncSession, project_id: int, query: VolumeListQuery
) -> tuple[list[Volume], int]:
    """One page of the project's volumes, and how many match in all."""
    where = [Volume.project_id == project_id, Volume.deleted_at.is_(None)]
    if query.status:
        where.append(Volume.status == query.status)
    total = await session.scalar(select(func.count()).select_from(Volume).where(*where))
    rows = await session.scalars(
        select(Volume).where(*where).order_by(Volume.id).limit(query.limit).offset(query.offset)
    )
    return list(rows), int(total or 0)


async def get_volume(
    session: AsyncSession, project_id: int, volume_id: int, *, lock: bool = False
) -> Volume:
    """The project's volume, or 404 (another project's volume is a 404 too)."""
    query = select(Volume).where(
        Volume.id == volume_id, Volume.project_id == project_id, Volume.deleted_at.is_(None)
    )
    if lock:
        query = query.with_for_update()
    volume = await session.scalar(query.execution_options(populate_existing=True))
    if volume is None:
        raise NotFound(f"Volume {volume_id} not found")
    return volume


def _refuse_if_busy(volume: Volume) -> None:
    if volume.status in vm.VOLUME_TRANSITIONAL:
        raise Conflict(vm.busy_message(volume.status), code="volume_busy")


def _refuse_if_error(volume: Volume) -> None:
    if volume.status == vm.V_ERROR:
        raise Conflict(
            "Volume is in Error status; it can only be detached or deleted.", code="volume_error"
        )


def _refuse_unless_attachable(orbit: Orbit) -> None:
    """Attach only to an orbit whose server exists and is not in the middle of a change."""
    if orbit.status in om.TRANSITIONAL:
        raise Conflict(orbit_service.busy_message(orbit.status), code="orbit_busy")
    if orbit.status == om.ERROR or orbit.server_id is None:
        raise Conflict(
            "Virtual Machine is in error status; volumes cannot be attached to it.",
            code="orbit_error",
        )


def _start(
    session: AsyncSession, settings: Settings, volume: Volume, status: str, kind: str,
    stage: str, orbit_id: int | None = None, params: dict[str, Any] | None = None,
) -> Operation:  # fmt: skip
    operation = new_operation(
        session, settings, project_id=volume.project_id, kind=kind, stage=stage,
        volume_id=volume.id, orbit_id=orbit_id, params=params,
    )  # fmt: skip
    volume.status = status
    volume.fault = None
    volume.operation_id = operation.id
    return operation


# -- create ------------------------------------------------------------------------------------


async def _check_capacity(session: AsyncSession, capacity: int) -> None:
    capacities = [t.capacity for t in await catalog.active_templates(session)]
    if capacity not in capacities:
        allowed = ", ".join(str(c) for c in capacities)
        raise InvalidParameter("capacity", f"must be one of the templates' capacities: {allowed}")


async def _attach_target(session: AsyncSession, project_id: int, orbit_id: int) -> Orbit:
    try:
        orbit = await orbit_service.get_orbit(session, project_id, orbit_id, lock=True)
    except NotFound:
        raise NotFound.referenced("attach_to", "Orbit", orbit_id) from None
    _refuse_unless_attachable(orbit)
    return orbit


async def create_volume(
    session: AsyncSession, settings: Settings, project_id: int, query: VolumeCreateQuery
) -> Outcome:
    """Record a new volume and the operation that makes it (and attaches it, with attach_to).

    With a ``transaction_id``, a repeat of an earlier identical request answers what it did.
    """
    key = None
    if query.transaction_id is not None:
        digest = request_hash(settings, query.model_dump())
        key, fresh = await claim_key(
            session, project_id=project_id, scope="volume.create",
            transaction_id=query.transaction_id, digest=digest,
        )  # fmt: skip
        if not fresh:
            return Outcome(None, key.result.get("operation_id"), response=remembered_response(key))
    await _check_capacity(session, query.capacity)
    orbit = None
    if query.attach_to is not None:
        orbit = await _attach_target(session, project_id, query.attach_to)
    await check_quota(session, project_id, volume_gb=query.capacity)
    volume = Volume(
        project_id=project_id, nickname=query.nickname, size_gb=query.capacity,
        status=vm.V_CREATING, is_root=False, is_bootable=False,
        availability_zone=orbit.availability_zone if orbit else None,
    )  # fmt: skip
    session.add(volume)
    await session.flush()
    params = {"partition": query.partition} if orbit and query.partition else {}
    operation = _start(
        session, settings, volume, vm.V_CREATING, "volume.create", "create",
        orbit_id=orbit.id if orbit else None, params=params,
    )  # fmt: skip
    if key is not None:
        key.result = {"operation_id": operation.id, "volume_id": volume.id}
    await session.flush()
    return Outcome(volume, operation.id, key=key)


# -- edit --------------------------------------------------------------------------------------


async def update_volume(
    session: AsyncSession, project_id: int, volume_id: int, query: VolumePutQuery | VolumePatchQuery
) -> Volume:
    """Rename a volume (PUT needs the nickname; PATCH changes it only when given)."""
    volume = await get_volume(session, project_id, volume_id, lock=True)
    if volume.status == vm.V_DELETING:
        raise Conflict(vm.busy_message(volume.status), code="volume_busy")
    if query.nickname is not None:
        volume.nickname = query.nickname
    await session.flush()
    return volume


# -- attach, detach ----------------------------------------------------------------------------


async def attach_volume(
    session: AsyncSession, settings: Settings, project_id: int, volume_id: int, orbit_id: int
) -> Outcome:
    """Start attaching an AVAILABLE volume to a settled orbit of the same project."""
    volume = await get_volume(session, project_id, volume_id, lock=True)
    orbit = await orbit_service.get_orbit(session, project_id, orbit_id, lock=True)
    _refuse_if_busy(volume)
    if volume.orbit_id is not None or volume.status == vm.V_RUNNING:
        raise Conflict("Volume is already attached to Virtual Machine.", code="volume_attached")
    _refuse_if_error(volume)
    _refuse_unless_attachable(orbit)
    operation = _start(
        session, settings, volume, vm.V_ATTACHING, "volume.attach", "attach", orbit_id=orbit.id
    )
    volume.orbit_id = orbit.id
    await session.flush()
    return Outcome(volume, operation.id)


async def detach_volume(
    session: AsyncSession, settings: Settings, project_id: int, volume_id: int
) -> Outcome:
    """Start detaching a data volume from its orbit."""
    volume = await get_volume(session, project_id, volume_id, lock=True)
    _refuse_if_busy(volume)
    if volume.orbit_id is None:
        raise Conflict("Volume is not attached to any Virtual Machine.", code="volume_not_attached")
    if volume.is_root:
        raise Conflict(
            "The root volume of a Virtual Machine cannot be detached; delete the Virtual Machine"
            " (with delete_root false) to keep it.",
            code="volume_is_root",
        )
    orbit = await orbit_service.get_orbit(session, project_id, volume.orbit_id, lock=True)
    if orbit.status in om.TRANSITIONAL:
        raise Conflict(orbit_service.busy_message(orbit.status), code="orbit_busy")
    operation = _start(
        session, settings, volume, vm.V_DETACHING, "volume.detach", "detach", orbit_id=orbit.id
    )
    await session.flush()
    return Outcome(volume, operation.id)


# -- resize, delete ----------------------------------------------------------------------------


async def resize_options(session: AsyncSession, volume: Volume) -> list[VolumeTemplate]:
    """The templates larger than the volume, smallest first."""
    return [t for t in await catalog.active_templates(session) if t.capacity > volume.size_gb]


async def resize_volume(
    session: AsyncSession, settings: Settings, project_id: int, volume_id: int, template_id: int
) -> Outcome:
    """Start growing a volume: at once when detached, only while its orbit is PAUSED otherwise."""
    volume = await get_volume(session, project_id, volume_id, lock=True)
    _refuse_if_busy(volume)
    _refuse_if_error(volume)
    if volume.orbit_id is not None:
        orbit = await orbit_service.get_orbit(session, project_id, volume.orbit_id, lock=True)
        if orbit.status != om.PAUSED:
            raise Conflict("Please Pause the VM first", code="orbit_not_paused")
    template = next((t for t in await resize_options(session, volume) if t.id == template_id), None)
    if template is None:
        raise InvalidParameter(
            "template_id", f"template {template_id} is not among the resize options"
        )
    growth = template.capacity - volume.size_gb
    await check_quota(session, project_id, volume_gb=growth)
    operation = _start(
        session, settings, volume, vm.V_RESIZING, "volume.extend", "extend",
        orbit_id=volume.orbit_id,
        params={"size_gb": template.capacity, "old_size_gb": volume.size_gb,
                "from_status": volume.status, **quota_reserve(volume_gb=growth)},
    )  # fmt: skip
    await session.flush()
    return Outcome(volume, operation.id)


async def delete_volume(
    session: AsyncSession, settings: Settings, project_id: int, volume_id: int
) -> Outcome:
    """Start deleting a detached volume (ERROR included)."""
    volume = await get_volume(session, project_id, volume_id, lock=True)
    _refuse_if_busy(volume)
    if volume.orbit_id is not None and volume.is_root:  # detaching it is refused too
        raise Conflict(
            "The root volume of a Virtual Machine goes with it: delete the Virtual Machine with"
            " delete_root true.",
            code="volume_is_root",
        )
    if volume.orbit_id is not None:
        raise Conflict("Please detach the volume before delete it", code="volume_attached")
    operation = _start(
        session, settings, volume, vm.V_DELETING, "volume.delete", "delete",
        params={"from_status": volume.status},
    )  # fmt: skip
    await session.flush()
    return Outcome(volume, operation.id)
