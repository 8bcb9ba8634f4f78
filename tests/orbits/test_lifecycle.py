"""An orbit's whole life through the API, carried out by the worker on the simulated cloud."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from sog_api.cloud.base import CloudBadRequest
from tests.conftest import db_rows
from tests.helpers import create_orbit, running_orbit, wait_gone, wait_operation, wait_status


class TestCreateLifecycle:
    async def test_create_reaches_running_with_progress_rising(
        self, client: httpx.AsyncClient
    ) -> None:
        orbit = await create_orbit(client)
        assert orbit["status"] == "CREATING" and orbit["progress"] == 0
        seen = [0]
        for _ in range(400):
            body = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
            seen.append(body["progress"])
            if body["status"] == "RUNNING":
                break
            await asyncio.sleep(0.01)
        assert body["status"] == "RUNNING"
        assert seen == sorted(seen), "progress never goes down"
        assert len({p for p in seen if 0 < p < 100}) >= 2, f"progress rose in steps: {seen}"
        assert body["progress"] == 100 and body["is_active"] is True
        assert body["ipaddr"].startswith("192.168.")
        root = body["volume_model"][0]
        assert root["is_root"] is True and root["status"] == "RUNNING"
        assert root["partition"] == "/dev/vda" and root["size"] == "20 GB"
        assert root["source_image"] == "Ubuntu 14.04 X64"

    async def test_the_zone_the_cloud_chose_is_recorded(self, client: httpx.AsyncClient) -> None:
        orbit = await create_orbit(client, availability_zone=None)
        assert orbit["availability_zone"] is None  # not asked for: the scheduler decides
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["availability_zone"] == "nova"
        listed = (await client.get("/vms/", params={"vm_name": "web"})).json()
        assert listed[0]["availability_zone"] == "nova"

    async def test_cloud_has_exactly_one_server_and_volume(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        servers = await db_rows(app, "SELECT id, status, name FROM sim_servers")
        volumes = await db_rows(app, "SELECT id, status, server_id FROM sim_volumes")
        assert [s["name"] for s in servers] == ["web"]
        assert len(volumes) == 1 and volumes[0]["server_id"] == servers[0]["id"]
        stored = await db_rows(app, "SELECT server_id FROM orbits WHERE id=:id", id=orbit["id"])
        assert stored[0]["server_id"] == servers[0]["id"]


class TestActions:
    async def test_pause_start_reboot(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        response = await client.post(
            "/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]}
        )
        assert response.status_code == 202 and response.json()["status"] == "PAUSING"
        assert response.headers["location"].startswith("/operations/")
        await wait_status(client, orbit["id"], "PAUSED")
        response = await client.post(
            "/vms/action/", params={"action": "start", "orbit_id": orbit["id"]}
        )
        assert response.status_code == 202 and response.json()["status"] == "BOOTING"
        await wait_status(client, orbit["id"], "RUNNING")
        response = await client.post(
            "/vms/action/", params={"action": "reboot", "orbit_id": orbit["id"]}
        )
        assert response.status_code == 202 and response.json()["status"] == "REBOOTING"
        operation = await wait_operation(client, response.headers["location"].rsplit("/", 1)[1])
        assert operation["state"] == "succeeded" and operation["kind"] == "orbit.reboot"
        await wait_status(client, orbit["id"], "RUNNING")

    async def test_resize_changes_vcpus_and_ram(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        assert response.status_code == 202 and response.json()["status"] == "RESIZING"
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert (body["vcpus"], body["ram"], body["flavor_id"]) == (4, 16, 5)
        servers = await db_rows(app, "SELECT flavor_ref, status FROM sim_servers")
        assert servers == [{"flavor_ref": "sog.pulsar", "status": "ACTIVE"}]


class TestDelete:
    async def test_delete_keeps_root_volume_by_default(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        response = await client.post(f"/vms/{orbit['id']}/delete/")
        assert response.status_code == 202 and response.json()["status"] == "DELETING"
        await wait_gone(client, orbit["id"])
        assert (await client.get("/vms/")).json() == []

    async def test_delete_root_removes_volume_in_cloud(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client, delete_root="true")
        await client.post(f"/vms/{orbit['id']}/delete/")
        await wait_gone(client, orbit["id"])
        for _ in range(200):
            volumes = await db_rows(app, "SELECT status, deleted_at FROM volumes")
            if volumes and volumes[0]["status"] == "DELETED":
                break
            await asyncio.sleep(0.02)
        assert volumes[0]["status"] == "DELETED" and volumes[0]["deleted_at"] is not None
        assert await db_rows(app, "SELECT id FROM sim_volumes WHERE deleted = false") == []


class TestSimulatedCloud:
    async def test_a_second_confirm_while_one_is_under_way_is_refused_as_nova_does(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        [row] = await db_rows(app, "SELECT server_id FROM orbits WHERE id=:id", id=orbit["id"])
        cloud, server_id = app.state.cloud, row["server_id"]
        await cloud.resize_server(server_id, "sog.comet")
        for _ in range(500):
            if (await cloud.get_server(server_id)).status == "VERIFY_RESIZE":
                break
            await asyncio.sleep(0.01)
        await cloud.confirm_resize(server_id)
        with pytest.raises(CloudBadRequest, match="Instance has not been resized"):
            await cloud.confirm_resize(server_id)
