"""Database errors of every shape a restart produces are "unavailable, retry": the API answers
503, a session whose server went away closes quietly, and a step that met the database's trouble
is retried however often its operation was retried before."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from asyncpg import exceptions as pg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from sog_api.db.engine import create_engine, create_sessionmaker
from sog_api.db.errors import is_disconnect, is_unavailable
from sog_api.main import create_app
from sog_api.settings import Settings
from tests.conftest import make_settings
from tests.fake_openstack import FakeOpenStack
from tests.helpers import create_orbit, wait_status
from tests.resilience.harness import CloudApp, eventually, live_servers
from tests.resilience.pgserver import PrivatePostgres


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_connections_refused_while_postgres_shuts_down_are_503(
    private_pg: PrivatePostgres, private_db_url: str
) -> None:
    app = create_app(make_settings(private_db_url, run_worker=False, auth="disabled"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sog") as http:
            assert (await http.get("/vms/")).status_code == 200
            holder = await asyncpg.connect(_dsn(private_pg.admin_url))  # keeps the server up
            try:
                # a smart shutdown refuses new connections ("the database system is shutting
                # down", 57P03) while it waits for the sessions it has
                await asyncio.to_thread(private_pg.stop, "smart", wait=False)
                await holder.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'sog-api'"
                )
                response = await http.get("/vms/")
            finally:
                await holder.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["retry-after"] == "2"


async def test_a_session_whose_server_ended_it_closes_quietly(pg_url: str) -> None:
    # A request's session is closed after its answer started: raising there crashed the request.
    engine = create_engine(Settings(database_url=pg_url))
    admin = await asyncpg.connect(_dsn(pg_url))
    try:
        session = create_sessionmaker(engine)()
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await session.close()  # nothing left to roll back: no error
        async with create_sessionmaker(engine)() as fresh:  # and the pool serves again
            assert (await fresh.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await admin.close()
        await engine.dispose()


async def test_a_lock_timeout_in_a_step_is_retried_not_failed(
    pg_url: str, pg_cloud_app: CloudApp, fake: FakeOpenStack
) -> None:
    running = await pg_cloud_app(db_statement_timeout=1.0)
    # four refused look-ups first: the fifth attempt is the one that meets the database error
    fake.faults.fail("GET", r"/volumes/detail$", 503, times=4, retry_after=0.15)
    orbit = await create_orbit(running.client)
    blocker = await asyncpg.connect(_dsn(pg_url))
    try:
        async with blocker.transaction():
            # the step reads the image after its cloud look-up: that read waits, then times out
            await blocker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")

            async def met_the_lock() -> dict[str, object] | None:
                row = await blocker.fetchrow("SELECT attempts, state, error FROM operations")
                done = row is not None and row["attempts"] >= 5 and row["state"] != "running"
                return dict(row) if done else None

            seen = await eventually(met_the_lock, "the fifth attempt's database error")
    finally:
        await blocker.close()
    assert seen["state"] == "queued", seen  # retried: not failed
    assert seen["error"] == "The database was unavailable; retrying."
    body = await wait_status(running.client, orbit["id"], "RUNNING")
    assert body["fault"] is None
    await running.stop()
    assert sum(live_servers(fake).values()) == 1


@pytest.mark.parametrize(
    ("error", "unavailable", "disconnect"),
    [
        (IntegrityError("INSERT", {}, pg.UniqueViolationError("duplicate key")), False, False),
        (ProgrammingError("SELECT", {}, pg.UndefinedTableError("no table")), False, False),
        (DBAPIError("SELECT", {}, pg.CannotConnectNowError("shutting down")), True, True),
        (DBAPIError("SELECT", {}, pg.AdminShutdownError("terminating")), True, True),
        (DBAPIError("SELECT", {}, pg.LockNotAvailableError("lock timeout")), True, False),
        (DBAPIError("SELECT", {}, pg.InternalClientError("another operation")), True, True),
        (ConnectionRefusedError(111, "refused"), True, True),
    ],
    ids=["unique", "programming", "57P03", "57P01", "55P03", "mid-operation", "refused"],
)
def test_which_errors_mean_the_database_is_away(
    error: BaseException, unavailable: bool, disconnect: bool
) -> None:
    # "away" is a 503 and a retry; anything else (a duplicate key: an idempotent replay) is not
    assert (is_unavailable(error), is_disconnect(error)) == (unavailable, disconnect)
