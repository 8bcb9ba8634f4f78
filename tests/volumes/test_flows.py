"""How the worker carries volume operations through cloud failures, crashes and races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from sog_api.cloud import base as cb
from sog_api.main import create_app
from sog_api.operations.models import Operation
from sog_api.settings import Settings
from sog_api.volumes import service
from sog_api.volumes.models import Volume
from sog_api.volumes.schemas import VolumeCreateQuery
from sog_api.worker import volume_flows
from sog_api.worker.context import ActionContext
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


class TestCloudFailures:
    async def test_create_error_leaves_the_volume_in_error(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        app.state.cloud.faults.volume_error = "no space left"
        volume = await create_volume(client)
        body = await wait_volume(client, volume["id"], "ERROR")
        assert body["fault"] == "The cloud could not create the volume (status error)."
        operation = await wait_operation(client, volume["operation_id"])
        assert operation["state"] == "failed" and operation["error"] == body["fault"]
        response = await client.post(f"/volume/{volume['id']}/delete/")
        assert response.status_code == 202
        await wait_volume_gone(client, volume["id"])

    async def test_refused_in_use_extend_keeps_size_and_status(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        volume = await attached_volume(client, orbit["id"])
        await client.post("/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]})
        await wait_status(client, orbit["id"], "PAUSED")
        app.state.cloud.faults.fail_next(
            "extend_volume", cb.CloudBadRequest("in-use extend needs microversion 3.42")
        )
        response = await client.post(f"/volume/{volume['id']}/resize/", params={"template_id": 2})
        assert response.status_code == 202
        operation = await wait_operation(client, response.json()["operation_id"])
        assert operation["state"] == "failed" and "3.42" in operation["error"]
        body = await wait_volume(client, volume["id"], "RUNNING")
        assert (body["size"], body["partition"]) == ("20 GB", "/dev/vdb")
        assert "3.42" in body["fault"]

    async def test_transient_errors_are_retried(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        volume = await available_volume(client)
        app.state.cloud.faults.fail_next(
            "attach_volume", cb.CloudUnavailable("503 from Nova", retry_after=0.05)
        )
        response = await client.post(f"/volume/{volume['id']}/attach/{orbit['id']}/")
        operation = await wait_operation(client, response.json()["operation_id"])
        assert operation["state"] == "succeeded" and operation["attempts"] >= 2
        assert (await client.get(f"/volume/{volume['id']}")).json()["status"] == "RUNNING"


class TestOrbitDeletedMeanwhile:
    async def test_delete_waits_for_the_volume_made_for_it(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        volume = await create_volume(client, attach_to=orbit["id"])
        refused = await client.post(f"/vms/{orbit['id']}/delete/")
        assert refused.status_code == 409 and refused.json()["code"] == "volume_busy"
        assert refused.json()["detail"] == (
            "Volume is in Creating status, please wait until it finish."
        )
        await wait_volume(client, volume["id"], "RUNNING")
        response = await client.post(f"/vms/{orbit['id']}/delete/")
        assert response.status_code == 202
        await wait_gone(client, orbit["id"])
        body = await wait_volume(client, volume["id"], "AVAILABLE")
        assert body["orbit_id"] is None and body["partition"] is None


class TestRaces:
    async def test_one_of_two_racing_requests_wins(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        volume = await available_volume(client)
        base = f"/volume/{volume['id']}"

        async def race(path: str) -> list[int]:
            responses = await asyncio.gather(client.post(path), client.post(path))
            return sorted(r.status_code for r in responses)

        assert await race(f"{base}/attach/{orbit['id']}/") == [202, 409]
        await wait_volume(client, volume["id"], "RUNNING")
        assert await race(f"{base}/detach/") == [202, 409]
        await wait_volume(client, volume["id"], "AVAILABLE")
        # The loser is refused while the volume is DELETING (409), or finds it gone (404) when
        # the worker finished the delete before the loser got its turn at the lock.
        assert await race(f"{base}/delete/") in ([202, 409], [202, 404])
        await wait_volume_gone(client, volume["id"])


@pytest.fixture
async def idle_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without its worker: operations stay where the test puts them."""
    application = create_app(settings.model_copy(update={"run_worker": False}))
    async with application.router.lifespan_context(application):
        yield application


class TestCrashSafety:
    async def test_repeated_create_makes_one_cloud_volume(
        self, idle_app: FastAPI, settings: Settings
    ) -> None:
        sessions = idle_app.state.sessionmaker
        async with sessions.begin() as session:
            outcome = await service.create_volume(
                session, settings, 1, VolumeCreateQuery(nickname="d", capacity=20)
            )
        async with sessions() as session:
            op = await session.get(Operation, outcome.operation_id)
        ctx = ActionContext(op, idle_app.state.cloud, settings, sessions)
        # a worker dies after the cloud call, before recording it; the next one runs it again
        first = await volume_flows.create_volume(ctx)
        again = await volume_flows.create_volume(ctx)
        assert (
            (first.outcome, first.stage) == (again.outcome, again.stage) == ("wait", "create_wait")
        )
        rows = await db_rows(idle_app, "SELECT id, tag FROM sim_volumes")
        assert [r["tag"] for r in rows] == [op.id]

    async def test_delete_finds_what_an_interrupted_create_made(
        self, idle_app: FastAPI, settings: Settings
    ) -> None:
        sessions, cloud = idle_app.state.sessionmaker, idle_app.state.cloud
        async with sessions.begin() as session:
            made = await service.create_volume(
                session, settings, 1, VolumeCreateQuery(nickname="d", capacity=20)
            )
            create_op = await session.get(Operation, made.operation_id)
        await volume_flows.create_volume(ActionContext(create_op, cloud, settings, sessions))
        async with sessions.begin() as session:  # the create gave up before recording its volume
            volume = await session.get(Volume, made.volume.id)
            volume.status, volume.fault = (
                "ERROR",
                "The operation did not finish before its deadline.",
            )
            outcome = await service.delete_volume(session, settings, 1, volume.id)
            delete_op = await session.get(Operation, outcome.operation_id)
        ctx = ActionContext(delete_op, cloud, settings, sessions)
        assert (await volume_flows.delete(ctx)).outcome == "retry"  # the cloud is still making it
        await asyncio.sleep(0.2)
        step = await volume_flows.delete(ctx)
        assert (step.outcome, step.stage) == ("wait", "delete_wait")
        await cloud.list_volumes()
        rows = await db_rows(idle_app, "SELECT status FROM sim_volumes")
        assert rows == [{"status": "deleting"}]
