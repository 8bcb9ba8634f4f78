"""Volume endpoints: the seed's paths, parameters in the query string, both slash forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog import repository as catalog
from sog_api.catalog.models import VolumeTemplate
from sog_api.catalog.schemas import VolumeTemplateRead
from sog_api.deps import CallerDep, SessionDep, SettingsDep
from sog_api.errors import responses
from sog_api.http import IdPath, SlashRouter, accepted, pagination_headers
from sog_api.operations.service import remember_response
from sog_api.volumes import service, views
from sog_api.volumes.schemas import (
    VolumeCreateQuery,
    VolumeDetail,
    VolumeListQuery,
    VolumePatchQuery,
    VolumePutQuery,
    VolumeRead,
    VolumeResizeQuery,
)
from sog_api.worker.wakeup import wake_worker

router = SlashRouter(tags=["volumes"])


def _template_reads(templates: list[VolumeTemplate]) -> list[VolumeTemplateRead]:
    return [VolumeTemplateRead.model_validate(t, from_attributes=True) for t in templates]


async def _accepted(session: AsyncSession, outcome: service.Outcome) -> JSONResponse:
    assert outcome.volume is not None
    body = (await views.read(session, outcome.volume)).model_dump(mode="json")
    return accepted(body, outcome.operation_id)


@router.get("/volume/", response_model=list[VolumeRead], responses=responses(422))
async def list_volumes(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    query: Annotated[VolumeListQuery, Query()],
) -> list[VolumeRead]:
    """List your volumes (root volumes of orbits included), oldest first, optionally by `status`.

    Paged with `limit` and `offset`; `X-Total-Count` tells how many match and `Link` points at
    the next page.
    """
    volumes, total = await service.list_volumes(session, caller.project_id, query)
    pagination_headers(request, response, total, query.limit, query.offset)
    return await views.reads(session, volumes)


# Declared before /volume/{volume_id} so that "templates" is never read as an id.
@router.get("/volume/templates", response_model=list[VolumeTemplateRead])
async def list_volume_templates(session: SessionDep) -> list[VolumeTemplateRead]:
    """The sizes a volume can have (`capacity` in GB) with their prices, smallest first."""
    return _template_reads(await catalog.active_templates(session))


@router.post(
    "/volume/create/",
    status_code=201,
    response_model=VolumeRead,
    responses={
        **responses(403, 404, 409, 422),
        200: {"description": "A repeat of an earlier identical request", "model": VolumeRead},
    },
)
async def create_volume(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[VolumeCreateQuery, Query()],
) -> JSONResponse:
    """Create a volume of `capacity` GB (a template's capacity), attached to `attach_to` if given.

    Answers 201 with the volume in `CREATING`; it becomes `AVAILABLE`, or `RUNNING` once attached
    when `attach_to` names an orbit. Follow it with GET /volume/{id} or the operation in
    `Location`. With a `transaction_id`, a repeat with the same parameters answers 200 with the
    first answer; the same id with other parameters is a 409.
    """
    async with session.begin():
        outcome = await service.create_volume(session, settings, caller.project_id, query)
        if outcome.volume is None:  # a repeat: the first answer, as it was given
            return accepted(outcome.response, outcome.operation_id, 200)
        body = (await views.read(session, outcome.volume)).model_dump(mode="json")
        remember_response(outcome.key, body)
    wake_worker(request)
    return accepted(body, outcome.operation_id, 201)


@router.get("/volume/{volume_id}", response_model=VolumeDetail, responses=responses(404, 422))
async def get_volume(volume_id: IdPath, session: SessionDep, caller: CallerDep) -> VolumeDetail:
    """Show one volume with the orbit it is attached to (`virtual_machine`, or null)."""
    volume = await service.get_volume(session, caller.project_id, volume_id)
    return await views.detail(session, volume)


@router.get("/volume/{volume_id}/update/", response_model=VolumeRead, responses=responses(404, 422))
async def get_volume_for_update(
    volume_id: IdPath, session: SessionDep, caller: CallerDep
) -> VolumeRead:
    """Show one volume, as the update form needs it."""
    volume = await service.get_volume(session, caller.project_id, volume_id)
    return await views.read(session, volume)


@router.put("/volume/{volume_id}/update/", response_model=VolumeRead,
            responses=responses(404, 409, 422))  # fmt: skip
async def replace_volume(
    volume_id: IdPath,
    session: SessionDep,
    caller: CallerDep,
    query: Annotated[VolumePutQuery, Query()],
) -> VolumeRead:
    """Set the `nickname` of a volume (required)."""
    async with session.begin():
        volume = await service.update_volume(session, caller.project_id, volume_id, query)
        return await views.read(session, volume)


@router.patch("/volume/{volume_id}/update/", response_model=VolumeRead,
              responses=responses(404, 409, 422))  # fmt: skip
async def patch_volume(
    volume_id: IdPath,
    session: SessionDep,
    caller: CallerDep,
    query: Annotated[VolumePatchQuery, Query()],
) -> VolumeRead:
    """Change the `nickname` of a volume when given."""
    async with session.begin():
        volume = await service.update_volume(session, caller.project_id, volume_id, query)
        return await views.read(session, volume)


@router.post("/volume/{volume_id}/attach/{orbit_id}/", status_code=202, response_model=VolumeRead,
             responses=responses(404, 409, 422))  # fmt: skip
async def attach_volume(
    request: Request,
    volume_id: IdPath,
    orbit_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:
    """Attach an `AVAILABLE` volume to one of your orbits: `ATTACHING`, then `RUNNING`.

    The orbit must not be in the middle of a change. `partition` shows the device the cloud chose.
    """
    async with session.begin():
        outcome = await service.attach_volume(
            session, settings, caller.project_id, volume_id, orbit_id
        )
        result = await _accepted(session, outcome)
    wake_worker(request)
    return result


@router.post("/volume/{volume_id}/detach/", status_code=202, response_model=VolumeRead,
             responses=responses(404, 409, 422))  # fmt: skip
async def detach_volume(
    request: Request, volume_id: IdPath, session: SessionDep, settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:  # fmt: skip
    """Detach a data volume from its orbit: `DETACHING`, then `AVAILABLE`. Root volumes stay."""
    async with session.begin():
        outcome = await service.detach_volume(session, settings, caller.project_id, volume_id)
        result = await _accepted(session, outcome)
    wake_worker(request)
    return result


@router.get("/volume/{volume_id}/resize/", response_model=list[VolumeTemplateRead],
            responses=responses(404, 422))  # fmt: skip
async def list_volume_resize_options(
    volume_id: IdPath, session: SessionDep, caller: CallerDep
) -> list[VolumeTemplateRead]:
    """The templates this volume can grow to (larger than it), smallest first."""
    volume = await service.get_volume(session, caller.project_id, volume_id)
    return _template_reads(await service.resize_options(session, volume))


@router.post("/volume/{volume_id}/resize/", status_code=202, response_model=VolumeRead,
             responses=responses(403, 404, 409, 422))  # fmt: skip
async def resize_volume(
    request: Request,
    volume_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[VolumeResizeQuery, Query()],
) -> JSONResponse:
    """Grow a volume to the template `template_id`: `RESIZING`, then its former status.

    A detached volume grows at once; an attached one only while its orbit is `PAUSED`.
    """
    async with session.begin():
        outcome = await service.resize_volume(
            session, settings, caller.project_id, volume_id, query.template_id
        )
        result = await _accepted(session, outcome)
    wake_worker(request)
    return result


@router.post("/volume/{volume_id}/delete/", status_code=202, response_model=VolumeRead,
             responses=responses(404, 409, 422))  # fmt: skip
async def delete_volume(
    request: Request, volume_id: IdPath, session: SessionDep, settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:  # fmt: skip
    """Delete a detached volume: `DELETING`, then gone (404)."""
    async with session.begin():
        outcome = await service.delete_volume(session, settings, caller.project_id, volume_id)
        result = await _accepted(session, outcome)
    wake_worker(request)
    return result
