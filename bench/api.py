"""Requests per second of the main routes, in process, SQLite beside PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from sog_api.db import migrate
from sog_api.main import create_app
from sog_api.settings import Settings

KEY = "sog_bench-key-of-the-default-project-0123456789"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl b@h"
PG_ADMIN = os.environ.get("SOG_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ORBITS = 100
REQUESTS = 300
CONCURRENCY = 8


def _create_params() -> dict[str, Any]:
    return {
        "vm_name": "bench", "vm_count": 1, "flavor": 2, "root_size": 20,
        "ssh_key_value": SSH_KEY, "admin_pwd": "bench-pass", "booting_image": 3,
        "transaction_id": uuid.uuid4().hex,
    }  # fmt: skip


@asynccontextmanager
async def _client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(migrate.upgrade, Settings(database_url=database_url))
    settings = Settings(
        database_url=database_url, run_worker=False, bootstrap_api_key=KEY,
        rate_limit_per_minute=0, log_level="WARNING",
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Token {KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            yield client


async def _rate(send: Callable[[], Any]) -> float:
    """Requests per second of ``send`` with CONCURRENCY requests in flight."""
    remaining = REQUESTS

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await send()
            assert response.status_code < 300, response.text

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - started)


async def _run(database_url: str) -> dict[str, float]:
    async with _client(database_url) as client:
        for _ in range(ORBITS):
            await client.post("/vms/create/", params=_create_params())
        return {
            f"GET /vms/ ({ORBITS} orbits)": await _rate(lambda: client.get("/vms/")),
            "GET /vms/vm_details/{id}/": await _rate(lambda: client.get("/vms/vm_details/7/")),
            "GET /vms/flavors/": await _rate(lambda: client.get("/vms/flavors/")),
            "POST /vms/create/": await _rate(
                lambda: client.post("/vms/create/", params=_create_params())
            ),
        }


async def _postgres() -> dict[str, float] | None:
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"  (PostgreSQL at {PG_ADMIN} is not reachable: {exc}; SQLite only)")
        return None
    name = f"sog_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return await _run(f"{base}/{name}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    print(f"api: requests per second, in process, {CONCURRENCY} in flight, {REQUESTS} each")
    with tempfile.TemporaryDirectory() as folder:
        sqlite = asyncio.run(_run(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"))
    postgres = asyncio.run(_postgres())
    print(f"  {'route':<28} {'SQLite':>8} {'PostgreSQL':>11} {'PG / SQLite':>12}")
    for route, rate in sqlite.items():
        if postgres:
            other = postgres[route]
            print(f"  {route:<28} {rate:>8.0f} {other:>11.0f} {other / rate:>11.2f}x")
        else:
            print(f"  {route:<28} {rate:>8.0f}")
