"""How the worker's loops report a failure: the database being away is expected now and then
(a restart, a fail-over, SQLite's write lock held past its busy timeout) and is one warning
line; anything else is a bug to fix and is logged with its traceback."""

from __future__ import annotations

import logging

from sog_api.db.errors import is_unavailable

log = logging.getLogger("sog_api.worker")


def log_failure(event: str, exc: BaseException, **fields: object) -> None:
    """Log ``event`` for ``exc``: a warning without traceback when the database is away."""
    names = "".join(f" {name}=%s" for name in fields)  # each value an argument of its own,
    values = tuple(fields.values())  # so that the log quotes values, not the whole context
    if is_unavailable(exc):
        log.warning(f"%s database_unavailable{names} error=%s", event, *values,
                    type(exc).__name__)  # fmt: skip
    else:
        log.error(f"%s{names}", event, *values, exc_info=exc)
