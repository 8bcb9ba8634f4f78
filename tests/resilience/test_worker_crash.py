"""A `sog-api worker` SIGKILLed at any point of a flow: after a restart every operation completes
exactly once (one server, one root volume per create; nothing left behind by a delete)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from sog_api.cloud.openstack_convert import TAG_KEY
from tests.fake_openstack import FakeOpenStack
from tests.helpers import create_params
from tests.resilience import killpoints as kp
from tests.resilience.harness import (
    ApiHandle,
    Processes,
    eventually,
    inprocess_api,
    live_servers,
    live_volumes,
    server_posts,
    volume_posts,
)

pytestmark = pytest.mark.slow

CREATE_POINTS = [
    kp.KillPoint("after the root volume POST", (kp.VOLUME_POST,)),
    kp.KillPoint("while waiting for the root volume", (kp.VOLUME_POST, kp.VOLUME_LISTING)),
    kp.KillPoint("between the server look-up and its POST", (kp.SERVER_LOOKUP,)),
    kp.KillPoint("after the server POST", (kp.SERVER_POST,)),
    kp.KillPoint("while waiting for the build", (kp.SERVER_POST, kp.SERVER_LISTING)),
]
DELETE_POINTS = [
    kp.KillPoint("after the server DELETE", (kp.SERVER_DELETE,)),
    kp.KillPoint("after the root volume DELETE", (kp.VOLUME_DELETE,)),
    kp.KillPoint("while waiting for the root volume to go", (kp.VOLUME_DELETE, kp.VOLUME_LISTING)),
]
VOLUME_POINTS = [
    kp.KillPoint("after the data volume POST", (kp.VOLUME_POST,)),
    kp.KillPoint("after the attachment POST", (kp.ATTACH_POST,)),
]

# The cloud carried the call out, the worker died before it recorded it: a refusal of the retry
# ("already paused", "new size must be larger") must be taken for the first call's success.
ACTION_POINTS = {
    "pause": kp.KillPoint("after the pause action", (kp.action("servers", "pause"),)),
    "start": kp.KillPoint("after the unpause action", (kp.action("servers", "unpause"),)),
    "reboot": kp.KillPoint("after the reboot action", (kp.action("servers", "reboot"),)),
    "resize": kp.KillPoint("after the resize action", (kp.action("servers", "resize"),)),
    "confirm": kp.KillPoint("after the confirm action", (kp.action("servers", "confirmResize"),)),
    "extend": kp.KillPoint("after the boot volume's extend", (kp.action("volumes", "os-extend"),)),
}

# One worker at a time: a short lease lets the next take over soon after a kill.
LEASE = {"SOG_WORKER_LEASE_SECONDS": "0.5"}


class Chain:
    """One worker at a time; each kill point kills the current one, and a new one takes over."""

    def __init__(self, fake: FakeOpenStack, procs: Processes, api: ApiHandle) -> None:
        self.fake, self.procs, self.api = fake, procs, api
        self.worker = procs.worker(**LEASE)
        self.survived: list[str] = []

    async def through(self, point: kp.KillPoint, start: Callable[[], object]) -> None:
        """Arm ``point``, make the request, wait for the kill, start the next worker."""
        killer = kp.Killer(self.fake, self.worker, point)
        try:
            await start()  # type: ignore[misc]
            await eventually(
                lambda: asyncio.sleep(0, killer.fired.is_set()),
                f"kill point '{point.name}'", diagnostics=self.procs.tails,
            )  # fmt: skip
        finally:
            killer.disarm()
        assert not self.worker.alive
        self.survived.append(point.name)
        self.worker = self.procs.worker(**LEASE)

    async def orbit_status(self, orbit_id: int, status: str) -> None:
        async def reached() -> bool:
            response = await self.api.http.get(f"/vms/vm_details/{orbit_id}/")
            return response.status_code == 200 and response.json()["status"] == status

        await eventually(reached, f"orbit {orbit_id} {status}", diagnostics=self.procs.tails)

    async def orbit_gone(self, orbit_id: int) -> None:
        async def gone() -> bool:
            return (await self.api.http.get(f"/vms/vm_details/{orbit_id}/")).status_code == 404

        await eventually(gone, f"orbit {orbit_id} deleted", diagnostics=self.procs.tails)

    async def volume_status(self, volume_id: int, status: str) -> None:
        async def reached() -> bool:
            response = await self.api.http.get(f"/volume/{volume_id}")
            return response.status_code == 200 and response.json()["status"] == status

        await eventually(reached, f"volume {volume_id} {status}", diagnostics=self.procs.tails)


async def _create(api: ApiHandle, created: list[dict[str, object]], **params: object) -> None:
    response = await api.http.post("/vms/create/", params=create_params(**params))
    assert response.status_code == 201, response.text
    created.append(response.json())


async def _operations(api: ApiHandle, kind: str) -> dict[int, str]:
    rows = await api.rows("SELECT id, orbit_id, volume_id FROM operations WHERE kind=:k", k=kind)
    return {r["orbit_id"] if kind.startswith("orbit") else r["volume_id"]: r["id"] for r in rows}


async def test_worker_killed_at_every_point_of_create_delete_and_attach(
    pg_url: str, fake: FakeOpenStack, processes: Callable[..., Processes]
) -> None:
    # (SQLite, the embedded default, is killed mid-flight in test_processes.TestApiKilled)
    async with inprocess_api(pg_url) as api:
        chain = Chain(fake, processes(pg_url, fake), api)
        orbits: list[dict[str, object]] = []
        for n, point in enumerate(CREATE_POINTS):
            await chain.through(point, lambda n=n: _create(api, orbits, vm_name=f"kill-{n}",
                                                          delete_root=True))  # fmt: skip
            await chain.orbit_status(int(orbits[-1]["id"]), "RUNNING")  # type: ignore[call-overload]
        creates = await _operations(api, "orbit.create")
        posts, servers, volumes = server_posts(fake), volume_posts(fake), live_servers(fake)
        for orbit in orbits:
            op = creates[orbit["id"]]  # type: ignore[index]
            assert (posts[op], volumes[op], servers[op], live_volumes(fake)[op]) == (1, 1, 1, 1), (
                orbit["vm_name"], chain.survived,
            )  # fmt: skip
        [row] = await api.rows("SELECT count(*) AS n FROM operations WHERE state <> 'succeeded'")
        assert row["n"] == 0

        await _volume_create_and_attach(chain, int(orbits[0]["id"]))  # type: ignore[call-overload]

        # deletes: the last orbits, one kill point each
        for orbit, point in zip(orbits[-len(DELETE_POINTS) :], DELETE_POINTS, strict=True):
            oid = int(orbit["id"])  # type: ignore[call-overload]

            async def delete(oid: int = oid) -> None:
                assert (await api.http.post(f"/vms/{oid}/delete/")).status_code == 202

            await chain.through(point, delete)
            await chain.orbit_gone(oid)
            op = creates[oid]
            assert live_servers(fake)[op] == 0 and live_volumes(fake)[op] == 0, point.name
    assert chain.survived == [p.name for p in CREATE_POINTS + VOLUME_POINTS + DELETE_POINTS]


async def _volume_create_and_attach(chain: Chain, orbit_id: int) -> None:
    """A data volume created and attached to the orbit, its worker killed twice on the way."""
    api, fake = chain.api, chain.fake
    made: list[int] = []

    async def create_volume() -> None:
        response = await api.http.post(
            "/volume/create/", params={"nickname": "data", "capacity": 20, "attach_to": orbit_id}
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])

    await chain.through(VOLUME_POINTS[0], create_volume)
    await chain.through(VOLUME_POINTS[1], lambda: asyncio.sleep(0))
    await chain.volume_status(made[0], "RUNNING")
    data_op = (await _operations(api, "volume.create"))[made[0]]
    [data] = [v for v in fake.volumes.values() if v.metadata.get(TAG_KEY) == data_op]
    assert volume_posts(fake)[data_op] == 1 and len(data.attachments) == 1
    assert len(fake.requests("POST", r"/os-volume_attachments$")) == 1


async def _succeeded(api: ApiHandle, kind: str) -> None:
    rows = await api.rows("SELECT state, error FROM operations WHERE kind=:k", k=kind)
    assert rows and all(r["state"] == "succeeded" for r in rows), (kind, rows)


async def test_worker_killed_after_each_server_action_before_recording_it(
    pg_url: str, fake: FakeOpenStack, processes: Callable[..., Processes]
) -> None:
    """Each action reached the cloud and the worker died: the next one finishes the operation."""
    async with inprocess_api(pg_url) as api:
        chain = Chain(fake, processes(pg_url, fake), api)
        created: list[dict[str, object]] = []
        await _create(api, created, vm_name="acts")
        oid = int(created[0]["id"])  # type: ignore[call-overload]
        await chain.orbit_status(oid, "RUNNING")

        async def act(name: str) -> None:
            response = await api.http.post("/vms/action/", params={"action": name, "orbit_id": oid})
            assert response.status_code == 202, response.text

        async def resize() -> None:
            response = await api.http.post(f"/vms/{oid}/resize/", params={"flavor_id": 3})
            assert response.status_code == 202, response.text

        for name, settled in (("pause", "PAUSED"), ("start", "RUNNING"), ("reboot", "RUNNING")):
            await chain.through(ACTION_POINTS[name], lambda name=name: act(name))
            await chain.orbit_status(oid, settled)
            await _succeeded(api, f"orbit.{name}")
        await chain.through(ACTION_POINTS["resize"], resize)
        # the confirm lasts longer than the take-over: the repeat comes while it is under way
        fake.delays["confirm_resize"] = 4.0 / fake.cloud.delay_scale
        await chain.through(ACTION_POINTS["confirm"], lambda: asyncio.sleep(0))
        await chain.orbit_status(oid, "RUNNING")
        await _succeeded(api, "orbit.resize")
        detail = (await api.http.get(f"/vms/vm_details/{oid}/")).json()
        assert (detail["vcpus"], detail["ram"], detail["fault"]) == (2, 4, None)
        [server] = fake.servers.values()
        assert (server.vm_state, server.task_state, server.flavor.name) == (
            "active", None, "sog.comet",
        )  # fmt: skip
        done = Counter(next(iter(e.json)) for e in fake.requests("POST", r"/servers/[^/]+/action$")
                       if e.status in (202, 204))  # fmt: skip
        # A reboot that ended before the retry looked is done again: nothing tells the two
        # apart (the one action whose repeat the cloud accepts; see README, Limits).
        assert done.pop("reboot") in (1, 2)
        assert done == {"pause": 1, "unpause": 1, "resize": 1, "confirmResize": 1}, done

        # a kept root volume of 20 GB boots a new orbit of 40 GB: grown once, before the boot
        deleted = await api.http.post(f"/vms/{oid}/delete/")
        assert deleted.status_code == 202
        await chain.orbit_gone(oid)
        [root] = (await api.http.get("/volume/")).json()
        await chain.through(ACTION_POINTS["extend"], lambda: _create(
            api, created, vm_name="grown", booting_image=None, booting_volume=root["id"],
            root_size=40))  # fmt: skip
        await chain.orbit_status(int(created[1]["id"]), "RUNNING")  # type: ignore[call-overload]
        await _succeeded(api, "orbit.create")
        volume = (await api.http.get(f"/volume/{root['id']}")).json()
        assert (volume["size_gb"], volume["status"]) == (40, "RUNNING")
        grown = [e for e in fake.requests("POST", r"/volumes/[^/]+/action$") if e.status == 202]
        assert len(grown) == 1, grown
    assert chain.survived == [p.name for p in ACTION_POINTS.values()]
