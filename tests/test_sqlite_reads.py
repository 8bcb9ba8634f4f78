"""On SQLite, reads do not queue behind a writer: GETs and /readyz answer while the write lock is
held, and a writer waits for the lock no longer than SOG_DB_STATEMENT_TIMEOUT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import db_rows
from tests.helpers import create_orbit

# PostgreSQL readers never wait for writers, and its lock waits are bounded by lock_timeout.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def write_lock(database_url: str, orbit_id: int | None = None) -> Iterator[None]:
    """Another process's long write transaction (a worker, say) holds the write lock meanwhile."""
    path = database_url.split("///", 1)[1]
    locked, release = threading.Event(), threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        if orbit_id is not None:
            conn.execute(
                "UPDATE orbits SET description = 'being written' WHERE id = ?", (orbit_id,)
            )
        locked.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        thread.join()


@pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])
async def test_reads_answer_while_another_process_writes(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    orbit = await create_orbit(client)
    with write_lock(database_url, orbit["id"]):
        reads = asyncio.gather(
            client.get("/vms/"), client.get(f"/vms/vm_details/{orbit['id']}/"),
            client.get("/volume/"), client.get("/vms/flavors/"),
        )  # fmt: skip
        done, _ = await asyncio.wait({asyncio.ensure_future(reads)}, timeout=10)
        assert done, "reads waited for the writer's lock"
        responses = done.pop().result()
        assert [r.status_code for r in responses] == [200, 200, 200, 200]
        assert responses[1].json()["description"] is None  # the committed state, not the write


@pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])
async def test_readyz_answers_at_once_while_another_process_writes(
    client: httpx.AsyncClient, database_url: str
) -> None:
    # /readyz began BEGIN IMMEDIATE: it waited the busy timeout (15 s), then answered 503
    # though every GET still answered.
    with write_lock(database_url):
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    assert elapsed < 1.5, elapsed


@pytest.mark.parametrize("settings_overrides", [{"run_worker": False, "db_statement_timeout": 1}])
async def test_a_writer_waits_for_the_lock_as_long_as_the_statement_timeout(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    # The busy timeout was 15 s whatever SOG_DB_STATEMENT_TIMEOUT said.
    with write_lock(database_url):
        started = time.monotonic()
        response = await client.post("/volume/create/", params={"nickname": "v", "capacity": 20})
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert 0.9 <= elapsed < 4, elapsed
    assert await db_rows(app, "SELECT id FROM volumes") == []
    response = await client.post("/volume/create/", params={"nickname": "v", "capacity": 20})
    assert response.status_code == 201, response.text  # and it writes again once the lock is free


@pytest.mark.parametrize(
    "settings_overrides",
    [{"run_worker": False, "db_pool_size": 2, "db_pool_timeout": 1, "db_statement_timeout": 5}],
)
async def test_writers_queued_for_the_lock_leave_connections_for_reads(
    client: httpx.AsyncClient, database_url: str
) -> None:
    # Reads and writes shared one pool: writers waiting for the lock held every connection, so
    # GETs and /readyz waited for them (tens of seconds), then answered 503.
    with write_lock(database_url):
        writers = [
            asyncio.ensure_future(
                client.post("/volume/create/", params={"nickname": f"v{n}", "capacity": 20})
            )
            for n in range(20)  # more than any pool holds
        ]
        await asyncio.sleep(0.5)  # every connection of the writers' pool is taken or waited for
        started = time.monotonic()
        reads = await asyncio.wait_for(
            asyncio.gather(client.get("/vms/"), client.get("/readyz")), timeout=5
        )
        elapsed = time.monotonic() - started
        statuses = [r.status_code for r in await asyncio.gather(*writers)]
    assert [r.status_code for r in reads] == [200, 200]
    assert elapsed < 1.5, elapsed
    assert set(statuses) == {503}  # no writer got the lock; none waited past pool + busy timeout
