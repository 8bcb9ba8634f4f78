"""A volume's whole life through the HTTP API with SOG_CLOUD=openstack, against the fake cloud."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.cloud.api_helpers import VOLUME_CALL, act, cloud_volume_id, operation_of, server_id
from tests.fake_openstack import FakeOpenStack
from tests.helpers import (
    attached_volume,
    available_volume,
    create_volume,
    running_orbit,
    wait_operation,
    wait_status,
    wait_volume,
    wait_volume_gone,
)

TEMPLATE_40_GB = 2


class TestCreate:
    async def test_create_becomes_available_in_the_cloud(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        response = await client.post("/volume/create/", params={"nickname": "data", "capacity": 20})
        assert response.status_code == 201
        created = response.json()
        assert created["status"] == "CREATING"
        body = await wait_volume(client, created["id"], "AVAILABLE")
        assert (body["size"], body["is_bootable"], body["partition"]) == ("20 GB", False, None)
        cloud_id = await cloud_volume_id(app, created["id"])
        volume = fake.volumes[cloud_id]
        assert (volume.status, volume.size, volume.image) == ("available", 20, None)
        (post,) = fake.requests("POST", r"/volumes$")
        assert post.json["volume"]["metadata"] == {"sog_operation_id": operation_of(response)}
        assert (post.json["volume"]["size"], post.json["volume"]["name"]) == (
            20,
            f"sog-volume-{created['id']}",
        )

    async def test_create_and_attach_reports_the_device_the_cloud_chose(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        created = await create_volume(client, attach_to=orbit["id"], partition="/dev/vdq")
        body = await wait_volume(client, created["id"], "RUNNING")
        assert (body["attached_to"], body["orbit_id"]) == (orbit["vm_name"], orbit["id"])
        assert body["partition"] == "/dev/vdb"  # the fake picks the next free device
        cloud_id = await cloud_volume_id(app, created["id"])
        attachment = fake.volumes[cloud_id].attachments[0]
        assert (attachment["server_id"], attachment["device"]) == (
            await server_id(app, orbit["id"]),
            "/dev/vdb",
        )
        (post,) = fake.requests("POST", r"/os-volume_attachments$")
        assert post.json == {"volumeAttachment": {"volumeId": cloud_id, "device": "/dev/vdq"}}
        detail = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
        assert sorted(v["partition"] for v in detail["volume_model"]) == ["/dev/vda", "/dev/vdb"]


class TestAttachDetach:
    async def test_attach_then_detach(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        volume = await available_volume(client)
        cloud_id = await cloud_volume_id(app, volume["id"])

        response = await client.post(f"/volume/{volume['id']}/attach/{orbit['id']}/")
        assert (response.status_code, response.json()["status"]) == (202, "ATTACHING")
        attached = await wait_volume(client, volume["id"], "RUNNING")
        assert attached["partition"] == "/dev/vdb"
        assert fake.volumes[cloud_id].status == "in-use"

        response = await client.post(f"/volume/{volume['id']}/detach/")
        assert (response.status_code, response.json()["status"]) == (202, "DETACHING")
        detached = await wait_volume(client, volume["id"], "AVAILABLE")
        assert (detached["partition"], detached["attached_to"]) == (None, None)
        assert (fake.volumes[cloud_id].status, fake.volumes[cloud_id].attachments) == (
            "available",
            [],
        )
        cloud_server = await server_id(app, orbit["id"])
        assert fake.requests(
            "DELETE", rf"/servers/{cloud_server}/os-volume_attachments/{cloud_id}$"
        )


class TestExtend:
    async def test_a_detached_volume_grows_at_once(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        volume = await available_volume(client)
        response = await client.post(
            f"/volume/{volume['id']}/resize/", params={"template_id": TEMPLATE_40_GB}
        )
        assert (response.status_code, response.json()["status"]) == (202, "RESIZING")
        body = await wait_volume(client, volume["id"], "AVAILABLE")
        assert (body["size"], body["size_gb"]) == ("40 GB", 40)
        assert fake.volumes[await cloud_volume_id(app, volume["id"])].size == 40

    @pytest.mark.parametrize("settings_overrides", [{}, {"os_volume_microversion": "3.0"}])
    async def test_an_attached_volume_grows_once_the_orbit_is_paused_with_342(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        settings_overrides: dict[str, Any],
    ) -> None:
        orbit = await running_orbit(client)
        volume = await attached_volume(client, orbit["id"])
        cloud_id = await cloud_volume_id(app, volume["id"])
        refused = await client.post(
            f"/volume/{volume['id']}/resize/", params={"template_id": TEMPLATE_40_GB}
        )
        assert refused.status_code == 409
        assert refused.json()["detail"] == "Please Pause the VM first"

        await act(client, orbit["id"], "pause")
        await wait_status(client, orbit["id"], "PAUSED")
        response = await client.post(
            f"/volume/{volume['id']}/resize/", params={"template_id": TEMPLATE_40_GB}
        )
        assert response.status_code == 202
        assert (await wait_operation(client, operation_of(response)))["state"] == "succeeded"
        body = await wait_volume(client, volume["id"], "RUNNING")
        assert (body["size_gb"], body["partition"]) == (40, "/dev/vdb")
        assert (fake.volumes[cloud_id].size, fake.volumes[cloud_id].status) == (40, "in-use")
        (extend,) = fake.requests("POST", rf"/volumes/{cloud_id}/action$")
        assert extend.json == {"os-extend": {"new_size": 40}}
        assert extend.headers["openstack-api-version"] == "volume 3.42"
        configured = settings_overrides.get("os_volume_microversion", "3.42")
        others = [e for e in fake.requests(None, VOLUME_CALL) if e is not extend]
        assert {e.headers["openstack-api-version"] for e in others} == {f"volume {configured}"}

    @pytest.mark.parametrize("fake_options", [{"volume_max_microversion": "3.40"}])
    async def test_an_old_cinder_refuses_visibly_and_the_volume_keeps_its_size(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        volume = await attached_volume(client, orbit["id"])
        await act(client, orbit["id"], "pause")
        await wait_status(client, orbit["id"], "PAUSED")
        response = await client.post(
            f"/volume/{volume['id']}/resize/", params={"template_id": TEMPLATE_40_GB}
        )
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "failed" and "in-use" in operation["error"]
        body = await wait_volume(client, volume["id"], "RUNNING")
        assert (body["size_gb"], body["partition"]) == (20, "/dev/vdb")
        assert body["fault"] is not None and "refused" in body["fault"]
        cloud_id = await cloud_volume_id(app, volume["id"])
        assert (fake.volumes[cloud_id].size, fake.volumes[cloud_id].status) == (20, "in-use")

    @pytest.mark.parametrize("fake_options", [{"quotas": {"gigabytes": 30}}])
    async def test_a_quota_refusal_keeps_the_volume_as_it_was(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        volume = await available_volume(client)
        response = await client.post(
            f"/volume/{volume['id']}/resize/", params={"template_id": TEMPLATE_40_GB}
        )
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "failed" and "quota" in operation["error"].lower()
        body = await wait_volume(client, volume["id"], "AVAILABLE")  # not ERROR: nothing changed
        assert body["size_gb"] == 20 and "quota" in body["fault"].lower()
        cloud_id = await cloud_volume_id(app, volume["id"])
        assert (fake.volumes[cloud_id].size, fake.volumes[cloud_id].status) == (20, "available")


class TestDelete:
    async def test_delete_removes_it_from_the_cloud(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        volume = await available_volume(client)
        cloud_id = await cloud_volume_id(app, volume["id"])
        response = await client.post(f"/volume/{volume['id']}/delete/")
        assert (response.status_code, response.json()["status"]) == (202, "DELETING")
        await wait_volume_gone(client, volume["id"])
        assert cloud_id not in fake.volumes and cloud_id in fake.deleted_volumes
        (delete,) = fake.requests("DELETE", rf"/volumes/{cloud_id}$")
        assert delete.status == 202

    async def test_an_attached_volume_must_be_detached_first(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        volume = await attached_volume(client, orbit["id"])
        refused = await client.post(f"/volume/{volume['id']}/delete/")
        assert refused.status_code == 409
        assert refused.json()["detail"] == "Please detach the volume before delete it"
        assert not fake.requests("DELETE", r"/volumes/")
