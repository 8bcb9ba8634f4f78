"""Orbit endpoints: shapes, statuses, the seed's messages, and a 422 for every kind of bad input."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import SSH_KEY, db_rows
from tests.helpers import create_orbit, create_params, running_orbit, wait_status

SUMMARY_KEYS = [
    "availability_zone", "created_at", "delete_root", "description", "fault", "flavor_id", "id",
    "image_id", "ipaddr", "is_active", "operation_id", "progress", "ram", "status", "updated_at",
    "vcpus", "vm_name",
]  # fmt: skip
DETAIL_KEYS = sorted([*SUMMARY_KEYS, "admin_pwd", "ssh_key_value", "volume_model"])
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def assert_problem(
    response: httpx.Response, status: int, code: str, detail: str | None = None
) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert set(body) >= {"type", "title", "status", "code", "detail", "request_id"}
    if detail is not None:
        assert body["detail"] == detail
    return body


def assert_invalid(response: httpx.Response, parameter: str) -> None:
    body = assert_problem(response, 422, "invalid_parameter")
    assert parameter in body["detail"], body
    assert any(parameter in err["loc"] for err in body["errors"]), body


class TestListOrbits:
    async def test_empty_list(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/vms/")
        assert response.status_code == 200 and response.json() == []
        assert response.headers["x-total-count"] == "0"

    async def test_both_slash_forms_without_redirect(self, client: httpx.AsyncClient) -> None:
        for path in ("/vms", "/vms/", "/vms/flavors", "/vms/images/", "/vms/payload"):
            response = await client.get(path)
            assert response.status_code == 200, path

    async def test_summary_shape_and_key_order(self, client: httpx.AsyncClient) -> None:
        await create_orbit(client, description="hello")
        response = await client.get("/vms/")
        (orbit,) = response.json()
        assert list(orbit) == SUMMARY_KEYS
        assert TIMESTAMP.match(orbit["created_at"])
        assert (orbit["vcpus"], orbit["ram"], orbit["description"]) == (2, 2, "hello")
        assert '"availability_zone":"nova","created_at"' in response.text

    @pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])  # statuses hold still
    async def test_filters_and_paging(self, client: httpx.AsyncClient) -> None:
        await create_orbit(client, vm_name="db", vm_count=3)
        await create_orbit(client, vm_name="solo")
        response = await client.get("/vms/", params={"limit": 2})
        assert [o["vm_name"] for o in response.json()] == ["db-1", "db-2"]
        assert response.headers["x-total-count"] == "4"
        assert 'rel="next"' in response.headers["link"] and "offset=2" in response.headers["link"]
        page2 = await client.get("/vms/", params={"limit": 2, "offset": 2})
        assert [o["vm_name"] for o in page2.json()] == ["db-3", "solo"]
        assert "link" not in page2.headers or 'rel="next"' not in page2.headers["link"]
        named = await client.get("/vms/", params={"vm_name": "solo"})
        assert [o["vm_name"] for o in named.json()] == ["solo"]
        creating = await client.get("/vms/", params={"status": "CREATING"})
        assert creating.headers["x-total-count"] == "4"
        running = await client.get("/vms/", params={"status": "RUNNING"})
        assert running.json() == [] and running.headers["x-total-count"] == "0"
        lower = await client.get("/vms/", params={"status": "creating"})  # any case
        assert lower.headers["x-total-count"] == "4"

    @pytest.mark.parametrize(
        ("params", "name"),
        [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset"),
         ({"status": "FLYING"}, "status"), ({"limit": "ten"}, "limit")],
    )  # fmt: skip
    async def test_bad_list_parameters(
        self, client: httpx.AsyncClient, params: dict, name: str
    ) -> None:
        assert_invalid(await client.get("/vms/", params=params), name)

    async def test_unknown_parameters_are_ignored(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/vms/", params={"colour": "blue"})).status_code == 200


class TestCreateOrbit:
    async def test_create_answers_201_with_detail(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post("/vms/create/", params=create_params())
        assert response.status_code == 201
        body = response.json()
        assert list(body) == DETAIL_KEYS
        assert body["status"] == "CREATING" and body["admin_pwd"] is None
        assert body["is_active"] is False and body["ipaddr"] is None
        assert response.headers["location"] == f"/operations/{body['operation_id']}"
        operation = (await client.get(response.headers["location"])).json()
        assert operation["kind"] == "orbit.create" and operation["orbit_id"] == body["id"]

    async def test_vm_count_makes_numbered_orbits(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/vms/create/", params=create_params(vm_name="n", vm_count=3))
        assert response.status_code == 201
        assert [o["vm_name"] for o in response.json()] == ["n-1", "n-2", "n-3"]

    async def test_without_trailing_slash(self, client: httpx.AsyncClient) -> None:
        assert (await client.post("/vms/create", params=create_params())).status_code == 201

    async def test_seed_boolean_typo_is_rejected(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/vms/create/", params=create_params(delete_root="false/"))
        assert_invalid(response, "delete_root")

    @pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "Yes"])
    async def test_boolean_spellings(self, client: httpx.AsyncClient, value: str) -> None:
        response = await client.post("/vms/create/", params=create_params(delete_root=value))
        assert response.json()["delete_root"] is True

    @pytest.mark.parametrize(
        "missing",
        [
            "vm_name",
            "vm_count",
            "flavor",
            "root_size",
            "ssh_key_value",
            "admin_pwd",
            "transaction_id",
        ],
    )
    async def test_missing_required(self, client: httpx.AsyncClient, missing: str) -> None:
        params = create_params()
        del params[missing]
        assert_invalid(await client.post("/vms/create/", params=params), missing)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("vm_count", 0), ("vm_count", 11), ("vm_count", "two"), ("flavor", 999),
            ("flavor", "big"), ("flavor", 99999999999), ("root_size", 0), ("root_size", 5),
            ("root_size", 10**6), ("availability_zone", "mars"), ("ssh_key_value", "xx"),
            ("ssh_key_value", "ssh-rsa " + SSH_KEY.split()[1]),
            ("booting_image", 42), ("booting_image", "ubuntu"), ("booting_volume", 0),
            ("vm_name", ""), ("vm_name", "a" * 256), ("vm_name", "bad\x01name"),
            ("transaction_id", "t" * 65), ("admin_pwd", ""), ("description", "x\x00y"),
        ],
    )  # fmt: skip
    async def test_bad_values(self, client: httpx.AsyncClient, name: str, value: object) -> None:
        overrides = {name: value}
        if name == "booting_volume":
            overrides["booting_image"] = None
        assert_invalid(await client.post("/vms/create/", params=create_params(**overrides)), name)

    async def test_a_boot_volume_that_is_not_yours_or_not_there_is_404(
        self, client: httpx.AsyncClient
    ) -> None:
        params = create_params(booting_image=None, booting_volume=42)
        body = assert_problem(await client.post("/vms/create/", params=params), 404, "not_found")
        assert body["detail"] == "Volume 42 not found (query parameter 'booting_volume')"
        assert body["errors"][0]["loc"] == ["query", "booting_volume"]

    async def test_both_or_neither_boot_source(self, client: httpx.AsyncClient) -> None:
        both = create_params(booting_volume=1)
        assert_invalid(await client.post("/vms/create/", params=both), "booting_image")
        neither = create_params(booting_image=None)
        assert_invalid(await client.post("/vms/create/", params=neither), "booting_image")

    async def test_bad_input_creates_nothing(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        await client.post("/vms/create/", params=create_params(flavor=999))
        assert await db_rows(app, "SELECT id FROM orbits") == []
        assert await db_rows(app, "SELECT id FROM operations") == []

    async def test_validation_errors_never_echo_the_password(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/vms/create/", params=create_params(admin_pwd="p" * 300 + "TOPSECRET")
        )
        assert response.status_code == 422 and "TOPSECRET" not in response.text

    async def test_hostile_text_is_stored_literally(self, client: httpx.AsyncClient) -> None:
        name = "x'); DROP TABLE orbits; -- <script>alert(1)</script> ü"
        orbit = await create_orbit(client, vm_name=name, description="%00 \\ \" '")
        body = (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()
        assert body["vm_name"] == name and body["description"] == "%00 \\ \" '"


class TestIdempotentCreate:
    async def test_same_transaction_replays(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        params = create_params(transaction_id="tx-1")
        first = await client.post("/vms/create/", params=params)
        again = await client.post("/vms/create/", params=params)
        assert first.status_code == 201 and again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 1

    async def test_other_parameters_conflict(self, client: httpx.AsyncClient) -> None:
        await client.post("/vms/create/", params=create_params(transaction_id="tx-2"))
        response = await client.post(
            "/vms/create/", params=create_params(transaction_id="tx-2", vm_name="other")
        )
        assert_problem(response, 409, "idempotency_mismatch")

    async def test_racing_identical_creates_make_one_orbit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        params = create_params(transaction_id="tx-race", vm_count=2)
        responses = await asyncio.gather(
            *[client.post("/vms/create/", params=params) for _ in range(8)]
        )
        assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
        ids = {tuple(o["id"] for o in r.json()) for r in responses}
        assert len(ids) == 1
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 2


class TestOrbitDetailAndUpdate:
    async def test_unknown_orbit_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/vms/vm_details/999/"), 404, "not_found")
        assert_problem(await client.get("/vms/vm_details/99999999999/"), 422, "invalid_parameter")
        assert_problem(await client.get("/vms/vm_details/abc/"), 422, "invalid_parameter")

    async def test_put_replaces_and_patch_changes(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client, description="first", delete_root="true")
        url = f"/vms/vm_details/{orbit['id']}/"
        patched = await client.patch(url, params={"description": "hi"})
        assert patched.status_code == 200
        assert (patched.json()["description"], patched.json()["delete_root"]) == ("hi", True)
        put = await client.put(url.rstrip("/"), params={"vm_name": "renamed"})
        assert put.status_code == 200
        body = put.json()
        assert (body["vm_name"], body["description"], body["delete_root"]) == (
            "renamed",
            None,
            False,
        )
        for _ in range(200):
            servers = await db_rows(app, "SELECT name FROM sim_servers")
            if servers[0]["name"] == "renamed":
                break
            await asyncio.sleep(0.02)
        assert servers == [{"name": "renamed"}], "the new name reached the cloud's server"

    async def test_put_needs_vm_name_and_valid_bool(self, client: httpx.AsyncClient) -> None:
        orbit = await create_orbit(client)
        url = f"/vms/vm_details/{orbit['id']}/"
        assert_invalid(await client.put(url, params={"description": "x"}), "vm_name")
        assert_invalid(
            await client.put(url, params={"vm_name": "d`", "delete_root": "false/"}), "delete_root"
        )


class TestRefusals:
    @pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])  # stays CREATING
    async def test_busy_orbit_refuses_everything(self, client: httpx.AsyncClient) -> None:
        orbit = await create_orbit(client)
        message = "Virtual Machine is in creating status, please wait until it finish."
        oid = orbit["id"]
        for response in (
            await client.post(f"/vms/{oid}/delete/"),
            await client.post(f"/vms/{oid}/resize/", params={"flavor_id": 5}),
            await client.post("/vms/action/", params={"action": "reboot", "orbit_id": oid}),
        ):
            assert_problem(response, 409, "orbit_busy", message)

    async def test_resize_needs_running(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        await client.post("/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]})
        await wait_status(client, orbit["id"], "PAUSED")
        response = await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 5})
        assert_problem(
            response, 409, "orbit_not_running", "Please boot up the Virtual Machine before resizing"
        )

    async def test_resize_options_and_bad_flavor(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        options = (await client.get(f"/vms/{orbit['id']}/resize")).json()
        assert [f["id"] for f in options] == [3, 4, 5, 6, 7, 8]
        assert all(f["vcpus"] >= 2 and f["ram"] >= 2 for f in options)
        assert (await client.get(f"/vms/{orbit['id']}/resize/")).status_code == 200
        assert_invalid(
            await client.post(f"/vms/{orbit['id']}/resize/", params={"flavor_id": 1}), "flavor_id"
        )
        assert_invalid(await client.post(f"/vms/{orbit['id']}/resize/"), "flavor_id")

    @pytest.mark.parametrize(
        ("action", "status", "detail"),
        [("start", "RUNNING", "Virtual Machine is already running.")],
    )
    async def test_inapplicable_action(
        self, client: httpx.AsyncClient, action: str, status: str, detail: str
    ) -> None:
        orbit = await running_orbit(client)
        response = await client.post(
            "/vms/action/", params={"action": action, "orbit_id": orbit["id"]}
        )
        assert_problem(response, 409, "action_not_applicable", detail)

    async def test_paused_orbit_refuses_pause_and_reboot(self, client: httpx.AsyncClient) -> None:
        orbit = await running_orbit(client)
        await client.post("/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]})
        await wait_status(client, orbit["id"], "PAUSED")
        pause = await client.post(
            "/vms/action/", params={"action": "pause", "orbit_id": orbit["id"]}
        )
        assert_problem(pause, 409, "action_not_applicable", "Virtual Machine is already paused.")
        reboot = await client.post(
            "/vms/action/", params={"action": "reboot", "orbit_id": orbit["id"]}
        )
        assert_problem(reboot, 409, "action_not_applicable")
        assert "start it before rebooting" in reboot.json()["detail"]

    async def test_bad_action_parameters(self, client: httpx.AsyncClient) -> None:
        assert_invalid(
            await client.post("/vms/action/", params={"action": "fly", "orbit_id": 1}), "action"
        )
        assert_invalid(await client.post("/vms/action/", params={"action": "start"}), "orbit_id")
        missing = await client.post("/vms/action/", params={"action": "start", "orbit_id": 77})
        assert_problem(missing, 404, "not_found")

    async def test_action_transaction_id_replays(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await running_orbit(client)
        params = {"action": "reboot", "orbit_id": orbit["id"], "transaction_id": "a-1"}
        first = await client.post("/vms/action/", params=params)
        again = await client.post("/vms/action/", params=params)
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.headers["location"] == again.headers["location"]
        other = await client.post("/vms/action/", params={**params, "action": "pause"})
        assert_problem(other, 409, "idempotency_mismatch")
        kinds = await db_rows(app, "SELECT kind FROM operations WHERE kind = 'orbit.reboot'")
        assert len(kinds) == 1

    async def test_racing_actions_one_wins(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit = await running_orbit(client)
        app.state.cloud.delay_scale = 10  # nothing settles while the requests race
        oid = orbit["id"]
        requests = [
            request
            for _ in range(3)
            for request in (
                client.post("/vms/action/", params={"action": "pause", "orbit_id": oid}),
                client.post("/vms/action/", params={"action": "reboot", "orbit_id": oid}),
                client.post(f"/vms/{oid}/delete/"),
                client.post(f"/vms/{oid}/resize/", params={"flavor_id": 5}),
            )
        ]
        responses = await asyncio.gather(*requests)
        codes = sorted(r.status_code for r in responses)
        assert codes.count(202) == 1 and codes.count(409) == len(requests) - 1, codes


class TestErrorsAndRecovery:
    async def test_build_error_ends_in_error_with_fault(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        app.state.cloud.faults.build_error = "No valid host was found."
        orbit = await create_orbit(client)
        body = await wait_status(client, orbit["id"], "ERROR")
        assert body["fault"] == "No valid host was found."
        operation = (await client.get(f"/operations/{orbit['operation_id']}")).json()
        assert operation["state"] == "failed" and operation["error"] == "No valid host was found."
        refused = await client.post(
            "/vms/action/", params={"action": "start", "orbit_id": orbit["id"]}
        )
        assert_problem(refused, 409, "action_not_applicable")
        reboot = await client.post(
            "/vms/action/", params={"action": "reboot", "orbit_id": orbit["id"]}
        )
        assert reboot.status_code == 202
        await wait_status(client, orbit["id"], "RUNNING")

    async def test_unknown_route_and_method(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/nowhere"), 404, "not_found")
        assert_problem(await client.delete("/vms/"), 405, "method_not_allowed")

    async def test_operation_not_found(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/operations/nope"), 404, "not_found")

    async def test_health(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
