"""Small helpers the tests share: make an orbit, wait for a status."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.conftest import SSH_KEY


def create_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "vm_name": "web",
        "vm_count": 1,
        "flavor": 2,
        "root_size": 20,
        "availability_zone": "nova",
        "ssh_key_value": SSH_KEY,
        "admin_pwd": "Sup3r-secret!",
        "transaction_id": uuid.uuid4().hex,
        "booting_image": 3,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def create_orbit(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/vms/create/", params=create_params(**overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def wait_status(
    client: httpx.AsyncClient, orbit_id: int, status: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll the orbit until it reaches ``status``; fail with its last state otherwise."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/vms/vm_details/{orbit_id}/")
        body = response.json()
        if response.status_code == 200 and body["status"] == status:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"orbit {orbit_id} did not reach {status}: {body}")


async def wait_gone(client: httpx.AsyncClient, orbit_id: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get(f"/vms/vm_details/{orbit_id}/")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"orbit {orbit_id} was not deleted")


async def running_orbit(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    orbit = await create_orbit(client, **overrides)
    return await wait_status(client, orbit["id"], "RUNNING")


async def wait_operation(
    client: httpx.AsyncClient, operation_id: str, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await client.get(f"/operations/{operation_id}")).json()
        if body.get("state") in ("succeeded", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {operation_id} did not finish: {body}")


# -- volumes -----------------------------------------------------------------------------------


async def create_volume(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    """POST /volume/create/ (nickname "data", 20 GB unless given); assert 201."""
    values: dict[str, Any] = {"nickname": "data", "capacity": 20, **params}
    response = await client.post("/volume/create/", params=values)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def wait_volume(
    client: httpx.AsyncClient, volume_id: int, status: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll the volume until it reaches ``status``; fail with its last state otherwise."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/volume/{volume_id}")
        body = response.json()
        if response.status_code == 200 and body["status"] == status:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"volume {volume_id} did not reach {status}: {body}")


async def wait_volume_gone(
    client: httpx.AsyncClient, volume_id: int, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get(f"/volume/{volume_id}")).status_code == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"volume {volume_id} was not deleted")


async def available_volume(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    volume = await create_volume(client, **params)
    return await wait_volume(client, volume["id"], "AVAILABLE")


async def attached_volume(
    client: httpx.AsyncClient, orbit_id: int, **params: Any
) -> dict[str, Any]:
    volume = await create_volume(client, attach_to=orbit_id, **params)
    return await wait_volume(client, volume["id"], "RUNNING")


async def db_update(app: Any, model: Any, ident: Any, **values: Any) -> None:
    """Change a row directly in the app's database (to set up a state the API cannot reach)."""
    async with app.state.sessionmaker.begin() as session:
        row = await session.get(model, ident)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
