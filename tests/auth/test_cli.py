"""``sog-api keys`` and ``sog-api projects`` against a migrated database."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from sog_api.auth.keys import Principal, authenticate
from sog_api.cli import app
from sog_api.db.engine import create_engine, create_sessionmaker
from sog_api.settings import Settings

runner = CliRunner()


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOG_DATABASE_URL", database_url)
    return database_url


def invoke(*args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout, result.stderr


def authenticate_with(database_url: str, key: str) -> Principal | None:
    async def check() -> Principal | None:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with create_sessionmaker(engine)() as session:
                return await authenticate(session, key)
        finally:
            await engine.dispose()

    return asyncio.run(check())


class TestKeys:
    def test_create_list_revoke(self, cli_db: str) -> None:
        out, err = invoke("keys", "create", "--project", "acme", "--label", "ci")
        key = out.strip()
        assert key.startswith("sog_") and len(key) >= 40 and "\n" not in key
        assert "created project 'acme'" in err and "shown only this once" in err
        principal = authenticate_with(cli_db, key)
        assert principal is not None and principal.project_id > 1

        out, _ = invoke("keys", "list")
        assert key not in out
        lines = out.splitlines()
        assert lines[0].split("\t") == ["ID", "PREFIX", "PROJECT", "CREATED", "REVOKED", "LABEL"]
        [row] = [line.split("\t") for line in lines[1:] if "\tacme\t" in line]
        assert row[1] == key[:12] and row[4] == "-" and row[5] == "ci"

        out, _ = invoke("keys", "revoke", row[0])
        assert f"revoked API key id={row[0]}" in out
        assert authenticate_with(cli_db, key) is None
        out, _ = invoke("keys", "list", "--project", "acme")
        [listed] = out.splitlines()[1:]
        assert listed.split("\t")[4].endswith("Z")
        out, _ = invoke("keys", "revoke", row[0])
        assert "already revoked" in out

    def test_a_second_key_reuses_the_project(self, cli_db: str) -> None:
        first, _ = invoke("keys", "create", "--project", "acme")
        second, err = invoke("keys", "create", "-p", "acme")
        assert first != second and "created project" not in err
        principals = [authenticate_with(cli_db, k.strip()) for k in (first, second)]
        assert principals[0] and principals[1]
        assert principals[0].project_id == principals[1].project_id

    def test_refusals(self, cli_db: str) -> None:
        _, err = invoke("keys", "revoke", "999", code=1)
        assert "no API key with id 999" in err
        _, err = invoke("keys", "create", "--project", "bad name!", code=1)
        assert "project name" in err


class TestProjects:
    def test_quotas(self, cli_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOG_DEFAULT_QUOTA_ORBITS", "5")
        out, _ = invoke("projects", "create", "acme")
        assert "acme\torbits=5, vcpus=unlimited, ram_gb=unlimited, volume_gb=unlimited" in out
        out, _ = invoke(
            "projects", "set-quota", "acme", "--vcpus", "8", "--orbits", "unlimited",
            "--volume-gb", "100",
        )  # fmt: skip
        assert "orbits=unlimited, vcpus=8, ram_gb=unlimited, volume_gb=100" in out
        out, _ = invoke("projects", "list")
        assert out.splitlines()[0].startswith("1\tdefault\torbits=unlimited")
        invoke("projects", "set-quota", "nobody", "--vcpus", "1", code=1)
        invoke("projects", "set-quota", "acme", "--vcpus", "-1", code=2)
