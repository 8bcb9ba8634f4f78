"""The command line says in one line what an operator must fix, instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sog_api.cli import main


def run(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> int:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["sog-api", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return int(stopped.value.code or 0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SOG_DB_POOL_SIZE": "0"}, "sog-api: SOG_DB_POOL_SIZE: Input should be greater"),
        ({"SOG_DATABASE_URL": "mysql://x"}, "sog-api: SOG_DATABASE_URL: Value error, use sqlite"),
        ({"SOG_ENV": "production"}, "sog-api: settings: Value error, SOG_ENV=production needs"),
        (
            {"SOG_BOOTSTRAP_API_KEY": "sog_bootstrap key with spaces-0123456789"},
            "sog-api: SOG_BOOTSTRAP_API_KEY: Value error, SOG_BOOTSTRAP_API_KEY must be printable",
        ),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["migrate"], ["keys", "list"], ["keys", "create"], ["keys", "revoke", "1"],
        ["projects", "list"], ["projects", "create", "acme"], ["catalog", "check"],
    ],
    ids=" ".join,
)  # fmt: skip
def test_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    expected: str, command: list[str],
) -> None:  # fmt: skip
    assert run(monkeypatch, *command, **env) == 2
    out, err = capsys.readouterr()
    assert err.startswith(expected) and "Traceback" not in err and len(err.splitlines()) == 1
    assert out == ""
    assert all(value not in err for value in env.values() if len(value) > 12)  # no secrets


def test_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nowhere"
    assert run(monkeypatch, "migrate", SOG_DATABASE_URL=url) == 1
    err = capsys.readouterr().err
    assert err.startswith("sog-api: the database cannot be used:") and "Traceback" not in err
    assert "hunter2" not in err


def test_a_bad_catalogue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text("flavors = 3\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'sog.db'}"
    assert run(monkeypatch, "catalog", "load", str(bad), SOG_DATABASE_URL=url) == 2
    err = capsys.readouterr().err
    assert err.startswith("sog-api: the catalogue file is invalid:") and str(bad) in err
