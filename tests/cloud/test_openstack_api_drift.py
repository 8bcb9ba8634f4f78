"""Servers changed behind our back on the fake OpenStack show in their orbits (SOG_CLOUD=openstack)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.cloud.api_helpers import act, server_actions, server_id
from tests.fake_openstack import FakeOpenStack
from tests.helpers import running_orbit, wait_gone, wait_status


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"reconcile_interval": 0.1}


class TestDrift:
    async def test_a_server_stopped_behind_our_back_is_started_again(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        cloud_id = await server_id(app, orbit["id"])
        fake.external_stop_server(cloud_id)
        await wait_status(client, orbit["id"], "STOPPED")
        response = await act(client, orbit["id"], "start")
        assert (response.status_code, response.json()["status"]) == (202, "BOOTING")
        await wait_status(client, orbit["id"], "RUNNING")
        assert server_actions(fake, cloud_id) == [{"os-start": None}]
        assert fake.servers[cloud_id].status == "ACTIVE"

    async def test_a_server_broken_behind_our_back_recovers_with_a_hard_reboot(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        cloud_id = await server_id(app, orbit["id"])
        fake.external_error_server(cloud_id, "Host failure")
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "Host failure"
        response = await act(client, orbit["id"], "reboot")
        assert (response.status_code, response.json()["status"]) == (202, "REBOOTING")
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["fault"] is None
        assert server_actions(fake, cloud_id) == [{"reboot": {"type": "HARD"}}]

    async def test_a_server_deleted_behind_our_back(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client, delete_root=True)
        cloud_id = await server_id(app, orbit["id"])
        fake.external_delete_server(cloud_id)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "The server was deleted outside sog-api."
        assert (await client.post(f"/vms/{orbit['id']}/delete/")).status_code == 202
        await wait_gone(client, orbit["id"])
        assert fake.volumes == {}  # the root volume went too
