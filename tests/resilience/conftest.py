"""Fixtures for the resilience tests: a fake OpenStack in this process, a fresh database per test
(PostgreSQL when SOG_TEST_DATABASE_URL is set; SQLite where a test allows it), and `sog-api`
subprocesses that are always killed at the end, whatever happened."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import PG_URL
from tests.fake_openstack import FakeOpenStack
from tests.resilience.harness import Processes, postgres_database, process_env, sqlite_database

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
    """The fake cloud; transitions take a fifth of their base durations (a build: 0.6 s)."""
    with FakeOpenStack(delay_scale=0.2) as cloud:
        yield cloud


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new migrated database on the shared PostgreSQL, dropped afterwards."""
    if PG_URL is None:
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
    if PG_URL is None:
        pytest.skip("needs SOG_TEST_DATABASE_URL")
    with postgres_database(PG_URL) as url:
        yield url


@pytest.fixture
def one_db_url(tmp_path: Path) -> Iterator[str]:
    """A new migrated database: on the shared PostgreSQL when there is one, else SQLite (for
    tests of what the cloud does, which do not depend on the database)."""
    if PG_URL is None:
        with sqlite_database(tmp_path) as url:
            yield url
        return
    with postgres_database(PG_URL) as url:
        yield url


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Processes]]:
    """``processes(database_url, fake)``: a launcher of `sog-api` subprocesses; every one of
    them is SIGKILLed at the end of the test."""
    made: list[Processes] = []

    def launcher(database_url: str, fake: FakeOpenStack | None) -> Processes:
        procs = Processes(tmp_path, process_env(tmp_path, database_url, fake))
        made.append(procs)
        return procs

    yield launcher
    for procs in made:
        procs.kill_all()
