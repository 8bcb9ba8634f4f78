"""Fixtures for the auth tests: more projects with their own keys, and clients that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sog_api.auth.keys import create_key
from sog_api.projects.quotas import QUOTAS
from sog_api.projects.service import get_or_create_project, set_quotas

MakeKey = Callable[..., Awaitable[str]]
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def make_key(app: FastAPI) -> MakeKey:
    """``await make_key("acme", orbits=2, ram=8)``: a new key of the project (made when missing).

    Quotas are named as in ``check_quota``: orbits, vcpus, ram, volume_gb.
    """

    async def make(project: str, **quotas: int | None) -> str:
        async with app.state.sessionmaker.begin() as session:
            owner, _ = await get_or_create_project(session, app.state.settings, project)
            await session.flush()
            await set_quotas(session, owner, {QUOTAS[k][0]: v for k, v in quotas.items()})
            return (await create_key(session, owner.id)).key

    return make


@pytest.fixture
async def make_client(app: FastAPI) -> AsyncIterator[MakeClient]:
    """``await make_client(key)``: a client sending ``Authorization: <scheme> <key>`` (or none)."""
    async with AsyncExitStack() as stack:

        async def make(key: str | None = None, scheme: str = "Token") -> httpx.AsyncClient:
            headers = {"Authorization": f"{scheme} {key}"} if key is not None else {}
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers=headers
            )
            return await stack.enter_async_context(http)

        yield make


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body
