"""Shared fixtures: a migrated database (SQLite, and PostgreSQL when SOG_TEST_DATABASE_URL is set),
the app with its worker and simulated cloud, and an HTTP client talking to it in-process."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from sog_api.db import migrate
from sog_api.main import create_app
from sog_api.settings import Settings

PG_URL = os.environ.get("SOG_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
)
FAST = {"simulator_delay_scale": 0.02, "worker_poll_interval": 0.02}
# The default project's key, stored at app start (SOG_BOOTSTRAP_API_KEY); `client` sends it.
TEST_API_KEY = "sog_test-key-of-the-default-project-0123456789"
AUTH = {"bootstrap_api_key": TEST_API_KEY, "rate_limit_per_minute": 0}
# Tables a test may fill; the catalogue and the default project are kept between tests.
DATA_TABLES = (
    "idempotency_keys", "operations", "volumes", "orbits", "sim_volumes", "sim_servers",
    "api_keys",
)  # fmt: skip


def _pg_admin_dsn() -> str:
    assert PG_URL is not None
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_create(name: str) -> str:
    conn = await asyncpg.connect(_pg_admin_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_URL.rsplit("/", 1)[0]  # type: ignore[union-attr]
    return f"{base}/{name}"


async def _pg_drop(name: str) -> None:
    conn = await asyncpg.connect(_pg_admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, and say why, when the PostgreSQL the run was told to use does not answer."""
    if not PG_URL:
        return

    async def ping() -> None:
        conn = await asyncpg.connect(_pg_admin_dsn(), timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.exit(
            f"PostgreSQL at {PG_URL} does not answer ({exc}). Start it, point"
            " SOG_TEST_DATABASE_URL at another server, or set SOG_TEST_DATABASE_URL= (empty)"
            " to run on SQLite only.",
            returncode=3,
        )


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated database per backend for the whole run: a SQLite template file, a PG db."""
    urls: dict[str, str] = {}
    template = tmp_path_factory.mktemp("db") / "template.db"
    urls["sqlite"] = f"sqlite+aiosqlite:///{template}"
    migrate.upgrade(Settings(database_url=urls["sqlite"]))
    pg_name = None
    if PG_URL:
        pg_name = f"sog_test_{uuid.uuid4().hex[:10]}"
        urls["postgresql"] = asyncio.run(_pg_create(pg_name))
        migrate.upgrade(Settings(database_url=urls["postgresql"]))
    yield urls
    if pg_name:
        asyncio.run(_pg_drop(pg_name))


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, migrated_databases: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    """A clean migrated database for one test (a copied SQLite file, or a truncated PG db)."""
    if request.param == "sqlite":
        template = Path(migrated_databases["sqlite"].split("///", 1)[1])
        target = tmp_path / "sog.db"
        shutil.copy(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = migrated_databases["postgresql"]
    asyncio.run(_pg_truncate(url))
    yield url


async def _pg_truncate(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        extra = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename NOT IN "
            "('alembic_version','flavors','images','volume_templates','availability_zones',"
            "'projects')"
        )
        tables = sorted({r["tablename"] for r in extra} | set(DATA_TABLES))
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        await conn.execute("DELETE FROM projects WHERE id <> 1")
    finally:
        await conn.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings (fast simulator, the test key, no rate limit) with ``overrides`` applied."""
    values: dict[str, Any] = {"database_url": database_url, **FAST, **AUTH}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change the app's settings."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Token {TEST_API_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        yield http


@pytest.fixture
def is_postgres(settings: Settings) -> bool:
    return not settings.is_sqlite


async def db_rows(app: FastAPI, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a raw SQL query against the app's database (to assert what was stored)."""
    async with app.state.sessionmaker() as session:
        result = await session.execute(text(sql), params)
        return [dict(row._mapping) for row in result]
