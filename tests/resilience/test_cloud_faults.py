"""Cloud faults: transient errors are retried (and never double a create), an outage delays but
loses nothing, permanent errors end in ERROR with a readable fault, deadlines end what hangs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import TEST_API_KEY, db_rows, make_settings
from tests.fake_openstack import FakeOpenStack
from tests.helpers import create_orbit, wait_status
from tests.resilience.harness import live_servers, live_volumes, server_posts, volume_posts

from sog_api.main import create_app


@dataclass
class Running:
    """The app with its worker on the fake OpenStack, and a client."""

    app: FastAPI
    client: httpx.AsyncClient
    lifespan: Any

    async def stop(self) -> None:
        """Shut down: the worker stops, and every cloud call still on its way ends first."""
        if self.lifespan is not None:
            lifespan, self.lifespan = self.lifespan, None
            await self.client.aclose()
            await lifespan.__aexit__(None, None, None)


CloudApp = Callable[..., Awaitable[Running]]


@pytest.fixture
async def cloud_app(
    db_url: str, fake: FakeOpenStack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CloudApp]:
    """``await cloud_app(**settings)``: start the app and its worker on the fake OpenStack."""
    for name, value in fake.os_environ().items():
        monkeypatch.setenv(name, value)
    started: list[Running] = []

    async def start(**overrides: Any) -> Running:
        values: dict[str, Any] = {
            "cloud": "openstack", "worker_poll_interval": 0.05, "worker_lease_seconds": 5.0,
            "os_call_timeout": 5.0, "reconcile_interval": 0.2, **overrides,
        }  # fmt: skip
        app = create_app(make_settings(db_url, **values))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sog",
            headers={"Authorization": f"Token {TEST_API_KEY}"},
        )  # fmt: skip
        started.append(Running(app, client, lifespan))
        return started[-1]

    yield start
    for running in reversed(started):
        await running.stop()


async def _create_op(app: FastAPI, orbit_id: int) -> str:
    [row] = await db_rows(
        app, "SELECT id FROM operations WHERE orbit_id=:o AND kind='orbit.create'", o=orbit_id
    )
    return str(row["id"])


def _once(fake: FakeOpenStack, op: str) -> tuple[int, int, int, int]:
    """(server POSTs, volume POSTs, live servers, live volumes) for one create operation."""
    return (
        server_posts(fake)[op],
        volume_posts(fake)[op],
        live_servers(fake)[op],
        live_volumes(fake)[op],
    )


class TestSlowCloud:
    async def test_a_create_slower_than_its_lease_makes_one_server(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        # the POST takes twice the lease: the claim must not expire under the step in hand
        running = await cloud_app(worker_lease_seconds=1.0)
        fake.faults.latency("POST", r"/servers$", 2.0, times=1)
        orbit = await create_orbit(running.client)
        await wait_status(running.client, orbit["id"], "RUNNING")
        op = await _create_op(running.app, orbit["id"])
        await running.stop()
        assert _once(fake, op) == (1, 1, 1, 1)

    async def test_a_create_slower_than_the_step_timeout_makes_one_server(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        # the step gives up after 0.5 s; its retry must not overlap the POST still on its way
        running = await cloud_app(worker_step_timeout=0.5)
        fake.faults.latency("POST", r"/servers$", 1.5, times=1)
        orbit = await create_orbit(running.client)
        await wait_status(running.client, orbit["id"], "RUNNING")
        op = await _create_op(running.app, orbit["id"])
        operation = (await running.client.get(f"/operations/{op}")).json()
        assert operation["state"] == "succeeded" and operation["attempts"] >= 3
        await running.stop()
        assert _once(fake, op) == (1, 1, 1, 1)
