"""The lifecycle rules: every refusal with the seed's message and a stable code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sog_api.db.base import utcnow
from sog_api.orbits.models import Orbit
from sog_api.projects.models import Project
from sog_api.volumes.models import Volume
from tests.conftest import SSH_KEY
from tests.helpers import db_update, wait_volume_gone
from tests.volumes.test_api import assert_problem

BUSY = ["CREATING", "ATTACHING", "DETACHING", "RESIZING", "DELETING"]
ORBIT_BUSY = ["CREATING", "BOOTING", "PAUSING", "REBOOTING", "RESIZING", "DELETING"]


async def make_orbit(app: FastAPI, **values: Any) -> int:
    """An orbit row written straight into the database (no server is ever made for it)."""
    async with app.state.sessionmaker.begin() as session:
        orbit = Orbit(
            **{"project_id": 1, "vm_name": "vm", "status": "RUNNING", "flavor_id": 2,
               "ssh_key_value": SSH_KEY, "server_id": "no-such-server", **values}
        )  # fmt: skip
        session.add(orbit)
        await session.flush()
        return orbit.id


async def make_volume(app: FastAPI, **values: Any) -> int:
    """A volume row written straight into the database."""
    async with app.state.sessionmaker.begin() as session:
        volume = Volume(
            **{"project_id": 1, "nickname": "vol", "size_gb": 20, "status": "AVAILABLE", **values}
        )
        session.add(volume)
        await session.flush()
        return volume.id


async def refused(
    client: httpx.AsyncClient, path: str, code: str, detail: str, **params: Any
) -> None:
    response = await client.post(path, params=params)
    assert assert_problem(response, 409, code)["detail"] == detail


class TestBusyVolume:
    async def test_refuses_attach_detach_resize_delete(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app)
        for status in BUSY:
            await db_update(app, Volume, volume_id, status=status)
            detail = f"Volume is in {status.capitalize()} status, please wait until it finish."
            base = f"/volume/{volume_id}"
            await refused(client, f"{base}/attach/{orbit_id}/", "volume_busy", detail)
            await refused(client, f"{base}/detach/", "volume_busy", detail)
            await refused(client, f"{base}/resize/", "volume_busy", detail, template_id=3)
            await refused(client, f"{base}/delete/", "volume_busy", detail)
            assert (await client.get(base)).json()["status"] == status

    async def test_root_volume_of_an_orbit_being_made(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit_id = await make_orbit(app, status="CREATING", server_id=None)
        volume_id = await make_volume(app, status="CREATING", is_root=True, orbit_id=orbit_id)
        detail = "Volume is in Creating status, please wait until it finish."
        await refused(client, f"/volume/{volume_id}/detach/", "volume_busy", detail)


class TestAttach:
    async def test_attached_volume(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        other_id = await make_orbit(app, vm_name="other")
        volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
        detail = "Volume is already attached to Virtual Machine."
        for target in (orbit_id, other_id):
            await refused(
                client, f"/volume/{volume_id}/attach/{target}/", "volume_attached", detail
            )

    async def test_busy_orbit(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app)
        for status in ORBIT_BUSY:
            await db_update(app, Orbit, orbit_id, status=status)
            detail = f"Virtual Machine is in {status.lower()} status, please wait until it finish."
            await refused(client, f"/volume/{volume_id}/attach/{orbit_id}/", "orbit_busy", detail)
            response = await client.post(
                "/volume/create/", params={"nickname": "d", "capacity": 20, "attach_to": orbit_id}
            )
            assert assert_problem(response, 409, "orbit_busy")["detail"] == detail
        assert [v["id"] for v in (await client.get("/volume/")).json()] == [volume_id]

    async def test_orbit_in_error(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app, status="ERROR")
        volume_id = await make_volume(app)
        detail = "Virtual Machine is in error status; volumes cannot be attached to it."
        await refused(client, f"/volume/{volume_id}/attach/{orbit_id}/", "orbit_error", detail)

    async def test_deleted_orbit_is_404(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        await db_update(app, Orbit, orbit_id, status="DELETED", deleted_at=utcnow())
        volume_id = await make_volume(app)
        response = await client.post(f"/volume/{volume_id}/attach/{orbit_id}/")
        assert_problem(response, 404, "not_found")


class TestDetach:
    async def test_root_volume_stays(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app, status="RUNNING", is_root=True, orbit_id=orbit_id)
        response = await client.post(f"/volume/{volume_id}/detach/")
        assert_problem(response, 409, "volume_is_root")

    async def test_detached_volume(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume_id = await make_volume(app)
        detail = "Volume is not attached to any Virtual Machine."
        await refused(client, f"/volume/{volume_id}/detach/", "volume_not_attached", detail)

    async def test_busy_orbit(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app, status="REBOOTING")
        volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
        detail = "Virtual Machine is in rebooting status, please wait until it finish."
        await refused(client, f"/volume/{volume_id}/detach/", "orbit_busy", detail)


class TestResize:
    async def test_attached_needs_a_paused_orbit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
        path = f"/volume/{volume_id}/resize/"
        for status in ("RUNNING", "STOPPED", "ERROR", "PAUSING", "BOOTING"):
            await db_update(app, Orbit, orbit_id, status=status)
            detail = "Please Pause the VM first"
            await refused(client, path, "orbit_not_paused", detail, template_id=3)

    async def test_only_larger_templates(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume_id = await make_volume(app, size_gb=120)
        options = (await client.get(f"/volume/{volume_id}/resize/")).json()
        assert [(t["id"], t["capacity"]) for t in options] == [(5, 240), (6, 500), (7, 1000)]
        for template_id in (1, 4, 8):
            response = await client.post(
                f"/volume/{volume_id}/resize/", params={"template_id": template_id}
            )
            body = assert_problem(response, 422, "invalid_parameter")
            assert body["errors"][0]["loc"] == ["query", "template_id"]


@pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])  # the extend stays open
class TestOrbitWaitsForItsVolumes:
    async def test_a_growing_volume_keeps_its_orbit_paused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit_id = await make_orbit(app, status="PAUSED")
        volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
        grow = await client.post(f"/volume/{volume_id}/resize/", params={"template_id": 3})
        assert grow.status_code == 202 and grow.json()["status"] == "RESIZING"
        detail = "Volume is in Resizing status, please wait until it finish."
        for action in ("start", "reboot", "pause"):
            await refused(client, "/vms/action/", "volume_busy", detail,
                          action=action, orbit_id=orbit_id)  # fmt: skip
        await refused(client, f"/vms/{orbit_id}/delete/", "volume_busy", detail)
        await db_update(app, Orbit, orbit_id, status="RUNNING")  # as if it were running again
        await refused(client, f"/vms/{orbit_id}/resize/", "volume_busy", detail, flavor_id=5)
        operations = (await client.get(f"/vms/vm_details/{orbit_id}/")).json()
        assert operations["operation_id"] is None  # no orbit operation was started


class TestDelete:
    async def test_attached_volume(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
        detail = "Please detach the volume before delete it"
        await refused(client, f"/volume/{volume_id}/delete/", "volume_attached", detail)

    async def test_root_volume_of_a_live_orbit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Not "detach it first": a root volume cannot be detached; it goes with its orbit."""
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app, status="RUNNING", is_root=True, orbit_id=orbit_id)
        detail = (
            "The root volume of a Virtual Machine goes with it: delete the Virtual Machine with"
            " delete_root true."
        )
        await refused(client, f"/volume/{volume_id}/delete/", "volume_is_root", detail)


class TestVolumeInError:
    async def test_only_delete_applies(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit_id = await make_orbit(app)
        volume_id = await make_volume(app, status="ERROR", fault="it broke")
        detail = "Volume is in Error status; it can only be detached or deleted."
        await refused(client, f"/volume/{volume_id}/attach/{orbit_id}/", "volume_error", detail)
        await refused(client, f"/volume/{volume_id}/resize/", "volume_error", detail, template_id=3)
        response = await client.post(f"/volume/{volume_id}/delete/")
        assert response.status_code == 202 and response.json()["fault"] is None
        await wait_volume_gone(client, volume_id)


class TestQuota:
    async def test_volume_gb_quota(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume_id = await make_volume(app, size_gb=20)
        await db_update(app, Project, 1, quota_volume_gb=50)
        try:
            response = await client.post(
                "/volume/create/", params={"nickname": "d", "capacity": 40}
            )
            assert_problem(response, 403, "quota_exceeded")
            response = await client.post(f"/volume/{volume_id}/resize/", params={"template_id": 3})
            assert_problem(response, 403, "quota_exceeded")
            assert [v["id"] for v in (await client.get("/volume/")).json()] == [volume_id]
            response = await client.post(
                "/volume/create/", params={"nickname": "d", "capacity": 20}
            )
            assert response.status_code == 201
        finally:  # the default project outlives the test on PostgreSQL
            await db_update(app, Project, 1, quota_volume_gb=None)
