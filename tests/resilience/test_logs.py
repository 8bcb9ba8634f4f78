"""A logged exception (a database that went away, say) shows where it happened, never the values
of local variables: those hold settings, keys and connection passwords."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from sog_api.logs import configure_logging
from sog_api.settings import Settings

PASSWORD = "pg-pass-0123456789"


def _connect(password: str) -> None:
    raise ConnectionRefusedError("[Errno 111] Connect call failed ('127.0.0.1', 5432)")


@pytest.mark.parametrize("log_json", [False, True], ids=["text", "json"])
def test_a_logged_exception_shows_no_local_variables(
    log_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings(log_json=log_json))
        try:
            _connect(PASSWORD)
        except ConnectionRefusedError:
            logging.getLogger("sog_api.errors").exception("database_error")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "database_error" in err and "ConnectionRefusedError" in err and "_connect" in err
    assert PASSWORD not in err


def test_records_follow_the_standard_error_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A handler bound to the stderr of its start writes into a closed file once that is replaced
    (a test's capture, a daemon's redirection); ours writes to the one in place now."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        configure_logging(Settings())
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("sog_api.test").warning("after_the_switch")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    out = second.getvalue()
    assert "Logging error" not in out
    assert "after_the_switch" in out and "sog_api.test" in out
