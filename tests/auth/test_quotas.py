"""Per-project quotas: refusals name the quota, its limit and its use; nothing is half made."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sog_api.operations.service import new_operation
from sog_api.projects.quotas import QuotaExceeded, check_quota, quota_reserve, usage
from tests.auth.conftest import MakeClient, MakeKey, assert_problem
from tests.conftest import db_rows
from tests.helpers import create_orbit, create_params, wait_gone, wait_status

# Flavors of the default catalogue: 2 = 2 vCPUs / 2 GB, 3 = 2 vCPUs / 4 GB, 5 = 4 vCPUs / 16 GB.


async def quota_client(make_key: MakeKey, make_client: MakeClient, **quotas: int | None) -> Any:
    return await make_client(await make_key("limited", **quotas))


def assert_quota(
    response: httpx.Response, quota: str, limit: int, in_use: int, wanted: int
) -> None:
    body = assert_problem(response, 403, "quota_exceeded")
    [error] = body["errors"]
    assert (error["quota"], error["limit"], error["in_use"], error["requested"]) == (
        quota, limit, in_use, wanted,
    )  # fmt: skip
    assert f"may use {limit}, uses {in_use}" in body["detail"]


async def project_rows(app: FastAPI, table: str) -> list[dict[str, Any]]:
    return await db_rows(
        app, f"SELECT t.id FROM {table} t JOIN projects p ON p.id = t.project_id "
        "WHERE p.name = 'limited'",
    )  # fmt: skip


class TestCreateQuotas:
    async def test_orbit_count(self, make_key: MakeKey, make_client: MakeClient) -> None:
        client = await quota_client(make_key, make_client, orbits=2)
        assert (
            await client.post("/vms/create/", params=create_params(vm_count=2))
        ).status_code == 201
        response = await client.post("/vms/create/", params=create_params())
        assert_quota(response, "orbits", 2, 2, 1)
        assert "orbits" in response.json()["detail"]

    async def test_vcpus(self, make_key: MakeKey, make_client: MakeClient) -> None:
        client = await quota_client(make_key, make_client, vcpus=5)
        await create_orbit(client, vm_count=2)  # 2 x 2 vCPUs
        response = await client.post("/vms/create/", params=create_params())
        assert_quota(response, "vcpus", 5, 4, 2)
        assert "vCPUs" in response.json()["detail"]

    async def test_ram(self, make_key: MakeKey, make_client: MakeClient) -> None:
        client = await quota_client(make_key, make_client, ram=6)
        await create_orbit(client, flavor=3)  # 4 GB
        assert_quota(
            await client.post("/vms/create/", params=create_params(flavor=3)), "ram", 6, 4, 4
        )
        await create_orbit(client, flavor=2)  # 2 GB: fits exactly

    async def test_volume_gb_counts_root_volumes(
        self, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, volume_gb=50)
        await create_orbit(client, root_size=30)
        response = await client.post("/vms/create/", params=create_params(root_size=30))
        assert_quota(response, "volume_gb", 50, 30, 30)

    async def test_vm_count_over_a_quota_is_refused_whole(
        self, app: FastAPI, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, orbits=3)
        params = create_params(vm_count=4)
        assert_quota(await client.post("/vms/create/", params=params), "orbits", 3, 0, 4)
        for table in ("orbits", "volumes", "operations", "idempotency_keys"):
            assert await project_rows(app, table) == [], table
        # The refused request left no idempotency record: the id can be used for a smaller one.
        retry = await client.post("/vms/create/", params={**params, "vm_count": 3})
        assert retry.status_code == 201 and len(retry.json()) == 3

    async def test_a_replay_is_not_refused(
        self, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, orbits=1)
        params = create_params()
        first = await client.post("/vms/create/", params=params)
        replay = await client.post("/vms/create/", params=params)
        assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]

    async def test_deleted_orbits_free_their_share(
        self, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, orbits=1)
        orbit = await create_orbit(client)
        await wait_status(client, orbit["id"], "RUNNING")
        assert (await client.post(f"/vms/{orbit['id']}/delete/")).status_code == 202
        await wait_gone(client, orbit["id"])
        await create_orbit(client)

    async def test_other_projects_are_not_limited(
        self, client: httpx.AsyncClient, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        limited = await quota_client(make_key, make_client, orbits=0)
        assert_quota(await limited.post("/vms/create/", params=create_params()), "orbits", 0, 0, 1)
        await create_orbit(client)  # the default project has no quotas

    async def test_racing_creates_cannot_both_pass(
        self, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, orbits=1)
        responses = await asyncio.gather(
            *(client.post("/vms/create/", params=create_params()) for _ in range(4))
        )
        assert sorted(r.status_code for r in responses) == [201, 403, 403, 403]


class TestResizeQuota:
    async def test_resize_over_the_vcpu_quota_is_refused(
        self, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        client = await quota_client(make_key, make_client, vcpus=3)
        orbit = await create_orbit(client)
        await wait_status(client, orbit["id"], "RUNNING")
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        assert_quota(response, "vcpus", 3, 2, 2)
        assert (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()["status"] == "RUNNING"


class TestReservations:
    async def test_open_operations_reserve_their_growth(
        self, app: FastAPI, make_key: MakeKey
    ) -> None:
        await make_key("limited", volume_gb=100)
        async with app.state.sessionmaker.begin() as session:
            project_id = await project_id_of(app, "limited")
            new_operation(
                session, app.state.settings, project_id=project_id, kind="volume.extend",
                stage="extend", params={"size_gb": 80, **quota_reserve(volume_gb=60)},
            )  # fmt: skip
            await session.flush()
            assert (await usage(session, project_id)).volume_gb == 60
            await check_quota(session, project_id, volume_gb=40)
            with pytest.raises(QuotaExceeded) as refused:
                await check_quota(session, project_id, volume_gb=41)
            assert refused.value.status == 403 and refused.value.code == "quota_exceeded"

    def test_nothing_to_reserve_adds_nothing(self) -> None:
        assert quota_reserve() == {}
        assert quota_reserve(vcpus=2, ram=0) == {"quota_reserve": {"vcpus": 2}}


async def project_id_of(app: FastAPI, name: str) -> int:
    [row] = await db_rows(app, "SELECT id FROM projects WHERE name = :name", name=name)
    return int(row["id"])
