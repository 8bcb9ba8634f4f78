"""On SQLite, reads do not queue behind a writer: GETs answer while the write lock is held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import create_orbit


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL readers never wait
@pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])
async def test_reads_answer_while_another_process_writes(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    orbit = await create_orbit(client)
    path = database_url.split("///", 1)[1]
    locked, release = threading.Event(), threading.Event()

    def writer() -> None:  # another process's long write transaction, e.g. a worker
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE orbits SET description = 'being written' WHERE id = ?", (orbit["id"],))
        locked.set()
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        reads = asyncio.gather(
            client.get("/vms/"), client.get(f"/vms/vm_details/{orbit['id']}/"),
            client.get("/volume/"), client.get("/vms/flavors/"),
        )  # fmt: skip
        done, _ = await asyncio.wait({asyncio.ensure_future(reads)}, timeout=10)
        assert done, "reads waited for the writer's lock"
        responses = done.pop().result()
        assert [r.status_code for r in responses] == [200, 200, 200, 200]
        assert responses[1].json()["description"] is None  # the committed state, not the write
    finally:
        release.set()
        thread.join()
