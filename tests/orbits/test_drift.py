"""Drift: servers changed behind our back show in their orbits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from sog_api.main import create_app
from tests.conftest import db_rows, make_settings
from tests.helpers import running_orbit, wait_gone, wait_status


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, reconcile_interval=0.05))
    async with application.router.lifespan_context(application):
        yield application


async def _server_id(app: FastAPI, orbit_id: int) -> str:
    rows = await db_rows(app, "SELECT server_id FROM orbits WHERE id=:id", id=orbit_id)
    return str(rows[0]["server_id"])


class TestDrift:
    async def test_server_stopped_behind_our_back(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        await app.state.cloud.change_behind_back(
            await _server_id(app, orbit["id"]), status="SHUTOFF"
        )
        await wait_status(client, orbit["id"], "STOPPED")
        start = await client.post(
            "/vms/action/", params={"action": "start", "orbit_id": orbit["id"]}
        )
        assert start.status_code == 202 and start.json()["status"] == "BOOTING"
        await wait_status(client, orbit["id"], "RUNNING")

    async def test_server_deleted_behind_our_back(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        await app.state.cloud.change_behind_back(await _server_id(app, orbit["id"]), deleted=True)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "The server was deleted outside sog-api."
        assert (await client.post(f"/vms/{orbit['id']}/delete/")).status_code == 202
        await wait_gone(client, orbit["id"])
