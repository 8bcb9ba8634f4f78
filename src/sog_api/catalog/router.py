"""Catalogue endpoints: flavors, images and the payload of both with volume templates."""

from __future__ import annotations

from sog_api.catalog import repository as repo
from sog_api.catalog.schemas import FlavorRead, ImageRead, PayloadRead, VolumeTemplateRead
from sog_api.deps import SessionDep
from sog_api.http import SlashRouter

router = SlashRouter(tags=["catalogue"])


@router.get("/vms/images/", response_model=list[ImageRead])
async def list_images(session: SessionDep) -> list[ImageRead]:
    """List the images an orbit can boot from (`booting_image`)."""
    return [
        ImageRead.model_validate(i, from_attributes=True) for i in await repo.active_images(session)
    ]


@router.get("/vms/flavors/", response_model=list[FlavorRead])
async def list_flavors(session: SessionDep) -> list[FlavorRead]:
    """List the flavors (sizes and hourly prices) an orbit can have, cheapest first."""
    return [
        FlavorRead.model_validate(f, from_attributes=True)
        for f in await repo.active_flavors(session)
    ]


@router.get("/vms/payload/", response_model=PayloadRead)
async def get_payload(session: SessionDep) -> PayloadRead:
    """Everything a create form needs at once: flavors, volume templates and images."""
    return PayloadRead(
        flavors=[
            FlavorRead.model_validate(f, from_attributes=True)
            for f in await repo.active_flavors(session)
        ],
        images=[
            ImageRead.model_validate(i, from_attributes=True)
            for i in await repo.active_images(session)
        ],
        volumes=[
            VolumeTemplateRead.model_validate(t, from_attributes=True)
            for t in await repo.active_templates(session)
        ],
    )
