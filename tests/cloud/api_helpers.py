"""Helpers for the API tests on the fake OpenStack: cloud ids of our rows, actions, the journal."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import db_rows
from tests.fake_openstack import FakeOpenStack, JournalEntry

# Requests after version discovery, per service.
COMPUTE_CALL = r"^/compute/v2\.1/.+"
VOLUME_CALL = r"^/volume/v3/[^/]+/.+"
SERVER_LISTING = r"^/compute/v2\.1/servers/detail$"
VOLUME_LISTING = r"^/volume/v3/[^/]+/volumes/detail$"


async def server_id(app: FastAPI, orbit_id: int) -> str:
    """The Nova server id the orbit's row records."""
    rows = await db_rows(app, "SELECT server_id FROM orbits WHERE id=:id", id=orbit_id)
    assert rows and rows[0]["server_id"], rows
    return str(rows[0]["server_id"])


async def cloud_volume_id(app: FastAPI, volume_id: int) -> str:
    """The Cinder volume id the volume's row records."""
    rows = await db_rows(app, "SELECT backend_volume_id FROM volumes WHERE id=:id", id=volume_id)
    assert rows and rows[0]["backend_volume_id"], rows
    return str(rows[0]["backend_volume_id"])


async def act(client: httpx.AsyncClient, orbit_id: int, action: str) -> httpx.Response:
    """POST /vms/action/ and return the response."""
    return await client.post("/vms/action/", params={"action": action, "orbit_id": orbit_id})


def operation_of(response: httpx.Response) -> str:
    """The operation id named by a 201/202 response's Location header."""
    return response.headers["location"].rsplit("/", 1)[1]


def server_actions(fake: FakeOpenStack, cloud_id: str) -> list[object]:
    """The bodies of every POST /servers/{id}/action the fake received for this server."""
    return [e.json for e in fake.requests("POST", rf"/servers/{cloud_id}/action$")]


def server_listings(fake: FakeOpenStack) -> list[JournalEntry]:
    """The poller's and drift pass's ``servers/detail`` listings (not the look-ups by tag)."""
    return [e for e in fake.requests("GET", SERVER_LISTING) if "tags" not in e.query]


def volume_listings(fake: FakeOpenStack) -> list[JournalEntry]:
    """The poller's ``volumes/detail`` listings (not the look-ups by metadata tag)."""
    return [e for e in fake.requests("GET", VOLUME_LISTING) if "metadata" not in e.query]


def live_servers(fake: FakeOpenStack) -> list[str]:
    return [s.id for s in fake.servers.values() if not s.deleted]
