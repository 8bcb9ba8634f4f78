"""A worker restarted while the cloud finishes work (SOG_CLOUD=openstack): nothing waits forever.

The restarted process has a fresh OpenStackBackend: it never listed the volumes that vanished
while it was away, and Cinder lists no deleted volumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from sog_api.cloud.openstack import OpenStackBackend
from sog_api.worker import poller
from sog_api.worker.runner import Worker
from tests.cloud.api_helpers import cloud_volume_id
from tests.fake_openstack import FakeOpenStack
from tests.helpers import available_volume, running_orbit, wait_gone, wait_volume_gone


@pytest.fixture(autouse=True)
def quick_staleness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look a missing watched resource up after 0.3 s instead of 30 s."""
    monkeypatch.setattr(poller, "STALE_AFTER", timedelta(seconds=0.3))


@pytest.fixture
async def restart(app: FastAPI) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop the app's worker; then ``await restart()`` starts a new process's worker."""
    started: list[tuple[Worker, OpenStackBackend]] = []

    async def again() -> None:
        await app.state.worker.stop()
        cloud = OpenStackBackend.from_settings(app.state.settings)
        await cloud.start()
        worker = Worker(app.state.settings, app.state.sessionmaker, cloud, app.state.wake)
        worker.start()
        started.append((worker, cloud))

    yield again
    for worker, cloud in started:
        await worker.stop()
        await cloud.close()


async def _wait_for(fake: FakeOpenStack, method: str, path: str) -> None:
    for _ in range(1000):
        if fake.requests(method, path):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{method} {path} never reached the fake")


class TestRestart:
    async def test_a_volume_deleted_while_the_worker_was_down_is_gone(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        restart: Callable[[], Awaitable[None]],
    ) -> None:
        volume = await available_volume(client)
        cloud_id = await cloud_volume_id(app, volume["id"])
        fake.delays["volume_delete"] = 10_000.0  # Cinder takes its time...
        await client.post(f"/volume/{volume['id']}/delete/")
        await _wait_for(fake, "DELETE", rf"/volumes/{cloud_id}$")
        await restart()
        fake.settle()  # ...and finishes while no worker of ours watched
        await wait_volume_gone(client, volume["id"])
        assert cloud_id in fake.deleted_volumes

    async def test_a_root_volume_deleted_while_the_worker_was_down(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        restart: Callable[[], Awaitable[None]],
    ) -> None:
        orbit = await running_orbit(client, delete_root=True)
        cloud_root = await cloud_volume_id(app, orbit["volume_model"][0]["id"])
        fake.delays["volume_delete"] = 10_000.0
        await client.post(f"/vms/{orbit['id']}/delete/")
        await _wait_for(fake, "DELETE", rf"/volumes/{cloud_root}$")
        await restart()
        fake.settle()
        await wait_gone(client, orbit["id"])
        assert cloud_root in fake.deleted_volumes
