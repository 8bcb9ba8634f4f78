"""Cloud faults: transient errors are retried (and never double a create), an outage delays but
loses nothing, permanent errors end in ERROR with a readable fault, deadlines end what hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from sog_api.cloud.openstack_convert import TAG_KEY
from sog_api.worker.apply import BACKOFF_CAP, backoff_seconds
from tests.conftest import db_rows
from tests.fake_openstack import FakeOpenStack
from tests.helpers import create_orbit, wait_gone, wait_status
from tests.resilience.harness import (
    CloudApp,
    Running,
    eventually,
    live_servers,
    live_volumes,
    server_posts,
    volume_posts,
)


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
        running = await cloud_app(worker_lease_seconds=0.6)
        fake.faults.latency("POST", r"/servers$", 1.2, times=1)
        orbit = await create_orbit(running.client)
        await wait_status(running.client, orbit["id"], "RUNNING")
        op = await _create_op(running.app, orbit["id"])
        await running.stop()
        assert _once(fake, op) == (1, 1, 1, 1)

    async def test_a_create_slower_than_the_step_timeout_makes_one_server(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        # the step gives up after 0.3 s; its retry must not overlap the POST still on its way
        running = await cloud_app(worker_step_timeout=0.3)
        fake.faults.latency("POST", r"/servers$", 1.0, times=1)
        orbit = await create_orbit(running.client)
        await wait_status(running.client, orbit["id"], "RUNNING")
        op = await _create_op(running.app, orbit["id"])
        operation = (await running.client.get(f"/operations/{op}")).json()
        assert operation["state"] == "succeeded" and operation["attempts"] >= 3
        await running.stop()
        assert _once(fake, op) == (1, 1, 1, 1)


async def _orbit_op(running: Running, orbit: dict[str, Any]) -> dict[str, Any]:
    op = await _create_op(running.app, orbit["id"])
    return (await running.client.get(f"/operations/{op}")).json()  # type: ignore[no-any-return]


class TestTransientErrors:
    async def test_errors_on_every_step_are_retried_and_nothing_is_doubled(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app(os_call_timeout=0.5)
        faults = fake.faults
        faults.fail("POST", r"/volumes$", 503, times=1)
        faults.drop("GET", r"/volumes/detail$", times=1)  # the connection breaks mid-answer
        faults.latency("GET", r"/servers/detail$", 1.0, times=1)  # past the call timeout
        faults.fail("POST", r"/servers$", 502, times=1)
        faults.fail("POST", r"/servers$", 429, times=1, retry_after=0.4)
        orbits = [await create_orbit(running.client, vm_name=f"t{n}") for n in range(3)]
        for orbit in orbits:
            await wait_status(running.client, orbit["id"], "RUNNING", timeout=30)
        operations = [await _orbit_op(running, orbit) for orbit in orbits]
        await running.stop()
        for operation in operations:
            assert operation["state"] == "succeeded" and operation["error"] is None
            assert _once(fake, operation["id"]) == (1, 1, 1, 1)
        assert sum(op["attempts"] for op in operations) >= 3 * 2 + 4  # two steps each, retries
        [limited] = [e for e in fake.requests("POST", r"/servers$") if e.status == 429]
        tag = limited.json["server"]["metadata"][TAG_KEY]
        [after] = [e for e in fake.requests("POST", r"/servers$") if e.status == 202
                   and e.json["server"]["metadata"][TAG_KEY] == tag]  # fmt: skip
        assert after.time - limited.time >= 0.4  # Retry-After was obeyed

    async def test_an_outage_delays_operations_but_loses_none(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app()
        fake.stop()  # connection refused, for everything
        orbits = [await create_orbit(running.client, vm_name=f"o{n}") for n in range(3)]
        await asyncio.sleep(0.8)
        fake.start()  # back on the same port, then every request failing for a while
        outage = fake.faults.fail("*", r"/(compute|volume)/", 503, times=None)
        await asyncio.sleep(1.5)
        fake.faults.clear()
        for orbit in orbits:
            await wait_status(running.client, orbit["id"], "RUNNING", timeout=30)
        operations = [await _orbit_op(running, o) for o in orbits]
        await running.stop()
        for operation in operations:
            assert operation["state"] == "succeeded"
            assert _once(fake, operation["id"]) == (1, 1, 1, 1)
        # backing off: a few tries per operation in 1.5 s of 503s, not one per poll (0.05 s)
        tries = [e for e in fake.requests("GET", r"/volumes/detail$") if "metadata" in e.query]
        refused = [e for e in tries if e.status == 503]
        assert 0 < len(refused) <= 3 * 5, len(refused)
        assert outage.hits > len(refused)  # the listings failed too

    async def test_the_poller_obeys_retry_after_on_its_listing(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app()
        fake.delays["build"] = 10.0  # 1 s: the poller lists servers while it builds
        orbit = await create_orbit(running.client)
        await eventually(
            lambda: asyncio.sleep(0, fake.requests("POST", r"/servers$") or None), "server POST"
        )
        fake.faults.fail("GET", r"/servers/detail$", 429, times=1, retry_after=1.0)
        await wait_status(running.client, orbit["id"], "RUNNING", timeout=30)
        listings = [e for e in fake.requests("GET", r"/servers/detail$") if "tags" not in e.query]
        [limited] = [n for n, e in enumerate(listings) if e.status == 429]
        assert listings[limited + 1].time - listings[limited].time >= 1.0


class TestBackoff:
    def test_grows_is_capped_and_stays_spread_at_the_cap(self) -> None:
        first = [backoff_seconds(1) for _ in range(50)]
        capped = [backoff_seconds(30) for _ in range(50)]
        assert all(0.5 <= d <= 1.0 for d in first)
        assert all(15.0 <= d <= BACKOFF_CAP for d in capped)
        # operations that failed together do not all come back at the same instant
        assert max(capped) - min(capped) > 5.0 and len(set(capped)) == len(capped)


class TestPermanentErrors:
    @pytest.mark.parametrize(
        ("inject", "fault"),
        [
            (lambda f: f.faults.fail("POST", r"/servers$", 400, times=None),
             "400: Invalid input for field/attribute (injected)."),
            (lambda f: f.faults.fail("POST", r"/servers$", 403, times=None),
             "403: Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"),
            (lambda f: f.faults.fail_next_server("No valid host was found. "),
             "No valid host was found."),
            (lambda f: f.faults.fail_next_volume(),
             "The root volume could not be prepared (cloud status error)."),
        ],
        ids=["bad-request", "quota", "build-failed", "volume-failed"],
    )  # fmt: skip
    async def test_end_in_error_with_a_readable_fault(
        self, cloud_app: CloudApp, fake: FakeOpenStack, inject: Callable[..., Any], fault: str
    ) -> None:
        running = await cloud_app()
        inject(fake)
        orbit = await create_orbit(running.client)
        body = await wait_status(running.client, orbit["id"], "ERROR", timeout=30)
        operation = await _orbit_op(running, orbit)
        assert body["fault"].strip() == fault and operation["error"].strip() == fault
        assert operation["state"] == "failed"
        await running.stop()
        assert len(fake.requests("POST", r"/servers$")) <= 1  # refused once, not retried


class TestDeadlines:
    async def test_a_cloud_that_never_answers_ends_in_error(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app(operation_deadline_seconds=2.0)
        fake.faults.fail("POST", r"/volumes$", 503, times=None)
        orbit = await create_orbit(running.client)
        body = await wait_status(running.client, orbit["id"], "ERROR", timeout=30)
        assert body["fault"].startswith("The operation did not finish before its deadline")
        assert "503: The server is currently unavailable" in body["fault"]
        assert (await _orbit_op(running, orbit))["state"] == "failed"

    async def test_a_build_that_never_ends_ends_in_error(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app(operation_deadline_seconds=2.0)
        fake.delays["build"] = 10_000.0
        orbit = await create_orbit(running.client)
        body = await wait_status(running.client, orbit["id"], "ERROR", timeout=30)
        assert body["fault"] == "The operation did not finish before its deadline."
        operation = await _orbit_op(running, orbit)
        assert (operation["state"], operation["stage"]) == ("failed", "server_wait")


class TestDrift:
    async def test_servers_stopped_broken_or_deleted_behind_our_back(
        self, cloud_app: CloudApp, fake: FakeOpenStack
    ) -> None:
        running = await cloud_app()
        client = running.client
        first, second = [await create_orbit(client, vm_name=n) for n in ("a", "b")]
        for orbit in (first, second):
            await wait_status(client, orbit["id"], "RUNNING")
        server = {o["id"]: live_server_of(fake, await _create_op(running.app, o["id"]))
                  for o in (first, second)}  # fmt: skip
        fake.external_stop_server(server[first["id"]])
        await wait_status(client, first["id"], "STOPPED")
        start = await client.post(
            "/vms/action/", params={"action": "start", "orbit_id": first["id"]}
        )
        assert start.status_code == 202
        await wait_status(client, first["id"], "RUNNING")
        fake.external_error_server(server[first["id"]], "Host failure")
        assert (await wait_status(client, first["id"], "ERROR"))["fault"] == "Host failure"
        fake.external_delete_server(server[second["id"]])
        body = await wait_status(client, second["id"], "ERROR")
        assert body["fault"] == "The server was deleted outside sog-api."
        assert (await client.post(f"/vms/{second['id']}/delete/")).status_code == 202
        await wait_gone(client, second["id"])


def live_server_of(fake: FakeOpenStack, op: str) -> str:
    [server_id] = [
        s.id for s in fake.servers.values() if not s.deleted and s.metadata.get(TAG_KEY) == op
    ]
    return server_id
