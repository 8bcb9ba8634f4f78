"""Passwords and API keys never appear in clear: not in the database, the logs or responses."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from sog_api.auth.keys import hash_key
from sog_api.db.models import Base
from sog_api.main import redact_query
from sog_api.secrets import SecretBox
from sog_api.settings import Settings
from tests.auth.conftest import MakeClient, MakeKey, assert_problem
from tests.conftest import SSH_KEY, TEST_API_KEY, db_rows
from tests.helpers import create_orbit, create_params, wait_status

PASSWORD = "Pw-7f3a9c-never-stored-in-clear"
# Names a client may give a secret (the API itself reads only admin_pwd, however encoded).
SPELLINGS = [
    "admin_pwd[]", "admin_pwd%00", "ADMIN_PWD", "+admin_pwd", "admin_pwd+", "%61dmin_pwd",
    "Admin-Pwd", "%EF%BD%81dmin_pwd", "admin_pw", "adminPassword", "x-api-key", "auth_token",
    "client.secret", "%20admin%20pwd%20",
]  # fmt: skip


async def every_stored_text(app: FastAPI) -> list[tuple[str, str, str]]:
    """(table, column, text) of every value of every table, as the database returns it."""
    found = []
    async with app.state.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                found += [(table.name, col, str(value)) for col, value in row.items()]
    return found


def assert_absent(secrets: list[str], texts: list[tuple[str, str, str]]) -> None:
    for table, column, text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret is stored in clear in {table}.{column}"


class TestNothingInClear:
    async def test_database_and_logs_after_creates(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        make_key: MakeKey,
        make_client: MakeClient,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and parameters
        other_key = await make_key("other")
        other = await make_client(other_key, scheme="Bearer")
        first = await create_orbit(client, admin_pwd=PASSWORD)
        second = await create_orbit(other, admin_pwd=PASSWORD, vm_count=2)
        assert first["admin_pwd"] is None and all(o["admin_pwd"] is None for o in second)
        waits = [(first["id"], client)] + [(o["id"], other) for o in second]
        for orbit_id, http in waits:
            detail = await wait_status(http, orbit_id, "RUNNING")
            assert detail["admin_pwd"] is None
        secrets = [PASSWORD, TEST_API_KEY, other_key]
        assert_absent(secrets, await every_stored_text(app))
        # Every server-side record; the test's own HTTP client (httpx) logs the URLs it sends.
        server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in server)
        for secret in secrets:
            assert secret not in logged
        assert "admin_pwd=***" in logged
        assert "INSERT INTO operations" in logged  # the statement log was captured
        stored = await db_rows(app, "SELECT key_hash FROM api_keys ORDER BY id")
        assert {r["key_hash"] for r in stored} == {hash_key(TEST_API_KEY), hash_key(other_key)}
        # The worker erased the sealed password once the cloud had it.
        assert await db_rows(app, "SELECT id FROM operations WHERE secret IS NOT NULL") == []

    @pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])
    async def test_the_password_waits_sealed_for_the_worker(
        self, app: FastAPI, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        orbit = await create_orbit(client, admin_pwd=PASSWORD)
        [row] = await db_rows(
            app, "SELECT secret FROM operations WHERE id = :id", id=orbit["operation_id"]
        )
        assert PASSWORD not in row["secret"]
        assert SecretBox(settings.secret_key).open(row["secret"]) == PASSWORD
        assert_absent([PASSWORD], await every_stored_text(app))


class TestResponsesDoNotEcho:
    @pytest.mark.parametrize(
        "bad",
        [
            {"admin_pwd": PASSWORD * 10},  # too long: the password itself is invalid
            {"admin_pwd": PASSWORD, "vm_count": "many"},
            {"admin_pwd": PASSWORD, "ssh_key_value": "not a key " + PASSWORD},
            {"admin_pwd": PASSWORD, "delete_root": "false/"},
        ],
    )
    async def test_validation_errors(self, client: httpx.AsyncClient, bad: dict[str, Any]) -> None:
        response = await client.post("/vms/create/", params=create_params(**bad))
        body = assert_problem(response, 422, "invalid_parameter")
        assert PASSWORD not in response.text
        assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])

    async def test_a_refused_key_is_not_echoed(self, make_client: MakeClient) -> None:
        wrong = "sog_wrong-" + PASSWORD
        response = await (await make_client(wrong)).get("/vms/")
        assert_problem(response, 401, "unauthorized")
        assert wrong not in response.text and PASSWORD not in str(response.headers)


class TestRedaction:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("vm_name=a&admin_pwd=s3cret&x=1", "vm_name=a&admin_pwd=***&x=1"),
            ("admin%5Fpwd=s3cret", "admin%5Fpwd=***"),
            ("ADMIN_PWD=s3cret&api_key=k&token=t", "ADMIN_PWD=***&api_key=***&token=***"),
            ("password=p&vm_name=admin_pwd", "password=***&vm_name=admin_pwd"),
            ("admin_pwd%3Ds3cret&x=1", "***&x=1"),  # no "=": the whole pair goes
        ],
    )
    def test_secret_query_parameters_are_redacted(self, query: str, expected: str) -> None:
        assert redact_query(query) == expected

    @pytest.mark.parametrize("name", SPELLINGS)
    def test_every_spelling_of_a_secret_name_is_redacted(self, name: str) -> None:
        assert redact_query(f"vm_name=a&{name}=s3cret&x=1") == f"vm_name=a&{name}=***&x=1"

    def test_the_other_parameters_are_logged_as_sent(self) -> None:
        query = urlencode({k: v for k, v in create_params().items() if k != "admin_pwd"})
        kept = query.replace(quote_plus(SSH_KEY), "***")  # "key" is in its name
        assert redact_query(query) == kept and "vm_name=web" in kept

    async def test_no_spelling_of_a_password_reaches_the_logs(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        base = urlencode({k: v for k, v in create_params().items() if k != "admin_pwd"})
        for n, name in enumerate(SPELLINGS):
            await client.post(f"/vms/create/?{base}&{name}={PASSWORD}{n}")
        await client.post(f"/vms/create/?{base}&admin_pwd%3D{PASSWORD}x")
        server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        assert sum(r.name == "sog_api.access" for r in server) == len(SPELLINGS) + 1
        assert PASSWORD not in "\n".join(f"{r.getMessage()} {r.args!r}" for r in server)
