"""Projects see only their own orbits, volumes, operations and transaction ids.

Another project's resource is a 404 on every route that takes an id in its path, exactly as if
it did not exist. The sweep walks the app's routes, so a new route is covered by itself; it
only needs its path parameter named in RESOURCE_OF and, when it requires query parameters,
an entry in QUERY_FOR.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from sog_api.projects.models import DEFAULT_PROJECT_ID
from sog_api.volumes.models import Volume
from tests.auth.conftest import MakeClient, MakeKey
from tests.auth.routes import fill, params_of, route_templates
from tests.conftest import db_rows
from tests.helpers import create_orbit, create_params, running_orbit, wait_status

# Which resource each path parameter names.
RESOURCE_OF = {
    "pk": "orbit",
    "orbit_id": "orbit",
    "operation_id": "operation",
    "volume_id": "volume",
}
# Query parameters a route requires (without them a 422 would answer before the lookup).
QUERY_FOR: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/vms/vm_details/{pk}"): {"vm_name": "stolen"},
    ("POST", "/vms/{orbit_id}/resize"): {"flavor_id": 5},
    ("PUT", "/volume/{volume_id}/update"): {"nickname": "stolen"},
    ("POST", "/volume/{volume_id}/resize"): {"template_id": 2},
}
MISSING_ID = 987654


def query_id_cases(resources: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Routes that take another resource's id in the query string, with that id filled in."""
    return [
        ("POST", "/vms/action/", {"action": "pause", "orbit_id": resources["orbit"]}),
        ("POST", "/vms/create/", create_params(booting_image=None, booting_volume=resources["volume"])),
        ("POST", "/volume/create/", {"nickname": "x", "capacity": 20, "attach_to": resources["orbit"]}),
    ]  # fmt: skip


async def project_a_resources(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    """A running orbit, its create operation and a detached volume, all of the default project."""
    orbit = await create_orbit(client)
    operation = orbit["operation_id"]
    await wait_status(client, orbit["id"], "RUNNING")
    async with app.state.sessionmaker.begin() as session:
        volume = Volume(
            project_id=DEFAULT_PROJECT_ID, nickname="mine", size_gb=20, status="AVAILABLE",
            is_bootable=True, source_image_id=3,
        )  # fmt: skip
        session.add(volume)
        await session.flush()
    return {"orbit": orbit["id"], "operation": operation, "volume": volume.id}


async def snapshot(app: FastAPI) -> dict[str, Any]:
    return {
        "orbits": await db_rows(app, "SELECT id, vm_name, status FROM orbits ORDER BY id"),
        "volumes": await db_rows(app, "SELECT id, nickname, status, orbit_id FROM volumes ORDER BY id"),
        "operations": await db_rows(app, "SELECT count(*) AS n FROM operations"),
        "keys": await db_rows(app, "SELECT count(*) AS n FROM idempotency_keys"),
    }  # fmt: skip


class TestOtherProjectsResources:
    async def test_every_route_with_an_id_answers_404(
        self, app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        mine = await project_a_resources(app, client)
        other = await make_client(await make_key("other"))
        before = await snapshot(app)
        swept = 0
        for method, template in route_templates(app):
            names = params_of(template)
            if not names:
                continue
            unknown = [n for n in names if n not in RESOURCE_OF]
            assert not unknown, f"{method} {template}: add {unknown} to RESOURCE_OF"
            path = fill(template, {n: mine[RESOURCE_OF[n]] for n in names})
            params = QUERY_FOR.get((method, template.rstrip("/")), {})
            response = await other.request(method, path, params=params)
            assert response.status_code == 404, (
                f"{method} {template}: {response.status_code} {response.text}"
                " (a 422 means the route needs an entry in QUERY_FOR)"
            )
            assert response.json()["code"] == "not_found"
            swept += 1
        assert swept >= 10
        assert await snapshot(app) == before, "another project's request changed something"

    async def test_ids_in_the_query_string_are_like_missing_ones(
        self, app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        mine = await project_a_resources(app, client)
        other = await make_client(await make_key("other"))
        missing = {"orbit": MISSING_ID, "volume": MISSING_ID, "operation": str(uuid.uuid4())}
        templates = {t.rstrip("/") for _, t in route_templates(app)}
        before = await snapshot(app)
        for (method, path, params), (_, _, absent) in zip(
            query_id_cases(mine), query_id_cases(missing), strict=True
        ):
            if path.rstrip("/") not in templates:
                continue
            theirs = await other.request(method, path, params=params)
            nothing = await other.request(method, path, params=absent)
            assert theirs.status_code in (404, 422), (path, theirs.text)
            assert theirs.status_code == nothing.status_code, (path, theirs.text, nothing.text)
            assert theirs.json()["code"] == nothing.json()["code"]
            detail = nothing.json()["detail"].replace(str(MISSING_ID), "ID")
            for value in mine.values():
                assert str(value) not in detail
            assert _without_ids(theirs.json()["detail"], mine) == detail, path
        assert await snapshot(app) == before

    async def test_lists_show_only_the_callers_resources(
        self, app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        await project_a_resources(app, client)
        other = await make_client(await make_key("other"))
        assert len((await client.get("/vms/")).json()) == 1
        assert (await other.get("/vms/")).json() == []
        assert (await other.get("/vms/")).headers["x-total-count"] == "0"
        volumes = await other.get("/volume/")
        assert volumes.status_code == 200 and volumes.json() == []


def _without_ids(detail: str, ids: dict[str, Any]) -> str:
    for value in ids.values():
        detail = detail.replace(str(value), "ID")
    return detail


class TestTransactionIds:
    async def test_the_same_transaction_id_in_two_projects_makes_two_orbits(
        self, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        other = await make_client(await make_key("other"))
        params = create_params(transaction_id="shared-transaction")
        mine = await client.post("/vms/create/", params=params)
        theirs = await other.post("/vms/create/", params=params)
        assert mine.status_code == 201 and theirs.status_code == 201, theirs.text
        assert mine.json()["id"] != theirs.json()["id"]
        replay = await other.post("/vms/create/", params=params)
        assert replay.status_code == 200 and replay.json()["id"] == theirs.json()["id"]
        assert [o["id"] for o in (await other.get("/vms/")).json()] == [theirs.json()["id"]]

    async def test_an_action_transaction_id_is_per_project(
        self, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        other = await make_client(await make_key("other"))
        orbit = await running_orbit(client)
        act = {"action": "pause", "orbit_id": orbit["id"], "transaction_id": "act-1"}
        assert (await client.post("/vms/action/", params=act)).status_code == 202
        # The other project replaying the same transaction id must not see the first result.
        assert (await other.post("/vms/action/", params=act)).status_code == 404
