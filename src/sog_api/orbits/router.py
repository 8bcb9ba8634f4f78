"""Orbit endpoints: the seed's paths, parameters in the query string, both slash forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from sog_api.catalog.schemas import FlavorRead
from sog_api.deps import CallerDep, SessionDep, SettingsDep
from sog_api.errors import responses
from sog_api.http import IdPath, SlashRouter, accepted, pagination_headers
from sog_api.operations.service import remember_response
from sog_api.orbits import service, views
from sog_api.orbits.schemas import (
    OrbitActionQuery,
    OrbitCreateQuery,
    OrbitDetail,
    OrbitListQuery,
    OrbitPatchQuery,
    OrbitPutQuery,
    OrbitResizeQuery,
    OrbitSummary,
)
from sog_api.worker.wakeup import wake_worker

router = SlashRouter(tags=["orbits"])


def _detail_json(detail: OrbitDetail) -> object:
    return detail.model_dump(mode="json")


@router.get("/vms/", response_model=list[OrbitSummary], responses=responses(422))
async def list_orbits(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    query: Annotated[OrbitListQuery, Query()],
) -> list[OrbitSummary]:
    """List your orbits, oldest first, optionally filtered by `status` or exact `vm_name`.

    Paged with `limit` and `offset`; `X-Total-Count` tells how many match and `Link` points at
    the next page.
    """
    orbits, total = await service.list_orbits(session, caller.project_id, query)
    pagination_headers(request, response, total, query.limit, query.offset)
    return await views.summaries(session, orbits)


@router.get("/vms/vm_details/{pk}/", response_model=OrbitDetail, responses=responses(404, 422))
async def get_orbit(pk: IdPath, session: SessionDep, caller: CallerDep) -> OrbitDetail:
    """Show one orbit with its volumes. `admin_pwd` is always null."""
    return await views.detail(session, await service.get_orbit(session, caller.project_id, pk))


@router.put("/vms/vm_details/{pk}/", response_model=OrbitDetail, responses=responses(404, 409, 422))
async def replace_orbit(
    request: Request,
    pk: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[OrbitPutQuery, Query()],
) -> OrbitDetail:
    """Set the name, description and `delete_root` of an orbit (omitted ones reset to default).

    A new name reaches the cloud's server too.
    """
    async with session.begin():
        orbit = await service.update_orbit(session, settings, caller.project_id, pk, query)
        result = await views.detail(session, orbit)
    wake_worker(request)
    return result


@router.patch(
    "/vms/vm_details/{pk}/", response_model=OrbitDetail, responses=responses(404, 409, 422)
)
async def patch_orbit(
    request: Request,
    pk: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[OrbitPatchQuery, Query()],
) -> OrbitDetail:
    """Change only the given fields of an orbit: `vm_name`, `description`, `delete_root`."""
    async with session.begin():
        orbit = await service.update_orbit(session, settings, caller.project_id, pk, query)
        result = await views.detail(session, orbit)
    wake_worker(request)
    return result


@router.post(
    "/vms/create/",
    status_code=201,
    response_model=OrbitDetail | list[OrbitDetail],
    responses={
        **responses(403, 409, 422),
        200: {
            "description": "A replay of an earlier identical request: what it made",
            "model": OrbitDetail | list[OrbitDetail],
        },
    },
)
async def create_orbit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[OrbitCreateQuery, Query()],
) -> JSONResponse:
    """Create one orbit (or `vm_count` of them) booting from an image or a detached volume.

    Answers 201 with the orbit in `CREATING` (an array when `vm_count` > 1); follow it with
    GET /vms/vm_details/{id}/ or the operation in `Location`. Repeating the request with the same
    `transaction_id` and parameters answers 200 with what the first made; other parameters, 409.
    """
    async with session.begin():
        outcome = await service.create_orbits(session, settings, caller.project_id, query)
        body = outcome.response
        if body is None:
            documents = [_detail_json(d) for d in await views.details(session, outcome.orbits)]
            body = documents[0] if query.vm_count == 1 and len(documents) == 1 else documents
            remember_response(outcome.key, body)
    wake_worker(request)
    return accepted(body, outcome.operation_id, 200 if outcome.replay else 201)


@router.post("/vms/{orbit_id}/delete/", status_code=202, response_model=OrbitDetail,
             responses=responses(404, 409, 422))  # fmt: skip
async def delete_orbit(
    request: Request, orbit_id: IdPath, session: SessionDep, settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:  # fmt: skip
    """Delete an orbit: `DELETING`, then gone. Its root volume goes too when `delete_root`."""
    async with session.begin():
        outcome = await service.delete_orbit(session, settings, caller.project_id, orbit_id)
        body = _detail_json(await views.detail(session, outcome.orbits[0]))
    wake_worker(request)
    return accepted(body, outcome.operation_id)


@router.get(
    "/vms/{orbit_id}/resize", response_model=list[FlavorRead], responses=responses(404, 422)
)
async def list_resize_options(
    orbit_id: IdPath, session: SessionDep, caller: CallerDep
) -> list[FlavorRead]:
    """The flavors this orbit can grow to (at least its vCPUs and RAM), cheapest first."""
    orbit = await service.get_orbit(session, caller.project_id, orbit_id)
    return [
        FlavorRead.model_validate(f, from_attributes=True)
        for f in await service.resize_options(session, orbit)
    ]


@router.post("/vms/{orbit_id}/resize/", status_code=202, response_model=OrbitDetail,
             responses=responses(403, 404, 409, 422))  # fmt: skip
async def resize_orbit(
    request: Request,
    orbit_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[OrbitResizeQuery, Query()],
) -> JSONResponse:
    """Grow a `RUNNING` orbit to `flavor_id`; the resize is confirmed automatically."""
    async with session.begin():
        outcome = await service.resize_orbit(
            session, settings, caller.project_id, orbit_id, query.flavor_id
        )
        body = _detail_json(await views.detail(session, outcome.orbits[0]))
    wake_worker(request)
    return accepted(body, outcome.operation_id)


@router.post(
    "/vms/action/",
    status_code=202,
    response_model=OrbitDetail,
    responses={
        **responses(404, 409, 422),
        200: {"description": "A replay of an earlier identical action", "model": OrbitDetail},
    },
)
async def act_on_orbit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[OrbitActionQuery, Query()],
) -> JSONResponse:
    """`start` (PAUSED or STOPPED), `pause` (RUNNING) or `reboot` (RUNNING, or ERROR to recover)."""
    async with session.begin():
        outcome = await service.act_on_orbit(session, settings, caller.project_id, query)
        body = outcome.response
        if body is None:
            body = _detail_json(await views.detail(session, outcome.orbits[0]))
            remember_response(outcome.key, body)
    wake_worker(request)
    return accepted(body, outcome.operation_id, 200 if outcome.replay else 202)
