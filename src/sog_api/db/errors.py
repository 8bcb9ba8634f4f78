"""Which database errors mean "unavailable right now": answer 503, retry later, lose nothing.

A PostgreSQL restart shows up in many shapes: refused connections (``OSError``), sessions ended
by the server (SQLSTATE 57P01), connection attempts while it shuts down or starts up (57P03,
which SQLAlchemy wraps as a plain ``DBAPIError``), timeouts, and a connection left half-way
through an operation (asyncpg's ``InternalClientError``: "cannot switch to state ...; another
operation is in progress"). SQLite's "database is locked" is an ``OperationalError``. All of them
are transient; a programming error is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from asyncpg import exceptions as pg
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

# SQLSTATE: 08 connection exception, 53 insufficient resources (too many connections, ...),
# 57P01-57P05 the server ended the session or refuses connections now; 57014 a statement timeout,
# 55P03 a lock timeout, 40001/40P01 serialization failure and deadlock: try again later.
_CLASSES = ("08", "53", "57P0")
_CODES = frozenset({"57014", "55P03", "40001", "40P01"})
# Errors of a connection that is closed, reset, or whose protocol state is lost.
_BROKEN = (
    pg.InterfaceError, pg.InternalClientError, pg.ConnectionDoesNotExistError, ConnectionError,
)  # fmt: skip


def _chain(exc: BaseException) -> Iterator[Any]:
    """The error, the driver error SQLAlchemy wraps, and what caused each (a few levels)."""
    seen: list[Any] = [exc]
    for item in seen:
        if len(seen) > 8:
            break
        for nxt in (getattr(item, "orig", None), item.__cause__, item.__context__):
            if nxt is not None and all(nxt is not s for s in seen):
                seen.append(nxt)
    return iter(seen)


def _transient(item: Any) -> bool:
    code = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
    if isinstance(code, str) and (code.startswith(_CLASSES) or code in _CODES):
        return True
    return isinstance(item, _BROKEN)


def is_disconnect(exc: BaseException) -> bool:
    """Whether the connection that raised ``exc`` is gone or unusable (to be discarded)."""
    for item in _chain(exc):
        code = getattr(item, "sqlstate", None)
        if isinstance(code, str) and code.startswith(("08", "57P0")):
            return True
        if isinstance(item, _BROKEN):
            return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot serve us right now (not a bug in the query)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError):
        return True  # OSError includes refused connections and TimeoutError
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return any(_transient(item) for item in _chain(exc))


def detect_disconnects(engine: AsyncEngine) -> None:
    """Let SQLAlchemy discard connections that any of these errors left broken (asyncpg's own
    test only knows closed sockets), so the pool hands out fresh ones when the server is back."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and is_disconnect(context.original_exception):
            context.is_disconnect = True
