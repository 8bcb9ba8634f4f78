"""Compare the catalogue with what the cloud offers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog import repository as repo
from sog_api.cloud.base import CloudBackend


async def missing_in_cloud(session: AsyncSession, cloud: CloudBackend) -> list[str]:
    """One line per active catalogue flavor or image whose backend name or id the cloud lacks."""
    flavors = await cloud.list_flavors()
    images = await cloud.list_images()
    known_flavors = {f.id for f in flavors} | {f.name for f in flavors}
    known_images = {i.id for i in images} | {i.name for i in images}
    problems = [
        f"flavor {f.id} ({f.name}) maps to '{f.backend_flavor}', which the cloud does not offer"
        for f in await repo.active_flavors(session)
        if f.backend_flavor not in known_flavors
    ]
    problems += [
        f"image {i.id} ({i.image_name}) maps to '{i.backend_image}', which the cloud does not offer"
        for i in await repo.active_images(session)
        if i.backend_image not in known_images
    ]
    return problems
