"""Migrations: upgrade from empty to head on each database, and agree with the models."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from sog_api.db import migrate
from sog_api.db.models import Base
from sog_api.settings import Settings
from tests.conftest import PG_URL, _pg_create, _pg_drop

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"sog_mig_{uuid.uuid4().hex[:10]}"
    url = asyncio.run(_pg_create(name))
    yield url
    asyncio.run(_pg_drop(name))


async def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), set(
                    inspect(sync_conn).get_table_names()
                )

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


def test_upgrade_from_empty_matches_models(empty_database: str) -> None:
    settings = Settings(database_url=empty_database)
    migrate.upgrade(settings)
    diff, tables = asyncio.run(_diff_and_tables(empty_database))
    assert diff == [], f"models and migrations disagree: {diff}"
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_base_and_up_again(empty_database: str) -> None:
    from alembic import command

    settings = Settings(database_url=empty_database)
    migrate.upgrade(settings)
    command.downgrade(migrate.alembic_config(settings), "base")
    _diff, tables = asyncio.run(_diff_and_tables(empty_database))
    assert tables <= {"alembic_version"}
    migrate.upgrade(settings)
