"""Racing requests: exactly one of two conflicting changes wins, nothing is lost or doubled.

The requests run concurrently through two app instances on one database (two API replicas,
each with its own connection pool), so on PostgreSQL they really overlap in the database and
only the row locks and the unique constraint order them. The worker is off: between the race
and the assertions nothing changes a status but the requests themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from sog_api.auth.keys import create_key
from sog_api.db.base import utcnow
from sog_api.main import create_app
from sog_api.operations.models import IdempotencyKey
from sog_api.orbits.models import Orbit
from sog_api.projects.models import Project
from sog_api.settings import Settings
from tests.conftest import TEST_API_KEY, db_rows
from tests.helpers import create_params, db_update, running_orbit
from tests.volumes.test_rules import make_orbit, make_volume

ROUNDS = 4  # each race is run this many times, on fresh rows


def busy(status: str) -> str:
    return f"Virtual Machine is in {status.lower()} status, please wait until it finish."


def volume_busy(status: str) -> str:
    return f"Volume is in {status.capitalize()} status, please wait until it finish."


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"run_worker": False}


@pytest.fixture
async def clients(app: FastAPI, settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two clients, each talking to its own app instance (replica) on the same database."""
    replica = create_app(settings.model_copy(update={"load_catalog_on_start": False}))
    async with replica.router.lifespan_context(replica):
        made = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=instance),
                base_url="http://testserver",
                headers={"Authorization": f"Token {TEST_API_KEY}"},
            )
            for instance in (app, replica)
        ]
        try:
            yield made
        finally:
            for client in made:
                await client.aclose()


@pytest.fixture
async def quotas(app: FastAPI) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """``await quotas(quota_orbits=1)``: limits of the default project, lifted afterwards
    (on PostgreSQL its row outlives the test)."""

    async def limit(**values: int | None) -> None:
        await db_update(app, Project, 1, **values)

    yield limit
    await limit(quota_orbits=None, quota_vcpus=None, quota_ram_gb=None, quota_volume_gb=None)


async def race(*requests: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return list(await asyncio.gather(*requests))


def spread(clients: list[httpx.AsyncClient]) -> itertools.cycle[httpx.AsyncClient]:
    return itertools.cycle(clients)


def one_winner(responses: list[httpx.Response], accepted: int = 202) -> httpx.Response:
    codes = [r.status_code for r in responses]
    assert codes.count(accepted) == 1, [r.text for r in responses]
    assert codes.count(409) == len(codes) - 1, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"].startswith("application/problem+json")
    return next(r for r in responses if r.status_code == accepted)


def refusals(responses: list[httpx.Response]) -> set[tuple[str, str]]:
    return {(r.json()["code"], r.json()["detail"]) for r in responses if r.status_code == 409}


async def wait_server_name(app: FastAPI, name: str, timeout: float = 15.0) -> str:
    """The simulated server's name once it is ``name`` (or the last one seen at the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    seen = ""
    while asyncio.get_running_loop().time() < deadline:
        (row,) = await db_rows(app, "SELECT name FROM sim_servers")
        seen = row["name"]
        if seen == name:
            break
        await asyncio.sleep(0.02)
    return seen


async def open_operations(app: FastAPI, column: str, ident: int) -> list[dict[str, Any]]:
    return await db_rows(
        app,
        f"SELECT kind FROM operations WHERE {column} = :id AND state = 'queued'",
        id=ident,
    )


class TestOrbitRaces:
    ORBIT_CHANGES = {
        "pause": ("POST", "/vms/action/", {"action": "pause"}, "PAUSING"),
        "reboot": ("POST", "/vms/action/", {"action": "reboot"}, "REBOOTING"),
        "delete": ("POST", "/vms/{id}/delete/", {}, "DELETING"),
        "resize": ("POST", "/vms/{id}/resize/", {"flavor_id": 5}, "RESIZING"),
    }

    @staticmethod
    def request(client: httpx.AsyncClient, change: str, orbit_id: int) -> Awaitable[httpx.Response]:
        method, path, params, _status = TestOrbitRaces.ORBIT_CHANGES[change]
        if path == "/vms/action/":
            params = {**params, "orbit_id": orbit_id}
        return client.request(method, path.format(id=orbit_id), params=params)

    @pytest.mark.parametrize(
        "changes",
        [("pause", "reboot"), ("reboot", "delete"), ("resize", "pause"), ("delete", "delete"),
         ("pause", "reboot", "delete", "resize", "pause", "delete")],
        ids=lambda c: "+".join(c),
    )  # fmt: skip
    async def test_one_change_wins(
        self, app: FastAPI, clients: list[httpx.AsyncClient], changes: tuple[str, ...]
    ) -> None:
        for _ in range(ROUNDS):
            orbit_id = await make_orbit(app)
            pick = spread(clients)
            responses = await race(*[self.request(next(pick), c, orbit_id) for c in changes])
            winner = one_winner(responses)
            status = winner.json()["status"]
            assert refusals(responses) == {("orbit_busy", busy(status))}
            (row,) = await db_rows(app, "SELECT status FROM orbits WHERE id = :id", id=orbit_id)
            assert row["status"] == status
            assert len(await open_operations(app, "orbit_id", orbit_id)) == 1

    async def test_patches_of_different_fields_all_land(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        for n in range(ROUNDS):
            orbit_id = await make_orbit(app)
            url = f"/vms/vm_details/{orbit_id}/"
            a, b = clients
            responses = await race(
                a.patch(url, params={"description": f"about {n}"}),
                b.patch(url, params={"delete_root": "true"}),
                a.patch(url, params={"vm_name": f"renamed-{n}"}),
                b.post("/vms/action/", params={"action": "pause", "orbit_id": orbit_id}),
            )
            assert [r.status_code for r in responses] == [200, 200, 200, 202]
            body = (await a.get(url)).json()
            assert (body["description"], body["delete_root"], body["vm_name"], body["status"]) == (
                f"about {n}", True, f"renamed-{n}", "PAUSING",
            )  # fmt: skip


class TestVolumeRaces:
    async def test_attach_to_two_orbits(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        for _ in range(ROUNDS):
            first, second = await make_orbit(app), await make_orbit(app, vm_name="second")
            volume_id = await make_volume(app)
            a, b = clients
            responses = await race(
                a.post(f"/volume/{volume_id}/attach/{first}/"),
                b.post(f"/volume/{volume_id}/attach/{second}/"),
            )
            winner = one_winner(responses)
            assert refusals(responses) == {("volume_busy", volume_busy("ATTACHING"))}
            (row,) = await db_rows(
                app, "SELECT orbit_id, status FROM volumes WHERE id = :id", id=volume_id
            )
            assert row == {"orbit_id": winner.json()["orbit_id"], "status": "ATTACHING"}

    async def test_attach_and_delete(self, app: FastAPI, clients: list[httpx.AsyncClient]) -> None:
        seen = set()
        for _ in range(ROUNDS):
            orbit_id, volume_id = await make_orbit(app), await make_volume(app)
            a, b = clients
            responses = await race(
                a.post(f"/volume/{volume_id}/attach/{orbit_id}/"),
                b.post(f"/volume/{volume_id}/delete/"),
            )
            winner = one_winner(responses)
            status = winner.json()["status"]
            seen.add(status)
            assert status in ("ATTACHING", "DELETING")
            assert refusals(responses) == {("volume_busy", volume_busy(status))}
            assert len(await open_operations(app, "volume_id", volume_id)) == 1

    async def test_two_resizes_and_a_rename(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        for n in range(ROUNDS):
            volume_id = await make_volume(app)
            a, b = clients
            responses = await race(
                a.post(f"/volume/{volume_id}/resize/", params={"template_id": 3}),
                b.post(f"/volume/{volume_id}/resize/", params={"template_id": 4}),
                b.patch(f"/volume/{volume_id}/update/", params={"nickname": f"grown-{n}"}),
            )
            assert responses[2].status_code == 200
            winner = one_winner(responses[:2])
            assert refusals(responses[:2]) == {("volume_busy", volume_busy("RESIZING"))}
            body = (await a.get(f"/volume/{volume_id}")).json()
            assert (body["status"], body["nickname"]) == ("RESIZING", f"grown-{n}")
            (op,) = await db_rows(
                app, "SELECT params FROM operations WHERE volume_id = :id", id=volume_id
            )
            params = op["params"] if isinstance(op["params"], dict) else json.loads(op["params"])
            assert params["size_gb"] == (80, 120)[responses.index(winner)]

    async def test_create_attached_to_an_orbit_being_deleted(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        for _ in range(ROUNDS):
            orbit_id = await make_orbit(app)
            a, b = clients
            create = {"nickname": "data", "capacity": 20, "attach_to": orbit_id}
            volumes = await db_rows(app, "SELECT id FROM volumes")
            made, deleted = await race(
                a.post("/volume/create/", params=create), b.post(f"/vms/{orbit_id}/delete/")
            )
            assert sorted([made.status_code, deleted.status_code]) in ([201, 409], [202, 409])
            if made.status_code == 201:
                assert deleted.json()["code"] == "volume_busy"
                assert deleted.json()["detail"] == volume_busy("CREATING")
            else:
                assert made.json()["code"] == "orbit_busy"
                assert made.json()["detail"] == busy("DELETING")
                assert await db_rows(app, "SELECT id FROM volumes") == volumes  # none made

    @pytest.mark.parametrize("change", ["attach", "detach"])
    async def test_volume_change_and_orbit_delete(
        self, app: FastAPI, clients: list[httpx.AsyncClient], change: str
    ) -> None:
        for _ in range(ROUNDS):
            orbit_id = await make_orbit(app)
            if change == "attach":
                volume_id = await make_volume(app)
                path, status = f"/volume/{volume_id}/attach/{orbit_id}/", "ATTACHING"
            else:
                volume_id = await make_volume(app, status="RUNNING", orbit_id=orbit_id)
                path, status = f"/volume/{volume_id}/detach/", "DETACHING"
            a, b = clients
            responses = await race(a.post(path), b.post(f"/vms/{orbit_id}/delete/"))
            winner = one_winner(responses)
            if winner.json().get("status") == "DELETING":
                assert refusals(responses) == {("orbit_busy", busy("DELETING"))}
            else:
                assert refusals(responses) == {("volume_busy", volume_busy(status))}


class TestQuotaRaces:
    async def test_racing_creates_cannot_both_slip_under_a_quota(
        self, app: FastAPI, clients: list[httpx.AsyncClient], quotas: Any
    ) -> None:
        await quotas(quota_orbits=1, quota_volume_gb=40)
        pick = spread(clients)
        orbits = await race(*[next(pick).post("/vms/create/", params=create_params())
                              for _ in range(4)])  # fmt: skip
        assert sorted(r.status_code for r in orbits) == [201, 403, 403, 403]
        assert {r.json()["code"] for r in orbits if r.status_code == 403} == {"quota_exceeded"}
        volumes = await race(  # the orbit's root volume uses 20 of the 40 GB
            *[next(pick).post("/volume/create/", params={"nickname": "d", "capacity": 20})
              for _ in range(3)]
        )  # fmt: skip
        assert sorted(r.status_code for r in volumes) == [201, 403, 403]
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 1
        assert len(await db_rows(app, "SELECT id FROM volumes")) == 2
        assert len(await db_rows(app, "SELECT id FROM idempotency_keys")) == 1


class TestIdempotency:
    async def test_racing_repeats_answer_the_first_result(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        params = create_params(transaction_id="same", vm_count=2)
        pick = spread(clients)
        responses = await race(*[next(pick).post("/vms/create/", params=params) for _ in range(8)])
        assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
        first = next(r for r in responses if r.status_code == 201)
        for response in responses:
            assert response.text == first.text
            assert response.headers["location"] == first.headers["location"]
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 2
        assert len(await db_rows(app, "SELECT id FROM idempotency_keys")) == 1

    async def test_racing_repeats_with_other_parameters(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        a, b = clients
        responses = await race(
            *[a.post("/vms/create/", params=create_params(transaction_id="t", vm_name="a"))
              for _ in range(3)],
            *[b.post("/vms/create/", params=create_params(transaction_id="t", vm_name="b"))
              for _ in range(3)],
        )  # fmt: skip
        winner = next(r for r in responses if r.status_code == 201)
        group = responses[:3] if winner in responses[:3] else responses[3:]
        others = responses[3:] if winner in responses[:3] else responses[:3]
        assert sorted(r.status_code for r in group) == [200, 200, 201]
        assert {r.json()["code"] for r in others} == {"idempotency_mismatch"}
        assert all(r.status_code == 409 for r in others)
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 1

    async def test_racing_volume_create_repeats(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        params = {"nickname": "data", "capacity": 40, "transaction_id": "vol-1"}
        pick = spread(clients)
        responses = await race(
            *[next(pick).post("/volume/create/", params=params) for _ in range(6)]
        )
        assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
        assert len({r.text for r in responses}) == 1
        assert len({r.headers["location"] for r in responses}) == 1
        assert len(await db_rows(app, "SELECT id FROM volumes")) == 1
        other = await clients[0].post("/volume/create/", params={**params, "capacity": 80})
        assert other.status_code == 409 and other.json()["code"] == "idempotency_mismatch"
        bare = {"nickname": "data", "capacity": 40}  # no transaction_id: each makes one
        for _ in range(2):
            assert (await clients[0].post("/volume/create/", params=bare)).status_code == 201
        assert len(await db_rows(app, "SELECT id FROM volumes")) == 3

    async def test_racing_action_repeats(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        orbit_id = await make_orbit(app)
        params = {"action": "reboot", "orbit_id": orbit_id, "transaction_id": "reboot-1"}
        pick = spread(clients)
        responses = await race(*[next(pick).post("/vms/action/", params=params) for _ in range(6)])
        assert sorted(r.status_code for r in responses) == [200] * 5 + [202]
        assert len({r.headers["location"] for r in responses}) == 1
        assert len({r.text for r in responses}) == 1
        assert len(await open_operations(app, "orbit_id", orbit_id)) == 1

    async def test_replay_after_the_boot_volume_was_taken(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        volume_id = await make_volume(app, is_bootable=True, source_image_id=3)
        params = create_params(booting_image=None, booting_volume=volume_id)
        first = await client.post("/vms/create/", params=params)
        assert first.status_code == 201, first.text
        again = await client.post("/vms/create/", params=params)
        assert (again.status_code, again.text) == (200, first.text)
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 1

    async def test_replay_after_the_orbit_was_deleted(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit_id = await make_orbit(app)
        action = {"action": "reboot", "orbit_id": orbit_id, "transaction_id": "r-1"}
        create = create_params(transaction_id="c-1")
        first_action = await client.post("/vms/action/", params=action)
        first_create = await client.post("/vms/create/", params=create)
        assert (first_action.status_code, first_create.status_code) == (202, 201)
        created_id = first_create.json()["id"]
        for orbit in (orbit_id, created_id):
            await db_update(app, Orbit, orbit, status="DELETED", deleted_at=utcnow())
        again_action = await client.post("/vms/action/", params=action)
        again_create = await client.post("/vms/create/", params=create)
        assert (again_action.status_code, again_action.text) == (200, first_action.text)
        assert (again_create.status_code, again_create.text) == (200, first_create.text)
        assert again_action.headers["location"] == first_action.headers["location"]
        mismatch = await client.post("/vms/action/", params={**action, "action": "pause"})
        assert (mismatch.status_code, mismatch.json()["code"]) == (409, "idempotency_mismatch")

    async def test_a_refused_first_attempt_leaves_the_key_free(
        self, client: httpx.AsyncClient, app: FastAPI, quotas: Any
    ) -> None:
        orbit_id = await make_orbit(app, status="PAUSING")
        action = {"action": "reboot", "orbit_id": orbit_id, "transaction_id": "later"}
        refused = await client.post("/vms/action/", params=action)
        assert (refused.status_code, refused.json()["detail"]) == (409, busy("PAUSING"))
        await db_update(app, Orbit, orbit_id, status="RUNNING")
        assert (await client.post("/vms/action/", params=action)).status_code == 202
        assert (await client.post("/vms/action/", params=action)).status_code == 200

        await quotas(quota_orbits=1)  # the orbit above uses it up
        create = create_params(transaction_id="after-quota")
        over = await client.post("/vms/create/", params=create)
        assert (over.status_code, over.json()["code"]) == (403, "quota_exceeded")
        await quotas(quota_orbits=None)
        assert (await client.post("/vms/create/", params=create)).status_code == 201
        keys = await db_rows(app, "SELECT transaction_id FROM idempotency_keys ORDER BY id")
        assert keys == [{"transaction_id": "later"}, {"transaction_id": "after-quota"}]

    async def test_keys_are_per_project(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        async with app.state.sessionmaker.begin() as session:
            session.add(Project(id=2, name="other"))
            await session.flush()
            other_key = (await create_key(session, 2)).key
        params = create_params(transaction_id="shared")
        mine = await client.post("/vms/create/", params=params)
        theirs = await client.post(
            "/vms/create/", params=params, headers={"Authorization": f"Token {other_key}"}
        )
        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert mine.json()["id"] != theirs.json()["id"]
        rows = await db_rows(app, "SELECT project_id FROM idempotency_keys ORDER BY project_id")
        assert rows == [{"project_id": 1}, {"project_id": 2}]

    async def test_the_database_refuses_a_second_key(self, app: FastAPI) -> None:
        """The unique constraint itself, not only the code path, keeps one key per project."""
        row = {"project_id": 1, "scope": "create", "transaction_id": "x", "request_hash": "h"}
        async with app.state.sessionmaker.begin() as session:
            session.add(IdempotencyKey(**row, result={}))
        with pytest.raises(IntegrityError):
            async with app.state.sessionmaker.begin() as session:
                session.add(IdempotencyKey(**row | {"request_hash": "other"}, result={}))


class TestWithTheWorker:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {}  # the worker runs: the names must reach the cloud in the order they landed

    async def test_racing_renames_reach_the_cloud_in_order(
        self, app: FastAPI, clients: list[httpx.AsyncClient]
    ) -> None:
        orbit = await running_orbit(clients[0])
        url = f"/vms/vm_details/{orbit['id']}/"
        for round_ in range(2):
            pick = spread(clients)
            names = [f"name-{round_}-{n}" for n in range(6)]
            responses = await race(*[next(pick).put(url, params={"vm_name": n}) for n in names])
            assert [r.status_code for r in responses] == [200] * len(names)
            final = (await clients[1].get(url)).json()["vm_name"]
            assert final in names
            server = await wait_server_name(app, final)
            assert server == final
