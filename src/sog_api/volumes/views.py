"""Shape volume rows into the contract's volume documents, in few queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.http import size_label
from sog_api.orbits import views as orbit_views
from sog_api.orbits.models import Orbit
from sog_api.volumes.models import Volume
from sog_api.volumes.schemas import VolumeDetail, VolumeRead


async def _orbits(session: AsyncSession, volumes: list[Volume]) -> dict[int, Orbit]:
    ids = {v.orbit_id for v in volumes if v.orbit_id is not None}
    if not ids:
        return {}
    rows = await session.scalars(select(Orbit).where(Orbit.id.in_(ids), Orbit.deleted_at.is_(None)))
    return {o.id: o for o in rows}


def _fields(volume: Volume, orbit: Orbit | None, image_names: dict[int, str]) -> dict[str, Any]:
    return {
        "attached_to": orbit.vm_name if orbit else None,
        "created_at": volume.created_at,
        "fault": volume.fault,
        "id": volume.id,
        "is_bootable": volume.is_bootable,
        "is_root": volume.is_root,
        "nickname": volume.nickname,
        "operation_id": volume.operation_id,
        "orbit_id": volume.orbit_id,
        "partition": volume.partition,
        "size": size_label(volume.size_gb),
        "size_gb": volume.size_gb,
        "source_image": image_names.get(volume.source_image_id) if volume.source_image_id else None,
        "status": volume.status,
        "updated_at": volume.updated_at,
    }


async def reads(session: AsyncSession, volumes: list[Volume]) -> list[VolumeRead]:
    orbits = await _orbits(session, volumes)
    names = await orbit_views.image_names(
        session, {v.source_image_id for v in volumes if v.source_image_id}
    )
    return [VolumeRead(**_fields(v, orbits.get(v.orbit_id or 0), names)) for v in volumes]


async def read(session: AsyncSession, volume: Volume) -> VolumeRead:
    return (await reads(session, [volume]))[0]


async def detail(session: AsyncSession, volume: Volume) -> VolumeDetail:
    """The volume plus a summary of the orbit it is attached to (or null)."""
    orbit = (await _orbits(session, [volume])).get(volume.orbit_id or 0)
    names = await orbit_views.image_names(
        session, {volume.source_image_id} if volume.source_image_id else set()
    )
    summary = (await orbit_views.summaries(session, [orbit]))[0] if orbit else None
    return VolumeDetail(**_fields(volume, orbit, names), virtual_machine=summary)
