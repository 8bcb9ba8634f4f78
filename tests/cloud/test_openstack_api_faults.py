"""Cloud trouble seen through the API (SOG_CLOUD=openstack): crashes, retries, refusals."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from sog_api.worker.context import ActionContext
from sog_api.worker.flows import FLOWS, Step
from sog_api.worker.runner import Worker
from tests.cloud.api_helpers import act, operation_of, server_id, server_listings
from tests.fake_openstack import FakeOpenStack
from tests.helpers import (
    create_orbit,
    running_orbit,
    wait_gone,
    wait_operation,
    wait_status,
)

POST_SERVERS = r"^/compute/v2\.1/servers$"
POST_VOLUMES = r"^/volume/v3/[^/]+/volumes$"


class TestNoDuplicates:
    @pytest.mark.parametrize("path", [POST_VOLUMES, POST_SERVERS], ids=["volume", "server"])
    async def test_a_lost_answer_is_found_again_by_the_operation_tag(
        self, client: httpx.AsyncClient, fake: FakeOpenStack, path: str
    ) -> None:
        fake.faults.lose_reply("POST", path)
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["fault"] is None
        assert len(fake.servers) == 1 and len(fake.volumes) == 1
        (post,) = fake.requests("POST", path)  # made once; the retry found it by its tag
        assert post.status is None
        lookups = (
            [e for e in fake.requests("GET", r"/servers/detail$") if "tags" in e.query]
            if path == POST_SERVERS
            else [e for e in fake.requests("GET", r"/volumes/detail$") if "metadata" in e.query]
        )
        assert len(lookups) == 2 and lookups[-1].time > post.time

    @pytest.mark.parametrize(
        ("action", "params", "status"),
        [("pause", None, "PAUSED"), ("resize", {"flavor_id": 5}, "RUNNING")],
    )
    async def test_a_lost_answer_to_an_action_is_not_taken_for_a_refusal(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        action: str,
        params: dict[str, int] | None,
        status: str,
    ) -> None:
        orbit = await running_orbit(client, flavor=3)
        cloud_id = await server_id(app, orbit["id"])
        fake.faults.lose_reply("POST", rf"/servers/{cloud_id}/action$")
        if params is None:
            response = await act(client, orbit["id"], action)
        else:
            response = await client.post(f"/vms/{orbit['id']}/{action}/", params=params)
        operation = await wait_operation(client, operation_of(response))
        assert operation["state"] == "succeeded", operation
        body = await wait_status(client, orbit["id"], status)
        assert body["fault"] is None
        lost, retried, *_ = fake.requests("POST", rf"/servers/{cloud_id}/action$")
        assert (lost.status, retried.status) == (None, 409)  # Nova had it the first time
        if action == "resize":
            assert (body["vcpus"], body["ram"]) == (4, 16)

    @pytest.mark.parametrize(
        "settings_overrides", [{"run_worker": False, "worker_lease_seconds": 1.0}]
    )
    async def test_a_worker_that_dies_after_post_servers_leaves_one_server(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        create = FLOWS["orbit.create"]
        real_action = create.actions["server"]
        posted = asyncio.Event()

        async def dies_after_the_call(ctx: ActionContext) -> Step:
            await real_action(ctx)  # POST /servers reached the cloud...
            posted.set()
            await asyncio.Event().wait()  # ...and the process dies before recording it
            raise AssertionError("unreachable")

        monkeypatch.setitem(create.actions, "server", dies_after_the_call)
        state = app.state
        doomed = Worker(state.settings, state.sessionmaker, state.cloud, state.wake)
        monkeypatch.setattr(doomed, "release_held", _nothing)  # a killed process releases nothing
        doomed.start()
        orbit = await create_orbit(client)
        await asyncio.wait_for(posted.wait(), 15)
        await doomed.stop(grace=0)
        monkeypatch.setitem(create.actions, "server", real_action)

        survivor = Worker(state.settings, state.sessionmaker, state.cloud, state.wake)
        survivor.start()
        try:
            body = await wait_status(client, orbit["id"], "RUNNING")
        finally:
            await survivor.stop()
        assert len(fake.requests("POST", POST_SERVERS)) == 1
        assert len(fake.servers) == 1 and len(fake.volumes) == 1
        (server,) = fake.servers.values()
        assert server.tags == [orbit["operation_id"]] and body["ipaddr"] is not None
        operation = (await client.get(f"/operations/{orbit['operation_id']}")).json()
        assert operation["attempts"] >= 2

    async def test_a_late_first_server_is_adopted_when_the_second_post_is_refused(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        fake: FakeOpenStack,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The first POST's answer is lost, and Nova shows its server only after the retry's
        # look-up by tag found nothing: the retry's POST is refused (the boot volume is taken).
        fake.faults.lose_reply("POST", POST_SERVERS)
        cloud = app.state.cloud
        real_find = cloud.find_server_by_tag
        lookups: list[object] = []

        async def not_yet_visible(tag: str) -> object:
            found = await real_find(tag)
            lookups.append(found)
            return None if len(lookups) == 2 else found  # the retry's first look misses it

        monkeypatch.setattr(cloud, "find_server_by_tag", not_yet_visible)
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["fault"] is None and body["ipaddr"] is not None
        first, second = fake.requests("POST", POST_SERVERS)
        assert (first.status, second.status) == (None, 400)
        live = [s for s in fake.servers.values() if not s.deleted]
        assert len(live) == 1 and live[0].tags == [orbit["operation_id"]]
        assert await server_id(app, orbit["id"]) == live[0].id
        assert lookups[0] is None and lookups[1] is not None and len(lookups) == 3


async def _nothing() -> None:
    return None


class TestTransientErrors:
    async def test_503s_are_retried_until_the_work_is_done(
        self, client: httpx.AsyncClient, app: FastAPI, fake: FakeOpenStack
    ) -> None:
        fake.faults.fail("POST", POST_VOLUMES, 503, times=2)
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "RUNNING")
        assert body["fault"] is None and body["progress"] == 100
        assert [e.status for e in fake.requests("POST", POST_VOLUMES)] == [503, 503, 202]
        assert len(fake.servers) == 1 and len(fake.volumes) == 1
        operation = (await client.get(f"/operations/{orbit['operation_id']}")).json()
        assert (operation["state"], operation["error"]) == ("succeeded", None)

        cloud_id = await server_id(app, orbit["id"])
        fake.faults.fail("POST", rf"/servers/{cloud_id}/action$", 503, times=1)
        fake.faults.fail("GET", r"/servers/detail$", 503, times=2)
        response = await act(client, orbit["id"], "pause")
        await wait_status(client, orbit["id"], "PAUSED")
        assert (await wait_operation(client, operation_of(response)))["state"] == "succeeded"
        assert [e.status for e in fake.requests("POST", rf"/servers/{cloud_id}/action$")] == [
            503,
            202,
        ]
        assert [e.status for e in server_listings(fake)].count(503) == 2

    async def test_a_429_is_retried_after_retry_after(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        fake.faults.fail("POST", POST_VOLUMES, 429, retry_after=1)
        orbit = await create_orbit(client)
        await wait_status(client, orbit["id"], "RUNNING")
        refused, made = fake.requests("POST", POST_VOLUMES)
        assert (refused.status, made.status) == (429, 202)
        retry = next(
            e
            for e in fake.requests("GET", r"/volumes/detail$")
            if "metadata" in e.query and e.time > refused.time
        )
        assert retry.time - refused.time >= 0.95  # not before Retry-After

    async def test_the_poller_waits_out_a_429_on_its_listing(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        orbit = await running_orbit(client)
        fake.faults.fail("GET", r"/servers/detail$", 429, retry_after=1)
        await act(client, orbit["id"], "pause")
        await wait_status(client, orbit["id"], "PAUSED")
        listings = server_listings(fake)
        refused = next(i for i, e in enumerate(listings) if e.status == 429)
        after = listings[refused + 1]
        assert after.status == 200
        assert after.time - listings[refused].time >= 0.95  # not before Retry-After


class TestPermanentErrors:
    async def test_a_build_failure_shows_the_cloud_fault(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        fake.faults.fail_next_server(
            "No valid host was found. There are not enough hosts available."
        )
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "No valid host was found. There are not enough hosts available."
        operation = (await client.get(f"/operations/{orbit['operation_id']}")).json()
        assert (operation["state"], operation["error"]) == ("failed", body["fault"])
        (root,) = body["volume_model"]
        assert root["status"] == "AVAILABLE"  # made, and free again: nothing is still creating

        response = await client.post(f"/vms/{orbit['id']}/delete/")
        assert response.status_code == 202
        await wait_gone(client, orbit["id"])
        assert all(s.deleted for s in fake.servers.values())

    async def test_a_quota_refusal_is_the_fault(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        fake.faults.fail("POST", POST_SERVERS, 403, times=1)
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"].startswith("403: Quota exceeded for instances"), body["fault"]
        assert len(fake.requests("POST", POST_SERVERS)) == 1  # permanent: not retried
        assert not [s for s in fake.servers.values() if not s.deleted]

    async def test_a_root_volume_in_error_fails_the_create(
        self, client: httpx.AsyncClient, fake: FakeOpenStack
    ) -> None:
        fake.faults.fail_next_volume()
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "The root volume could not be prepared (cloud status error)."
        assert body["volume_model"][0]["status"] == "ERROR"
        assert not fake.requests("POST", POST_SERVERS)
