"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sog_api.db.errors import detect_disconnects, is_unavailable
from sog_api.settings import Settings

log = logging.getLogger("sog_api.db")

READ_ONLY = "sog_read_only"
"""Execution option of the engine that read-only requests use (see ``read_only``)."""


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the engine with the pragmas and pool settings each database needs."""
    import sog_api.db.models  # noqa: F401  (every table known, whichever process this is)

    if settings.is_sqlite:
        return _sqlite_engine(settings)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_pool_timeout,
            "command_timeout": settings.db_statement_timeout,
            "server_settings": {
                "statement_timeout": str(int(settings.db_statement_timeout * 1000)),
                "lock_timeout": str(int(settings.db_statement_timeout * 1000)),
                "application_name": "sog-api",
            },
        },
    )
    detect_disconnects(engine)
    return engine


def create_read_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine for sessions that only read (GET requests, key look-ups, /readyz).

    On SQLite it has a pool of its own: writers queued for the write lock each hold a connection
    while they wait, and must not take every connection from the reads, which need no lock.
    PostgreSQL readers never wait for writers, so they share the one pool.
    """
    if settings.is_sqlite:
        return read_only(_sqlite_engine(settings))
    return read_only(engine)


def _sqlite_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        connect_args={"timeout": settings.db_statement_timeout},
    )
    _sqlite_pragmas(engine, busy_timeout_ms=max(1, round(settings.db_statement_timeout * 1000)))
    return engine


def _sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of failing.

    The busy timeout is ``SOG_DB_STATEMENT_TIMEOUT``: how long a writer waits for the write lock
    before its "database is locked" (a 503, or a retry in the worker).

    SQLite upgrades a read transaction to a write one lazily, and two such upgrades deadlock
    ("database is locked"). Taking the write lock at BEGIN serialises writers, which is what the
    embedded single-node default wants; PostgreSQL uses row locks instead. Read-only sessions
    (``read_only``) begin deferred: under WAL they read a snapshot without waiting for writers.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Session(AsyncSession):
    """A session whose closing never fails because the database went away meanwhile.

    Closing rolls back what is still open; when the server is gone that rollback fails, but there
    is nothing left to undo. Raising then would turn an answer already sent into a crash of the
    request (the session of a request is closed after its response started).
    """

    async def close(self) -> None:
        try:
            await super().close()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("session_close_failed error=%s", type(exc).__name__)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, class_=Session)


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for sessions that only read (GET requests, key look-ups)."""
    return engine.execution_options(**{READ_ONLY: True})
