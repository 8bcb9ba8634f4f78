"""Settings that refuse to be unsafe, and the keys that exist after start."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from sog_api.auth.keys import revoke_key
from sog_api.main import create_app
from sog_api.settings import DEV_SECRET_KEY, Settings
from tests.conftest import TEST_API_KEY, db_rows, make_settings

STRONG = secrets.token_urlsafe(32)


class TestProductionSettings:
    def test_refuses_auth_disabled(self) -> None:
        with pytest.raises(ValidationError, match="SOG_ENV=production refuses SOG_AUTH=disabled"):
            Settings(env="production", auth="disabled", secret_key=STRONG)

    @pytest.mark.parametrize("secret_key", [DEV_SECRET_KEY, "short"])
    def test_refuses_the_default_or_a_weak_secret_key(self, secret_key: str) -> None:
        with pytest.raises(ValidationError, match="SOG_SECRET_KEY"):
            Settings(env="production", secret_key=secret_key)

    def test_refuses_from_the_environment_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOG_ENV", "production")
        with pytest.raises(ValidationError, match="SOG_SECRET_KEY"):
            Settings()

    def test_accepts_a_safe_configuration(self) -> None:
        settings = Settings(env="production", secret_key=STRONG)
        assert settings.auth == "enabled"

    def test_development_allows_both(self) -> None:
        assert Settings(auth="disabled").secret_key == DEV_SECRET_KEY

    @pytest.mark.parametrize("key", ["short", "x" * 257])
    def test_bootstrap_key_must_be_long(self, key: str) -> None:
        with pytest.raises(ValidationError, match="SOG_BOOTSTRAP_API_KEY"):
            Settings(bootstrap_api_key=key)

    @pytest.mark.parametrize(
        "key",
        [
            " " + STRONG, STRONG + " ", STRONG[:20] + " " + STRONG[20:], STRONG + "\t",
            STRONG + "\n", "\u00a0" + STRONG, STRONG + "\x7f", STRONG + "\u00e9",
        ],
        ids=["leading space", "trailing space", "space", "tab", "newline", "nbsp", "DEL", "e-acute"],
    )  # fmt: skip
    def test_bootstrap_key_must_be_printable_ascii_without_spaces(self, key: str) -> None:
        with pytest.raises(ValidationError, match="SOG_BOOTSTRAP_API_KEY must be printable") as e:
            Settings(bootstrap_api_key=key)
        assert STRONG not in str(e.value)

    @pytest.mark.parametrize(
        ("overrides", "secret"),
        [
            ({"bootstrap_api_key": "sog_" + "x " * 20}, "x x x"),
            ({"secret_key": "s3cret-value", "env": "production"}, "s3cret-value"),
            ({"database_url": "mysql://sog:hunter2@db/sog"}, "hunter2"),
        ],
    )
    def test_an_invalid_setting_s_error_never_shows_its_value(
        self, overrides: dict[str, str], secret: str
    ) -> None:
        with pytest.raises(ValidationError) as e:
            Settings(**overrides)  # type: ignore[arg-type]
        assert secret not in str(e.value)  # what a traceback (uvicorn --factory) would show

    def test_bootstrap_key_is_not_shown_in_the_settings_repr(self) -> None:
        assert TEST_API_KEY not in repr(Settings(bootstrap_api_key=TEST_API_KEY))


async def lists_orbits_with(app: FastAPI, key: str) -> int:
    """The status of GET /vms/ with this key."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Token {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
        return (await http.get("/vms/")).status_code


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app between start and shutdown."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


class TestStartupKeys:
    async def test_development_makes_one_key_and_prints_it_once(
        self, database_url: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        settings = make_settings(database_url, bootstrap_api_key=None)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            printed = capsys.readouterr().err
            key = re.search(r"shown this once\): (\S+)", printed).group(1)  # type: ignore[union-attr]
            assert f"curl -H 'Authorization: Token {key}' http://127.0.0.1:8001/vms/" in printed
            assert "api_key_created key_id=1" in caplog.text
            assert key not in caplog.text  # on the terminal only, never in the logs
            assert await lists_orbits_with(app, key) == 200
        caplog.clear()
        async with running(settings) as again:  # a restart: nothing new is made or shown
            assert len(await db_rows(again, "SELECT id FROM api_keys")) == 1
        printed = capsys.readouterr().err
        assert key not in printed and "keys create --project default" in printed
        assert "api_key_created" not in caplog.text

    async def test_a_bootstrap_key_of_any_printable_ascii_authenticates(
        self, database_url: str
    ) -> None:
        key = "sog_!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + STRONG
        settings = make_settings(database_url, bootstrap_api_key=key)
        async with running(settings) as app:
            assert await lists_orbits_with(app, key) == 200

    async def test_production_makes_no_key_by_itself(self, database_url: str) -> None:
        settings = make_settings(
            database_url, env="production", secret_key=STRONG, bootstrap_api_key=None
        )
        async with running(settings) as app:
            assert await db_rows(app, "SELECT id FROM api_keys") == []

    async def test_bootstrap_key_is_stored_once_for_the_default_project(
        self, database_url: str
    ) -> None:
        settings = make_settings(database_url)
        for _ in range(2):
            async with running(settings) as app:
                rows = await db_rows(app, "SELECT project_id, prefix, label FROM api_keys")
        assert rows == [{"project_id": 1, "prefix": TEST_API_KEY[:12], "label": "bootstrap"}]

    async def test_a_revoked_bootstrap_key_stays_revoked(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings = make_settings(database_url)
        async with running(settings) as app, app.state.sessionmaker.begin() as session:
            assert await revoke_key(session, 1) is not None
        caplog.set_level(logging.WARNING, logger="sog_api.auth")
        async with running(settings) as app:
            [row] = await db_rows(app, "SELECT revoked_at FROM api_keys")
        assert row["revoked_at"] is not None
        assert "bootstrap_api_key_revoked" in caplog.text
