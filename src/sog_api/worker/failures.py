"""How the worker's loops report a failure: the database being away is expected now and then
(a restart, a fail-over, SQLite's write lock held past its busy timeout) and is one warning
line; anything else is a bug to fix and is logged with its traceback."""

from __future__ import annotations

import logging

from sog_api.db.errors import is_unavailable

log = logging.getLogger("sog_api.worker")


def log_failure(event: str, exc: BaseException, **fields: object) -> None:
    """Log ``event`` for ``exc``: a warning without traceback when the database is away."""
    context = "".join(f" {name}={value}" for name, value in fields.items())
    if is_unavailable(exc):
        log.warning("%s database_unavailable%s error=%s", event, context, type(exc).__name__)
    else:
        log.error("%s%s", event, context, exc_info=exc)
