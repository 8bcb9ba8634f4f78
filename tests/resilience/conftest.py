"""Fixtures for the resilience tests: a fake OpenStack in this process, a fresh database per test
(PostgreSQL when SOG_TEST_DATABASE_URL is set; SQLite where a test allows it), and `sog-api`
subprocesses that are always killed at the end, whatever happened."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.fake_openstack import FakeOpenStack
from tests.resilience.harness import (
    CloudApp,
    Launcher,
    Processes,
    cloud_apps,
    postgres_database,
    process_env,
    sqlite_database,
)
from tests.resilience.pgserver import PostgresUnavailable, PrivatePostgres

HERE = Path(__file__).parent

# openstacksdk warns from its own code (see tests/cloud/conftest.py).
SDK_WARNINGS = (
    "ignore::openstack.warnings.OpenStackWarning",
    "ignore::openstack.warnings.RemovedInSDK50Warning",
    "ignore::openstack.warnings.RemovedInSDK60Warning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            for spec in SDK_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def fake() -> Iterator[FakeOpenStack]:
    """The fake cloud; transitions take a tenth of their base durations (a build: 0.3 s)."""
    with FakeOpenStack(delay_scale=0.1) as cloud:
        yield cloud


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new migrated database on the shared PostgreSQL, dropped afterwards."""
    if not PG_URL:
        pytest.skip("needs SOG_TEST_DATABASE_URL")
    with postgres_database(PG_URL) as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new migrated database: one on the shared PostgreSQL, or a SQLite file."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path) as url:
            yield url
        return
    if not PG_URL:
        pytest.skip("needs SOG_TEST_DATABASE_URL")
    with postgres_database(PG_URL) as url:
        yield url


@pytest.fixture
def one_db_url(tmp_path: Path) -> Iterator[str]:
    """A new migrated database: on the shared PostgreSQL when there is one, else SQLite (for
    tests of what the cloud does, which do not depend on the database)."""
    if not PG_URL:
        with sqlite_database(tmp_path) as url:
            yield url
        return
    with postgres_database(PG_URL) as url:
        yield url


@pytest.fixture(scope="session")
def launcher() -> Iterator[Launcher]:
    """What forks the `sog-api` processes (sog-api imported once for the whole run)."""
    made = Launcher()
    yield made
    made.close()


@pytest.fixture
def processes(launcher: Launcher, tmp_path: Path) -> Iterator[Callable[..., Processes]]:
    """``processes(database_url, fake)``: starts `sog-api` processes; every one of them is
    SIGKILLed at the end of the test."""
    made: list[Processes] = []

    def start(database_url: str, fake: FakeOpenStack | None) -> Processes:
        procs = Processes(launcher, tmp_path, process_env(tmp_path, database_url, fake))
        made.append(procs)
        return procs

    yield start
    for procs in made:
        procs.kill_all()


@pytest.fixture
def os_environ(fake: FakeOpenStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """OS_* variables in this process that reach the fake and nothing else."""
    for name, value in fake.os_environ().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def cloud_app(one_db_url: str, os_environ: None) -> AsyncIterator[CloudApp]:
    """``await cloud_app(**settings)``: start the app and its worker on the fake OpenStack."""
    async with cloud_apps(one_db_url) as start:
        yield start


@pytest.fixture
async def pg_cloud_app(pg_url: str, os_environ: None) -> AsyncIterator[CloudApp]:
    """The same on PostgreSQL (skipped without it)."""
    async with cloud_apps(pg_url) as start:
        yield start


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"cannot run a private PostgreSQL here: {exc}")
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_db_url(private_pg: PrivatePostgres) -> Iterator[str]:
    """A migrated database on the private server (it goes with the server)."""
    with postgres_database(private_pg.admin_url, drop=False) as url:
        yield url
