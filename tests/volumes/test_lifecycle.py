"""A volume's whole life through the API, carried out by the worker on the simulated cloud."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.conftest import db_rows
from tests.helpers import (
    attached_volume,
    available_volume,
    create_volume,
    running_orbit,
    wait_gone,
    wait_operation,
    wait_status,
    wait_volume,
    wait_volume_gone,
)


def operation_id(response: httpx.Response) -> str:
    location = response.headers["location"]
    assert location.startswith("/operations/")
    return location.rsplit("/", 1)[1]


async def sim_volume(app: FastAPI, volume_id: int) -> dict[str, object]:
    """The simulator's row of a volume, after letting the simulated clock move it on."""
    await app.state.cloud.list_volumes()
    rows = await db_rows(
        app,
        "SELECT s.size_gb, s.status, s.server_id, s.device, s.deleted FROM sim_volumes s"
        " JOIN volumes v ON v.backend_volume_id = s.id WHERE v.id = :id",
        id=volume_id,
    )
    assert len(rows) == 1, rows
    return rows[0]


class TestCreate:
    async def test_detached_volume_becomes_available(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post("/volume/create", params={"nickname": "d", "capacity": 40})
        assert response.status_code == 201
        volume = response.json()
        assert volume["status"] == "CREATING" and volume["size"] == "40 GB"
        assert volume["operation_id"] == operation_id(response)
        operation = await wait_operation(client, operation_id(response))
        assert operation["state"] == "succeeded" and operation["kind"] == "volume.create"
        assert operation["volume_id"] == volume["id"] and operation["orbit_id"] is None
        body = await wait_volume(client, volume["id"], "AVAILABLE")
        assert body["attached_to"] is None and body["partition"] is None
        cloud = await sim_volume(app, volume["id"])
        assert (cloud["size_gb"], cloud["status"], cloud["server_id"]) == (40, "available", None)

    async def test_attach_to_ends_running_and_attached(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        volume = await create_volume(client, attach_to=orbit["id"], partition="/dev/vdf")
        assert volume["status"] == "CREATING"
        body = await wait_volume(client, volume["id"], "RUNNING")
        # the device the cloud chose, not the one wished for
        assert body["partition"] == "/dev/vdb" and body["attached_to"] == "web"
        assert body["orbit_id"] == orbit["id"] and body["virtual_machine"]["id"] == orbit["id"]
        cloud = await sim_volume(app, volume["id"])
        assert (cloud["status"], cloud["device"]) == ("in-use", "/dev/vdb")
        detail = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
        assert [(v["is_root"], v["partition"], v["status"]) for v in detail["volume_model"]] == [
            (True, "/dev/vda", "RUNNING"),
            (False, "/dev/vdb", "RUNNING"),
        ]
        assert detail["volume_model"][1]["id"] == volume["id"]
        operation = await wait_operation(client, body["operation_id"])
        assert (operation["orbit_id"], operation["volume_id"]) == (orbit["id"], volume["id"])


class TestAttachDetach:
    async def test_round_trip(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit = await running_orbit(client)
        volume = await available_volume(client)
        response = await client.post(f"/volume/{volume['id']}/attach/{orbit['id']}")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "ATTACHING"
        assert response.json()["attached_to"] == "web"
        operation = await wait_operation(client, operation_id(response))
        assert operation["kind"] == "volume.attach" and operation["state"] == "succeeded"
        body = await wait_volume(client, volume["id"], "RUNNING")
        assert body["partition"] == "/dev/vdb" and body["virtual_machine"]["vm_name"] == "web"

        response = await client.post(f"/volume/{volume['id']}/detach")
        assert response.status_code == 202 and response.json()["status"] == "DETACHING"
        await wait_operation(client, operation_id(response))
        body = await wait_volume(client, volume["id"], "AVAILABLE")
        assert body["orbit_id"] is None and body["partition"] is None
        assert body["virtual_machine"] is None and body["attached_to"] is None
        cloud = await sim_volume(app, volume["id"])
        assert (cloud["status"], cloud["server_id"]) == ("available", None)
        detail = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
        assert [v["is_root"] for v in detail["volume_model"]] == [True]

    async def test_attach_to_paused_orbit(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        await client.post("/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]})
        await wait_status(client, orbit["id"], "PAUSED")
        volume = await available_volume(client)
        response = await client.post(f"/volume/{volume['id']}/attach/{orbit['id']}/")
        assert response.status_code == 202
        await wait_volume(client, volume["id"], "RUNNING")


class TestResize:
    async def test_attached_needs_a_paused_orbit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        volume = await attached_volume(client, orbit["id"])
        response = await client.post(f"/volume/{volume['id']}/resize/", params={"template_id": 3})
        assert response.status_code == 409
        assert response.json()["detail"] == "Please Pause the VM first"
        assert response.json()["code"] == "orbit_not_paused"
        await client.post("/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]})
        await wait_status(client, orbit["id"], "PAUSED")
        response = await client.post(f"/volume/{volume['id']}/resize", params={"template_id": 3})
        assert response.status_code == 202 and response.json()["status"] == "RESIZING"
        operation = await wait_operation(client, operation_id(response))
        assert operation["kind"] == "volume.extend" and operation["state"] == "succeeded"
        body = await wait_volume(client, volume["id"], "RUNNING")
        assert (body["size"], body["size_gb"], body["partition"]) == ("80 GB", 80, "/dev/vdb")
        cloud = await sim_volume(app, volume["id"])
        assert (cloud["size_gb"], cloud["status"]) == (80, "in-use")

    async def test_detached_resizes_at_once(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume = await available_volume(client)
        options = (await client.get(f"/volume/{volume['id']}/resize/")).json()
        assert [t["capacity"] for t in options] == [40, 80, 120, 240, 500, 1000]
        response = await client.post(f"/volume/{volume['id']}/resize/", params={"template_id": 7})
        assert response.status_code == 202 and response.json()["status"] == "RESIZING"
        body = await wait_volume(client, volume["id"], "AVAILABLE")
        assert body["size"] == "1000 GB" and body["fault"] is None
        assert (await sim_volume(app, volume["id"]))["size_gb"] == 1000
        options = await client.get(f"/volume/{volume['id']}/resize")
        assert options.status_code == 200 and options.json() == []


class TestDelete:
    async def test_detached_volume_goes(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume = await available_volume(client)
        response = await client.post(f"/volume/{volume['id']}/delete")
        assert response.status_code == 202 and response.json()["status"] == "DELETING"
        operation = await wait_operation(client, operation_id(response))
        assert operation["kind"] == "volume.delete" and operation["state"] == "succeeded"
        await wait_volume_gone(client, volume["id"])
        assert (await client.get("/volume/")).json() == []
        assert (await client.get(f"/volume/{volume['id']}/update/")).status_code == 404
        assert bool((await sim_volume(app, volume["id"]))["deleted"]) is True


class TestOrbitDeletion:
    async def test_volumes_are_kept_detached(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit = await running_orbit(client)
        data = await attached_volume(client, orbit["id"])
        root_id = orbit["volume_model"][0]["id"]
        await client.post(f"/vms/{orbit['id']}/delete/")
        await wait_gone(client, orbit["id"])
        volumes = {v["id"]: v for v in (await client.get("/volume/")).json()}
        assert set(volumes) == {root_id, data["id"]}
        for volume in volumes.values():
            assert volume["status"] == "AVAILABLE" and volume["orbit_id"] is None
            assert volume["attached_to"] is None and volume["partition"] is None
            assert volume["is_root"] is False
        assert volumes[root_id]["is_bootable"] is True
        for volume_id in volumes:  # the cloud lets them go with the server
            for _ in range(100):
                if (await sim_volume(app, volume_id))["status"] == "available":
                    break
                await asyncio.sleep(0.02)
            assert (await sim_volume(app, volume_id))["server_id"] is None

    async def test_kept_root_volume_boots_a_new_orbit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        first = await running_orbit(client, vm_name="first")
        root_id = first["volume_model"][0]["id"]
        await client.post(f"/vms/{first['id']}/delete/")
        await wait_gone(client, first["id"])
        await wait_volume(client, root_id, "AVAILABLE")
        second = await running_orbit(
            client, vm_name="second", booting_image=None, booting_volume=root_id, root_size=20
        )
        assert [v["id"] for v in second["volume_model"]] == [root_id]
        assert second["volume_model"][0]["partition"] == "/dev/vda"
        body = await wait_volume(client, root_id, "RUNNING")
        assert body["attached_to"] == "second" and body["is_root"] is True
        assert body["source_image"] == "Ubuntu 14.04 X64"
        response = await client.post(f"/volume/{root_id}/detach/")
        assert response.status_code == 409 and response.json()["code"] == "volume_is_root"
        servers = await db_rows(app, "SELECT name FROM sim_servers WHERE deleted = false")
        assert servers == [{"name": "second"}]
