"""An orbit's whole life through the HTTP API with SOG_CLOUD=openstack, against the fake cloud."""

from __future__ import annotations

import asyncio
import base64

import httpx
from fastapi import FastAPI

from tests.cloud.api_helpers import (
    act,
    cloud_volume_id,
    live_servers,
    operation_of,
    server_actions,
    server_id,
)
from tests.conftest import SSH_KEY, db_rows
from tests.fake_openstack import FakeOpenStack
from tests.helpers import (
    attached_volume,
    create_orbit,
    running_orbit,
    wait_gone,
    wait_operation,
    wait_status,
    wait_volume,
)


def _flavor_id(fake: FakeOpenStack, name: str) -> str:
    return next(f.id for f in fake.flavors if f.name == name)


class TestCreate:
    async def test_reaches_running_with_the_cloud_ip_and_progress_rising(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        fake.delays.update(volume_create=20.0, build=40.0)  # 0.2 s and 0.4 s at scale 0.01
        orbit = await create_orbit(client, vm_name="web", flavor=2, root_size=20)
        assert (orbit["status"], orbit["progress"]) == ("CREATING", 0)
        seen = [0]
        body = orbit
        for _ in range(1000):
            body = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
            seen.append(body["progress"])
            if body["status"] != "CREATING":
                break
            await asyncio.sleep(0.01)
        assert body["status"] == "RUNNING", body
        assert seen == sorted(seen), f"progress never goes down: {seen}"
        assert len({p for p in seen if 0 < p < 100}) >= 2, f"progress rose in steps: {seen}"
        assert body["progress"] == 100

        (server,) = fake.servers.values()
        assert (server.status, server.name) == ("ACTIVE", "web")
        assert server.flavor.name == "sog.asteroid"
        assert server.tags == [orbit["operation_id"]]
        assert server.admin_pass == "Sup3r-secret!"  # reached the cloud; never shown by the API
        assert body["admin_pwd"] is None
        assert body["ipaddr"] == server.addresses["private"][0]["addr"]
        assert await server_id(app, orbit["id"]) == server.id

        (root,) = fake.volumes.values()
        assert (root.status, root.size, root.image.name) == ("in-use", 20, "ubuntu-14.04-x64")
        assert root.attachments[0]["server_id"] == server.id
        assert [b.volume_id for b in server.bdms] == [root.id]
        (model,) = body["volume_model"]
        assert (model["status"], model["partition"], model["size"]) == (
            "RUNNING",
            "/dev/vda",
            "20 GB",
        )
        stored = await db_rows(
            app, "SELECT secret FROM operations WHERE id=:id", id=orbit["operation_id"]
        )
        assert stored == [{"secret": None}]

    async def test_the_ssh_key_goes_to_cloud_init(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        await running_orbit(client)
        (post,) = fake.requests("POST", r"/compute/v2\.1/servers$")
        user_data = base64.b64decode(post.json["server"]["user_data"]).decode()
        assert SSH_KEY in user_data and "key_name" not in post.json["server"]


class TestActions:
    async def test_pause_start_reboot(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        cloud_id = await server_id(app, orbit["id"])

        paused = await act(client, orbit["id"], "pause")
        assert (paused.status_code, paused.json()["status"]) == (202, "PAUSING")
        await wait_status(client, orbit["id"], "PAUSED")
        assert fake.servers[cloud_id].status == "PAUSED"

        started = await act(client, orbit["id"], "start")
        assert (started.status_code, started.json()["status"]) == (202, "BOOTING")
        await wait_status(client, orbit["id"], "RUNNING")
        assert fake.servers[cloud_id].status == "ACTIVE"

        rebooted = await act(client, orbit["id"], "reboot")
        assert (rebooted.status_code, rebooted.json()["status"]) == (202, "REBOOTING")
        operation = await wait_operation(client, operation_of(rebooted))
        assert operation["state"] == "succeeded"
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["progress"] == 100 and body["fault"] is None

        assert server_actions(fake, cloud_id) == [
            {"pause": None},
            {"unpause": None},
            {"reboot": {"type": "SOFT"}},
        ]

    async def test_rename_reaches_the_server(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        cloud_id = await server_id(app, orbit["id"])
        response = await client.put(
            f"/vms/vm_details/{orbit['id']}/", params={"vm_name": "renamed"}
        )
        assert response.status_code == 200 and response.json()["vm_name"] == "renamed"
        for _ in range(500):  # the worker renames the server after the answer
            if fake.requests("PUT", rf"/servers/{cloud_id}$"):
                break
            await asyncio.sleep(0.01)
        (put,) = fake.requests("PUT", rf"/servers/{cloud_id}$")
        assert put.json == {"server": {"name": "renamed"}}
        assert fake.servers[cloud_id].name == "renamed"


class TestResize:
    async def test_resize_is_confirmed_by_the_worker(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        fake.delays["resize"] = 30.0  # 0.3 s: long enough to see RESIZING
        orbit = await running_orbit(client, flavor=3)
        cloud_id = await server_id(app, orbit["id"])
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        assert (response.status_code, response.json()["status"]) == (202, "RESIZING")
        assert (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()["status"] == "RESIZING"

        body = await wait_status(client, orbit["id"], "RUNNING")
        assert (body["vcpus"], body["ram"], body["flavor_id"]) == (4, 16, 5)
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "succeeded"
        assert server_actions(fake, cloud_id) == [
            {"resize": {"flavorRef": _flavor_id(fake, "sog.pulsar")}},
            {"confirmResize": None},
        ]
        server = fake.servers[cloud_id]
        assert (server.status, server.flavor.name, server.old_flavor) == (
            "ACTIVE",
            "sog.pulsar",
            None,
        )

    async def test_a_resize_the_cloud_drops_keeps_the_old_flavor(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, flavor=3)
        cloud_id = await server_id(app, orbit["id"])
        fake.faults.skip_next_resize()
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "failed" and "sog.comet" in operation["error"]
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert (body["vcpus"], body["ram"], body["flavor_id"]) == (2, 4, 3)
        assert body["operation_id"] == operation_of(response)  # the reason stays one click away
        assert body["fault"] == operation["error"]
        assert {"confirmResize": None} not in server_actions(fake, cloud_id)


class TestRefusals:
    async def test_a_resize_nova_refuses_for_quota_keeps_the_orbit_running(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, flavor=3)
        cloud_id = await server_id(app, orbit["id"])
        fake.faults.fail(
            "POST",
            rf"/servers/{cloud_id}/action$",
            403,
            message="Quota exceeded for cores: Requested 2, but already used 20 of 20 cores",
        )
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "failed" and "Quota exceeded for cores" in operation["error"]
        body = await wait_status(client, orbit["id"], "RUNNING")  # not ERROR: nothing changed
        assert (body["vcpus"], body["ram"], body["fault"]) == (2, 4, operation["error"])
        assert fake.servers[cloud_id].status == "ACTIVE"
        assert (await act(client, orbit["id"], "pause")).status_code == 202  # usable at once

    async def test_an_action_nova_refuses_leaves_the_orbit_as_it_was(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        cloud_id = await server_id(app, orbit["id"])
        fake.faults.fail("POST", rf"/servers/{cloud_id}/action$", 409, message="Instance is locked")
        response = await act(client, orbit["id"], "pause")
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "failed"
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["fault"] == "The cloud refused: 409: Instance is locked"
        assert fake.servers[cloud_id].status == "ACTIVE"


class TestDelete:
    async def test_delete_root_true_deletes_the_root_volume_in_the_cloud(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, delete_root=True)
        cloud_id = await server_id(app, orbit["id"])
        root_id = orbit["volume_model"][0]["id"]
        cloud_root = await cloud_volume_id(app, root_id)

        response = await client.post(f"/vms/{orbit['id']}/delete/")
        assert (response.status_code, response.json()["status"]) == (202, "DELETING")
        await wait_gone(client, orbit["id"])
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "succeeded"
        assert (await client.get(f"/volume/{root_id}")).status_code == 404
        assert fake.servers[cloud_id].deleted
        assert cloud_root not in fake.volumes and cloud_root in fake.deleted_volumes
        assert fake.requests("DELETE", rf"/volumes/{cloud_root}$")

    async def test_delete_root_false_keeps_a_bootable_volume_for_a_new_orbit(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, delete_root=False, root_size=20)
        first_server = await server_id(app, orbit["id"])
        root_id = orbit["volume_model"][0]["id"]
        cloud_root = await cloud_volume_id(app, root_id)

        await client.post(f"/vms/{orbit['id']}/delete/")
        await wait_gone(client, orbit["id"])
        kept = await wait_volume(client, root_id, "AVAILABLE")
        assert (kept["is_root"], kept["is_bootable"], kept["attached_to"]) == (False, True, None)
        assert fake.servers[first_server].deleted
        assert (fake.volumes[cloud_root].status, fake.volumes[cloud_root].attachments) == (
            "available",
            [],
        )
        assert not fake.requests("DELETE", r"/volumes/")

        second = await create_orbit(
            client, vm_name="again", booting_image=None, booting_volume=root_id, root_size=40
        )
        body = await wait_status(client, second["id"], "RUNNING")
        (model,) = body["volume_model"]
        assert (model["id"], model["is_root"], model["status"]) == (root_id, True, "RUNNING")
        assert model["size"] == "40 GB"
        new_server = await server_id(app, second["id"])
        assert [b.volume_id for b in fake.servers[new_server].bdms] == [cloud_root]
        assert fake.volumes[cloud_root].size == 40
        assert len(fake.volumes) == 1 and live_servers(fake) == [new_server]
        (extend,) = fake.requests("POST", rf"/volumes/{cloud_root}/action$")
        assert extend.json == {"os-extend": {"new_size": 40}}

    async def test_data_volumes_are_detached_and_kept(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, delete_root=True)
        data = await attached_volume(client, orbit["id"], nickname="keep-me")
        cloud_data = await cloud_volume_id(app, data["id"])
        await client.post(f"/vms/{orbit['id']}/delete/")
        await wait_gone(client, orbit["id"])
        kept = await wait_volume(client, data["id"], "AVAILABLE")
        assert (kept["attached_to"], kept["partition"]) == (None, None)
        assert fake.volumes[cloud_data].status == "available"
        assert list(fake.volumes) == [cloud_data]
