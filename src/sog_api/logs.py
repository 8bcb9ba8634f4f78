"""Log output: one line per event, as text for a terminal or JSON for a log collector.

The code logs through the standard library (``log.info("orbit_booted orbit_id=%s", ...)``);
structlog's formatter renders every record, including uvicorn's and alembic's, the same way.
Control characters in messages (a path with an encoded newline, say) cannot forge extra lines:
the text renderer escapes them and JSON encodes them. Nor can a value forge extra fields: in
our own lines (loggers ``sog_api.*``) each text argument that holds a space, ``=``, a quote or
a character that is not printable is written quoted, as logfmt has it (``path="/a b=c"``).
Tracebacks never show local variables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import Any

import structlog

from sog_api.settings import Settings


def log_value(value: object) -> object:
    """``value`` as one unambiguous logfmt value: quoted (JSON string escapes) when its text
    holds a space, ``=``, a double quote or a character that is not printable."""
    if isinstance(value, int | float):
        return value  # keeps %d and %.1f working
    text = str(value)
    if text.isprintable() and not any(c in text for c in ' ="'):
        return value
    quoted = json.dumps(text, ensure_ascii=False)  # escapes quotes, backslashes, C0 controls
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in quoted)  # "\u00a0"


def _ours(logger_name: str) -> bool:
    return logger_name == "sog_api" or logger_name.startswith("sog_api.")


def _quote_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Render our own records again with each argument passed through ``log_value``."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if args and isinstance(args, tuple) and record and _ours(record.name):
        with contextlib.suppress(TypeError, ValueError):  # else keep logging's own message
            event["event"] = str(record.msg) % tuple(log_value(a) for a in args)
    return event


def _escape_controls(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    message = event.get("event")
    if isinstance(message, str) and not message.isprintable():
        event["event"] = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return event


class _StderrHandler(logging.StreamHandler):
    """Writes each record to the standard error of the moment, even one replaced since start."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(settings: Settings) -> None:
    """Send every logger's records to standard error in the format the settings ask for."""
    shared: list[Any] = [
        _quote_values,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if settings.log_json:
        renderer: Any = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # plain tracebacks: the default (rich, with every frame's local variables) writes
        # settings, keys and connection passwords into the log, and takes seconds to render,
        # during which the event loop serves nobody
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        shared.append(_escape_controls)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        pass_foreign_args=True,  # for _quote_values, which takes them out again
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
