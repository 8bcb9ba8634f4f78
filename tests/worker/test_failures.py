"""What the worker's loops log when the database fails them: a database that is away is one
warning line per failure, without traceback; any other error is a bug and keeps its traceback.

The failures are injected where the driver raises them, so SQLAlchemy wraps them as it wraps a
real one: ``OperationalError`` (a connection dropped, SQLite's lock not had in time) for the
database being away, ``ProgrammingError`` (a query the database cannot run) for a bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from sog_api.worker.runner import Worker
from tests.conftest import db_rows
from tests.helpers import create_orbit, wait_status

AWAY = "OperationalError"
BUG = "ProgrammingError"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # No worker of the app's own: each test drives one. Short leases renew every 0.05 s.
    return {"run_worker": False, "worker_concurrency": 1, "worker_lease_seconds": 0.15}


@contextmanager
def database_fails(app: FastAPI, statement: str, error: str) -> Iterator[None]:
    """Every SQL statement that contains ``statement`` fails with the driver's ``error``."""
    engine = app.state.engine
    raised = getattr(engine.dialect.loaded_dbapi, error)

    def fail(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if statement in " ".join(sql.split()):
            raise raised("server closed the connection unexpectedly")

    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail)


def worker_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, bool]]:
    """The worker's warnings and errors: level, message, and whether a traceback came with it."""
    return [
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == "sog_api.worker" and r.levelno >= logging.WARNING
    ]


async def waiting_orbits(client: httpx.AsyncClient, app: FastAPI, worker: Worker) -> list[str]:
    """Two orbits whose creates wait for the cloud (the poller's work); their operation ids."""
    for _ in range(2):
        await create_orbit(client)
    while await worker.run_once():
        pass
    rows = await db_rows(app, "SELECT id FROM operations WHERE state = 'waiting' ORDER BY id")
    assert len(rows) == 2, await db_rows(app, "SELECT stage, state, error FROM operations")
    return [row["id"] for row in rows]


@dataclass(frozen=True)
class Loop:
    """One of the worker's loops: the statement that fails it, and how to run it once."""

    statement: str
    run: Callable[[Worker, str], Awaitable[None]]
    event: str
    context: Callable[[Worker, str], str] = lambda worker, op: ""  # what its log line names


async def _claim(worker: Worker, _op: str) -> None:
    worker.start()  # the runner loop meets the failure at every claim
    await asyncio.sleep(0.2)
    await worker.stop()


async def _renew(worker: Worker, op: str) -> None:
    renewal = asyncio.create_task(worker._keep_lease(op))
    await asyncio.sleep(0.2)
    renewal.cancel()


async def _reconcile(worker: Worker, _op: str) -> None:
    await worker.poller.reconcile_if_due()


LOOPS = {
    "claim": Loop("operations.run_after <=", _claim, "runner_error"),
    "lease renewal": Loop(
        "UPDATE operations SET lease_expires_at=", _renew, "lease_renewal_failed",
        lambda w, op: f" op={op}",
    ),
    "release at shutdown": Loop(
        "UPDATE operations SET state=", lambda w, op: w.release_held(), "release_failed",
        lambda w, op: f" worker={w.id}",
    ),
    "reconcile": Loop("FROM orbits", _reconcile, "reconcile_failed"),
}  # fmt: skip


@pytest.mark.parametrize("loop", LOOPS.values(), ids=LOOPS.keys())
@pytest.mark.parametrize("error", [AWAY, BUG])
async def test_each_loop_warns_when_the_database_is_away_and_shows_bugs(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture, loop: Loop,
    error: str,
) -> None:  # fmt: skip
    worker = Worker(app.state.settings, app.state.sessionmaker, app.state.cloud)
    op = (await waiting_orbits(client, app, worker))[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING), database_fails(app, loop.statement, error):
        await loop.run(worker, op)
    lines, context = worker_lines(caplog), loop.context(worker, op)
    if error == AWAY:  # one line each time, no traceback
        expected = ("WARNING", f"{loop.event} database_unavailable{context} error={AWAY}", False)
    else:
        expected = ("ERROR", f"{loop.event}{context}", True)
    assert lines and set(lines) == {expected}, lines


async def test_a_settle_cycle_that_loses_the_database_warns_once_and_loses_nothing(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # Each waiting operation logged settle_error at ERROR with a full traceback.
    worker = Worker(app.state.settings, app.state.sessionmaker, app.state.cloud)
    ops = await waiting_orbits(client, app, worker)
    caplog.clear()
    with caplog.at_level(logging.WARNING), database_fails(app, "WHERE operations.id =", AWAY):
        await worker.poller.poll_once()
    [(level, message, traceback)] = worker_lines(caplog)  # the cycle stops at the first
    assert (level, traceback) == ("WARNING", False)
    assert message in {f"settle_error database_unavailable op={op} error={AWAY}" for op in ops}
    worker.start()
    try:
        for orbit in await db_rows(app, "SELECT id FROM orbits"):
            await wait_status(client, orbit["id"], "RUNNING")
    finally:
        await worker.stop()
    states = await db_rows(app, "SELECT state FROM operations")
    assert states == [{"state": "succeeded"}] * 2


async def test_a_bug_in_settling_keeps_its_traceback_and_the_cycle_goes_on(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(app.state.settings, app.state.sessionmaker, app.state.cloud)
    ops = await waiting_orbits(client, app, worker)
    caplog.clear()
    with caplog.at_level(logging.WARNING), database_fails(app, "WHERE operations.id =", BUG):
        await worker.poller.poll_once()
    expected = [("ERROR", f"settle_error op={op}", True) for op in ops]  # one for each
    assert sorted(worker_lines(caplog)) == sorted(expected)
