"""Shape orbit rows into the contract's summary and detail documents, in few queries."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog.models import Flavor, Image
from sog_api.http import size_label
from sog_api.orbits.models import Orbit
from sog_api.orbits.schemas import OrbitDetail, OrbitSummary, VolumeModelRead
from sog_api.volumes.models import Volume


async def _flavors(session: AsyncSession, orbits: list[Orbit]) -> dict[int, Flavor]:
    ids = {o.flavor_id for o in orbits}
    if not ids:
        return {}
    return {f.id: f for f in await session.scalars(select(Flavor).where(Flavor.id.in_(ids)))}


def _summary_fields(orbit: Orbit, flavor: Flavor) -> dict[str, Any]:
    return {
        "availability_zone": orbit.availability_zone,
        "created_at": orbit.created_at,
        "delete_root": orbit.delete_root,
        "description": orbit.description,
        "fault": orbit.fault,
        "flavor_id": orbit.flavor_id,
        "id": orbit.id,
        "image_id": orbit.image_id,
        "ipaddr": orbit.ipaddr,
        "is_active": orbit.is_active,
        "operation_id": orbit.operation_id,
        "progress": orbit.progress,
        "ram": flavor.ram,
        "status": orbit.status,
        "updated_at": orbit.updated_at,
        "vcpus": flavor.vcpus,
        "vm_name": orbit.vm_name,
    }


async def summaries(session: AsyncSession, orbits: list[Orbit]) -> list[OrbitSummary]:
    flavors = await _flavors(session, orbits)
    return [OrbitSummary(**_summary_fields(o, flavors[o.flavor_id])) for o in orbits]


async def image_names(session: AsyncSession, image_ids: set[int]) -> dict[int, str]:
    if not image_ids:
        return {}
    rows = await session.execute(select(Image.id, Image.image_name).where(Image.id.in_(image_ids)))
    return {row.id: row.image_name for row in rows}


async def details(session: AsyncSession, orbits: list[Orbit]) -> list[OrbitDetail]:
    flavors = await _flavors(session, orbits)
    by_orbit: dict[int, list[Volume]] = defaultdict(list)
    if orbits:
        volumes = await session.scalars(
            select(Volume)
            .where(Volume.orbit_id.in_([o.id for o in orbits]), Volume.deleted_at.is_(None))
            .order_by(Volume.is_root.desc(), Volume.id)
        )
        for volume in volumes:
            by_orbit[volume.orbit_id or 0].append(volume)
    names = await image_names(
        session, {v.source_image_id for vs in by_orbit.values() for v in vs if v.source_image_id}
    )
    result = []
    for orbit in orbits:
        volume_model = [
            VolumeModelRead(
                created_at=v.created_at,
                id=v.id,
                is_root=v.is_root,
                nickname=v.nickname,
                partition=v.partition,
                size=size_label(v.size_gb),
                size_gb=v.size_gb,
                source_image=names.get(v.source_image_id) if v.source_image_id else None,
                status=v.status,
            )
            for v in by_orbit[orbit.id]
        ]
        result.append(
            OrbitDetail(
                **_summary_fields(orbit, flavors[orbit.flavor_id]),
                ssh_key_value=orbit.ssh_key_value,
                volume_model=volume_model,
            )
        )
    return result


async def detail(session: AsyncSession, orbit: Orbit) -> OrbitDetail:
    return (await details(session, [orbit]))[0]
