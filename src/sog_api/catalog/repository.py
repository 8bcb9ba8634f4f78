"""Catalogue queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog.models import AvailabilityZone, Flavor, Image, VolumeTemplate


async def active_flavors(session: AsyncSession) -> list[Flavor]:
    rows = await session.scalars(
        select(Flavor).where(Flavor.active.is_(True)).order_by(Flavor.hourly, Flavor.id)
    )
    return list(rows)


async def active_images(session: AsyncSession) -> list[Image]:
    return list(
        await session.scalars(select(Image).where(Image.active.is_(True)).order_by(Image.id))
    )


async def active_templates(session: AsyncSession) -> list[VolumeTemplate]:
    rows = await session.scalars(
        select(VolumeTemplate)
        .where(VolumeTemplate.active.is_(True))
        .order_by(VolumeTemplate.capacity)
    )
    return list(rows)


async def zone_names(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(AvailabilityZone.name).where(AvailabilityZone.active.is_(True))
    )
    return sorted(rows)


async def get_flavor(
    session: AsyncSession, flavor_id: int, *, active: bool = True
) -> Flavor | None:
    flavor = await session.get(Flavor, flavor_id)
    if flavor is None or (active and not flavor.active):
        return None
    return flavor


async def get_image(session: AsyncSession, image_id: int, *, active: bool = True) -> Image | None:
    image = await session.get(Image, image_id)
    if image is None or (active and not image.active):
        return None
    return image
