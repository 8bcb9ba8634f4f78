"""What reaches the cloud while the API is used (SOG_CLOUD=openstack): headers, auth, listings."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI

from tests.cloud.api_helpers import (
    COMPUTE_CALL,
    VOLUME_CALL,
    act,
    server_listings,
    volume_listings,
)
from tests.conftest import db_rows
from tests.fake_openstack import Credentials, FakeOpenStack
from tests.helpers import (
    attached_volume,
    create_orbit,
    running_orbit,
    wait_gone,
    wait_status,
    wait_volume,
    wait_volume_gone,
)

DISCOVERY = (r"^/compute/v2\.1/?$", r"^/volume/v3/?$", r"^/image/?$")


async def _whole_life(client: httpx.AsyncClient) -> None:
    """Create, act on, resize, rename and delete an orbit with a data volume that grows."""
    orbit = await running_orbit(client, delete_root=True)
    volume = await attached_volume(client, orbit["id"])
    await act(client, orbit["id"], "pause")
    await wait_status(client, orbit["id"], "PAUSED")
    await client.post(f"/volume/{volume['id']}/resize/", params={"template_id": 2})
    await wait_volume(client, volume["id"], "RUNNING")
    await act(client, orbit["id"], "start")
    await wait_status(client, orbit["id"], "RUNNING")
    await client.post(f"/volume/{volume['id']}/detach/")
    await wait_volume(client, volume["id"], "AVAILABLE")
    await act(client, orbit["id"], "reboot")
    await wait_status(client, orbit["id"], "RUNNING")
    await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
    await wait_status(client, orbit["id"], "RUNNING")
    await client.patch(f"/vms/vm_details/{orbit['id']}/", params={"vm_name": "renamed"})
    await client.post(f"/volume/{volume['id']}/delete/")
    await wait_volume_gone(client, volume["id"])
    await client.post(f"/vms/{orbit['id']}/delete/")
    await wait_gone(client, orbit["id"])


class TestHeadersAndAuth:
    async def test_every_call_of_a_whole_life_has_its_microversion_and_one_token(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        await _whole_life(client)
        assert not fake.volumes and all(s.deleted for s in fake.servers.values())

        compute, volume = fake.requests(None, COMPUTE_CALL), fake.requests(None, VOLUME_CALL)
        kinds = {(e.method, e.path.rsplit("/", 1)[-1]) for e in compute + volume}
        assert {("POST", "servers"), ("POST", "action"), ("POST", "volumes")} <= kinds
        assert {("POST", "os-volume_attachments"), ("GET", "detail")} <= kinds
        assert fake.requests("PUT", r"/servers/[^/]+$")  # the rename
        assert fake.requests("DELETE", r"/os-volume_attachments/[^/]+$")
        assert fake.requests("DELETE", r"/volumes/[^/]+$")
        for entry in compute:
            assert entry.headers.get("openstack-api-version") == "compute 2.79", entry
            assert entry.headers.get("x-openstack-nova-api-version") == "2.79", entry
        for entry in volume:
            assert entry.headers.get("openstack-api-version") == "volume 3.42", entry
        assert fake.auth_count == 1
        assert len(fake.requests("POST", r"^/identity/v3/auth/tokens$")) == 1
        for discovery in DISCOVERY:
            assert len(fake.requests("GET", discovery)) == 1, discovery
        assert all(e.status is not None and e.status < 400 for e in fake.journal), [
            (e.method, e.path, e.status) for e in fake.journal if (e.status or 500) >= 400
        ]


class TestPolling:
    async def test_one_listing_per_cycle_whatever_the_number_of_orbits(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        fake.delays["build"] = 250.0  # 2.5 s at scale 0.01: the eight orbits build side by side
        orbits = await create_orbit(client, vm_name="fleet", vm_count=8)
        assert len(orbits) == 8
        poller = app.state.worker.poller
        for _ in range(1000):
            rows = await db_rows(
                app,
                "SELECT count(*) AS n FROM operations WHERE state='waiting' AND stage='server_wait'",
            )
            if rows[0]["n"] == 8:
                break
            await asyncio.sleep(0.01)
        assert rows[0]["n"] == 8, "the eight orbits never waited for their servers together"
        cycles, listed, volume_listed = poller.cycles, server_listings(fake), volume_listings(fake)
        await asyncio.sleep(0.8)  # eight servers building: the poller lists them once a cycle
        window_cycles = poller.cycles - cycles
        window_listings = server_listings(fake)[len(listed) :]
        assert window_cycles >= 3
        assert abs(len(window_listings) - window_cycles) <= 1, (len(window_listings), window_cycles)
        assert volume_listings(fake)[len(volume_listed) :] == []  # nobody waits for a volume

        for orbit in orbits:
            await wait_status(client, orbit["id"], "RUNNING")
        assert len(fake.servers) == 8 and len(fake.volumes) == 8
        polled = [e for e in server_listings(fake) if "changes-since" in e.query]
        assert 1 <= len(polled) <= poller.cycles
        assert len(volume_listings(fake)) <= poller.cycles
        assert fake.requests("GET", r"/servers/(?!detail$)[^/]+$") == []  # no per-orbit GETs
        assert fake.requests("GET", r"/volumes/(?!detail$)[^/]+$") == []


SECRET_CREDENTIALS = Credentials(password="kestone-pw-Zq81x", app_cred_secret="app-secret-Zq81x")


class TestSecrets:
    @pytest.mark.parametrize("fake_options", [{"credentials": SECRET_CREDENTIALS}])
    async def test_no_password_reaches_the_logs_even_at_debug(
        self,
        client: httpx.AsyncClient,
        fake: FakeOpenStack,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        orbit = await running_orbit(client, admin_pwd="Adm1n-pw-Zq81x")
        assert fake.servers[next(iter(fake.servers))].admin_pass == "Adm1n-pw-Zq81x"
        await act(client, orbit["id"], "pause")
        await wait_status(client, orbit["id"], "PAUSED")
        service = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        logged = "\n".join(r.getMessage() for r in service)  # not the test's own HTTP client
        assert "openstack" in logged.lower() or "curl" in logged  # the SDK did log at DEBUG
        assert "Adm1n-pw-Zq81x" not in logged
        assert "kestone-pw-Zq81x" not in logged
