"""The volume endpoints' shapes: list, templates, detail, update, other projects, bad input."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from sog_api.orbits.models import Orbit
from sog_api.projects.models import Project
from sog_api.volumes.models import Volume
from tests.conftest import SSH_KEY
from tests.helpers import available_volume, create_volume, db_update, running_orbit

VOLUME_KEYS = [
    "attached_to", "created_at", "fault", "id", "is_bootable", "is_root", "nickname",
    "operation_id", "orbit_id", "partition", "size", "size_gb", "source_image", "status",
    "updated_at",
]  # fmt: skip
TEMPLATES = [
    {"capacity": 20, "hourly": 0.002, "id": 1, "monthly": 1},
    {"capacity": 40, "hourly": 0.0041, "id": 2, "monthly": 2},
    {"capacity": 80, "hourly": 0.0083, "id": 3, "monthly": 4},
    {"capacity": 120, "hourly": 0.0125, "id": 4, "monthly": 6},
    {"capacity": 240, "hourly": 0.025, "id": 5, "monthly": 12},
    {"capacity": 500, "hourly": 0.052, "id": 6, "monthly": 25},
    {"capacity": 1000, "hourly": 0.104, "id": 7, "monthly": 50},
]
HUGE = 99999999999


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def assert_names(response: httpx.Response, where: str, name: str) -> None:
    body = assert_problem(response, 422, "invalid_parameter")
    assert [where, name] in [e["loc"][:2] for e in body["errors"]], body
    assert f"'{name}'" in body["detail"]


async def foreign_rows(app: FastAPI) -> tuple[int, int]:
    """Another project's volume and orbit, written straight into the database."""
    async with app.state.sessionmaker.begin() as session:
        session.add(Project(id=777, name="other"))
        await session.flush()
        orbit = Orbit(
            project_id=777, vm_name="theirs", status="RUNNING", flavor_id=2,
            ssh_key_value=SSH_KEY, server_id="not-ours",
        )  # fmt: skip
        volume = Volume(project_id=777, nickname="theirs", size_gb=20, status="AVAILABLE")
        session.add_all([orbit, volume])
        await session.flush()
        return volume.id, orbit.id


class TestListVolumes:
    async def test_empty(self, client: httpx.AsyncClient) -> None:
        for path in ("/volume/", "/volume"):
            response = await client.get(path)
            assert response.status_code == 200 and response.json() == []
            assert response.headers["x-total-count"] == "0" and "link" not in response.headers

    async def test_lists_root_and_data_volumes(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        data = await available_volume(client, nickname="backups", capacity=40)
        body = (await client.get("/volume/")).json()
        assert [v["id"] for v in body] == [orbit["volume_model"][0]["id"], data["id"]]
        root, listed = body
        assert list(root) == VOLUME_KEYS and list(listed) == VOLUME_KEYS
        assert root["is_root"] is True and root["is_bootable"] is True
        assert root["attached_to"] == "web" and root["orbit_id"] == orbit["id"]
        assert root["source_image"] == "Ubuntu 14.04 X64" and root["partition"] == "/dev/vda"
        assert listed["nickname"] == "backups" and listed["status"] == "AVAILABLE"
        assert (listed["size"], listed["size_gb"]) == ("40 GB", 40)
        assert listed["attached_to"] is None and listed["source_image"] is None
        assert listed["created_at"].endswith("Z") and listed["updated_at"].endswith("Z")
        summary = (await client.get(f"/volume/{root['id']}")).json()["virtual_machine"]
        assert summary["id"] == orbit["id"] and summary["vm_name"] == "web"
        assert "volume_model" not in summary and summary["status"] == "RUNNING"

    async def test_status_filter_in_any_case(self, client: httpx.AsyncClient) -> None:
        volume = await available_volume(client)
        response = await client.get("/volume/", params={"status": "available"})
        assert response.status_code == 200 and [v["id"] for v in response.json()] == [volume["id"]]

    async def test_status_filter(self, client: httpx.AsyncClient) -> None:
        await running_orbit(client)
        data = await available_volume(client)
        response = await client.get("/volume/", params={"status": "AVAILABLE"})
        assert [v["id"] for v in response.json()] == [data["id"]]
        assert response.headers["x-total-count"] == "1"
        assert (await client.get("/volume/", params={"status": "DELETING"})).json() == []

    async def test_paging(self, client: httpx.AsyncClient) -> None:
        ids = [(await create_volume(client, nickname=f"v{n}"))["id"] for n in range(3)]
        first = await client.get("/volume/", params={"limit": 2})
        assert [v["id"] for v in first.json()] == ids[:2]
        assert first.headers["x-total-count"] == "3"
        assert 'rel="next"' in first.headers["link"] and "offset=2" in first.headers["link"]
        second = await client.get("/volume/", params={"limit": 2, "offset": 2})
        assert [v["id"] for v in second.json()] == ids[2:]
        assert 'rel="prev"' in second.headers["link"] and 'rel="next"' not in second.headers["link"]


class TestTemplates:
    async def test_templates_are_the_catalogue(self, client: httpx.AsyncClient) -> None:
        for path in ("/volume/templates", "/volume/templates/"):
            response = await client.get(path)
            assert response.status_code == 200 and response.json() == TEMPLATES
            assert [list(t) for t in response.json()] == [
                ["capacity", "hourly", "id", "monthly"]
            ] * 7
            # the seed writes whole prices as integers: "monthly": 1, not 1.0
            assert '{"capacity":20,"hourly":0.002,"id":1,"monthly":1}' in response.text


class TestGetVolume:
    async def test_detached_volume_has_no_virtual_machine(self, client: httpx.AsyncClient) -> None:
        volume = await available_volume(client)
        for path in (f"/volume/{volume['id']}", f"/volume/{volume['id']}/"):
            body = (await client.get(path)).json()
            assert list(body) == [*VOLUME_KEYS, "virtual_machine"]
            assert body["virtual_machine"] is None and body["status"] == "AVAILABLE"

    async def test_unknown_volume_is_404(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/volume/4242"), 404, "not_found")
        assert body["detail"] == "Volume 4242 not found"


class TestUpdateVolume:
    async def test_get_update_form(self, client: httpx.AsyncClient) -> None:
        volume = await create_volume(client, nickname="first")
        for path in (f"/volume/{volume['id']}/update/", f"/volume/{volume['id']}/update"):
            body = (await client.get(path)).json()
            assert list(body) == VOLUME_KEYS and body["nickname"] == "first"

    async def test_put_and_patch_set_the_nickname(self, client: httpx.AsyncClient) -> None:
        volume = await create_volume(client, nickname="first")
        path = f"/volume/{volume['id']}/update/"
        response = await client.put(path, params={"nickname": "second"})
        assert response.status_code == 200 and response.json()["nickname"] == "second"
        response = await client.patch(path.rstrip("/"), params={"nickname": "third"})
        assert response.status_code == 200 and response.json()["nickname"] == "third"
        response = await client.patch(path)
        assert response.status_code == 200 and response.json()["nickname"] == "third"
        assert (await client.get(f"/volume/{volume['id']}")).json()["nickname"] == "third"

    async def test_put_needs_the_nickname(self, client: httpx.AsyncClient) -> None:
        volume = await create_volume(client)
        assert_names(await client.put(f"/volume/{volume['id']}/update/"), "query", "nickname")

    async def test_deleting_volume_refuses_rename(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        volume = await available_volume(client)
        await db_update(app, Volume, volume["id"], status="DELETING")
        response = await client.patch(f"/volume/{volume['id']}/update/", params={"nickname": "x"})
        body = assert_problem(response, 409, "volume_busy")
        assert body["detail"] == "Volume is in Deleting status, please wait until it finish."


class TestOtherProject:
    async def test_their_volume_is_404_everywhere(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        volume_id, _ = await foreign_rows(app)
        calls = [
            ("GET", f"/volume/{volume_id}", {}),
            ("GET", f"/volume/{volume_id}/update/", {}),
            ("PUT", f"/volume/{volume_id}/update/", {"nickname": "mine"}),
            ("PATCH", f"/volume/{volume_id}/update/", {"nickname": "mine"}),
            ("POST", f"/volume/{volume_id}/attach/{orbit['id']}/", {}),
            ("POST", f"/volume/{volume_id}/detach/", {}),
            ("GET", f"/volume/{volume_id}/resize/", {}),
            ("POST", f"/volume/{volume_id}/resize/", {"template_id": 3}),
            ("POST", f"/volume/{volume_id}/delete/", {}),
        ]
        for method, path, params in calls:
            response = await client.request(method, path, params=params)
            assert_problem(response, 404, "not_found")
        assert volume_id not in [v["id"] for v in (await client.get("/volume/")).json()]

    async def test_their_orbit_is_404_for_attach(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        volume = await available_volume(client)
        _, orbit_id = await foreign_rows(app)
        response = await client.post(f"/volume/{volume['id']}/attach/{orbit_id}/")
        assert assert_problem(response, 404, "not_found")["detail"] == f"Orbit {orbit_id} not found"
        response = await client.post("/volume/create/", params={"nickname": "d", "capacity": 20,
                                                                 "attach_to": orbit_id})  # fmt: skip
        body = assert_problem(response, 404, "not_found")  # as if it did not exist: it does not
        assert body["detail"] == f"Orbit {orbit_id} not found (query parameter 'attach_to')"
        assert body["errors"][0]["loc"] == ["query", "attach_to"]
        assert (await client.get(f"/volume/{volume['id']}")).json()["status"] == "AVAILABLE"


class TestBadInput:
    async def test_create(self, client: httpx.AsyncClient) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"nickname": None}, "nickname"),
            ({"nickname": ""}, "nickname"),
            ({"nickname": "   "}, "nickname"),
            ({"nickname": "a\x01b"}, "nickname"),
            ({"nickname": "n" * 256}, "nickname"),
            ({"capacity": None}, "capacity"),
            ({"capacity": "big"}, "capacity"),
            ({"capacity": 0}, "capacity"),
            ({"capacity": -20}, "capacity"),
            ({"capacity": 30}, "capacity"),  # not a template's capacity
            ({"capacity": HUGE}, "capacity"),
            ({"attach_to": "web"}, "attach_to"),
            ({"attach_to": 0}, "attach_to"),
            ({"attach_to": HUGE}, "attach_to"),
            ({"partition": "sdb"}, "partition"),
            ({"partition": "/dev/../etc/passwd"}, "partition"),
        ]
        for params, name in cases:
            values = {"nickname": "data", "capacity": 20, **params}
            values = {k: v for k, v in values.items() if v is not None}
            assert_names(await client.post("/volume/create/", params=values), "query", name)
        missing = await client.post("/volume/create/", params={"nickname": "d", "capacity": 20,
                                                                "attach_to": 4242})  # fmt: skip
        assert assert_problem(missing, 404, "not_found")["errors"][0]["loc"][1] == "attach_to"
        assert (await client.get("/volume/")).json() == []

    async def test_list(self, client: httpx.AsyncClient) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"status": "BOGUS"}, "status"), ({"status": "DELETED"}, "status"),
            ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
            ({"offset": -1}, "offset"), ({"offset": HUGE}, "offset"),
        ]  # fmt: skip
        for params, name in cases:
            assert_names(await client.get("/volume/", params=params), "query", name)

    async def test_resize_template_id(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        volume = await available_volume(client, capacity=40)
        for value in (None, "big", 0, -1, HUGE, 1, 2, 8):  # 1 and 2 are not larger; 8 is unknown
            params = {} if value is None else {"template_id": value}
            response = await client.post(f"/volume/{volume['id']}/resize/", params=params)
            assert_names(response, "query", "template_id")
        assert (await client.get(f"/volume/{volume['id']}")).json()["status"] == "AVAILABLE"

    async def test_path_ids(self, client: httpx.AsyncClient) -> None:
        for bad in ("abc", "0", "-1", str(HUGE)):
            for method, path in [
                ("GET", f"/volume/{bad}"), ("GET", f"/volume/{bad}/update/"),
                ("PUT", f"/volume/{bad}/update/?nickname=x"), ("PATCH", f"/volume/{bad}/update/"),
                ("POST", f"/volume/{bad}/detach/"), ("GET", f"/volume/{bad}/resize/"),
                ("POST", f"/volume/{bad}/resize/?template_id=3"),
                ("POST", f"/volume/{bad}/delete/"), ("POST", f"/volume/{bad}/attach/1/"),
            ]:  # fmt: skip
                assert_names(await client.request(method, path), "path", "volume_id")
            assert_names(await client.post(f"/volume/1/attach/{bad}/"), "path", "orbit_id")
