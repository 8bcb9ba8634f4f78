"""Every route but the public ones needs an active API key, sent as Token or Bearer."""

from __future__ import annotations

import logging
from collections import defaultdict

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from sog_api.auth.keys import revoke_key
from sog_api.auth.setup import public_paths
from sog_api.deps import get_caller
from sog_api.errors import Unauthorized
from sog_api.main import create_app
from sog_api.projects.models import ApiKey
from sog_api.settings import Settings
from tests.auth.conftest import MakeClient, MakeKey, assert_problem
from tests.auth.routes import fill, route_templates
from tests.conftest import TEST_API_KEY

PUBLIC = {
    "/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
}  # fmt: skip


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the app has, path parameters filled with 1."""
    return [(m, fill(t, defaultdict(lambda: 1))) for m, t in route_templates(app)]


def is_public(path: str) -> bool:
    return (path.rstrip("/") or "/") in PUBLIC


# Each test refuses every route in turn, from one address: more refusals than the default
# SOG_AUTH_FAILURE_LIMIT_PER_MINUTE allows (tests/auth/test_limits.py tests that limit).
@pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit_per_minute": 0}])
class TestEveryRoute:
    def test_public_paths_are_exactly_the_probes_and_docs(self, app: FastAPI) -> None:
        assert public_paths(app) == PUBLIC

    async def test_each_protected_route_refuses_a_missing_key(
        self, app: FastAPI, make_client: MakeClient
    ) -> None:
        anonymous = await make_client()
        protected = [(m, p) for m, p in every_route(app) if not is_public(p)]
        assert len(protected) > 20  # the orbit, catalogue, operation and volume routes
        for method, path in protected:
            response = await anonymous.request(method, path)
            body = assert_problem(response, 401, "unauthorized")
            assert "Token" in response.headers["www-authenticate"], (method, path)
            assert "Authorization: Token <key>" in body["detail"]

    async def test_each_protected_route_refuses_a_bad_key(
        self, app: FastAPI, make_client: MakeClient
    ) -> None:
        clients = [
            await make_client("sog_not-a-real-key-but-long-enough-to-look-real"),
            await make_client(TEST_API_KEY, scheme="Basic"),
            await make_client(TEST_API_KEY + "x"),
            await make_client(""),
        ]
        for index, (method, path) in enumerate(every_route(app)):
            if is_public(path):
                continue
            response = await clients[index % len(clients)].request(method, path)
            assert_problem(response, 401, "unauthorized")
            assert TEST_API_KEY not in response.text

    async def test_public_routes_answer_without_a_key(
        self, app: FastAPI, make_client: MakeClient
    ) -> None:
        anonymous = await make_client()
        public = [(m, p) for m, p in every_route(app) if is_public(p)]
        assert {p.rstrip("/") for _, p in public} == PUBLIC
        for method, path in public:
            response = await anonymous.request(method, path)
            assert response.status_code == 200, (method, path, response.text)
            assert "ratelimit-limit" not in response.headers


class TestSchemes:
    @pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "BEARER"])
    async def test_token_and_bearer_both_work(self, make_client: MakeClient, scheme: str) -> None:
        response = await (await make_client(TEST_API_KEY, scheme=scheme)).get("/vms/")
        assert response.status_code == 200, response.text

    async def test_each_project_key_works(self, make_key: MakeKey, make_client: MakeClient) -> None:
        key = await make_key("acme")
        assert key.startswith("sog_") and len(key) >= 40
        assert (await (await make_client(key)).get("/vms/")).status_code == 200

    async def test_revoked_key_stops_at_once(
        self, app: FastAPI, make_key: MakeKey, make_client: MakeClient
    ) -> None:
        key = await make_key("acme")
        client = await make_client(key)
        assert (await client.get("/vms/")).status_code == 200
        async with app.state.sessionmaker.begin() as session:
            key_id = await session.scalar(ApiKey.__table__.select().with_only_columns(
                ApiKey.id).where(ApiKey.prefix == key[:12]))  # fmt: skip
            assert await revoke_key(session, key_id) is not None
        body = assert_problem(await client.get("/vms/"), 401, "unauthorized")
        assert "revoked" in body["detail"]


class TestOpenApi:
    def test_document_shows_both_schemes_and_public_exceptions(self, app: FastAPI) -> None:
        document = app.openapi()
        schemes = document["components"]["securitySchemes"]
        assert schemes["TokenAuth"] == {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": schemes["TokenAuth"]["description"],
        }  # fmt: skip
        assert schemes["BearerAuth"]["scheme"] == "bearer"
        assert document["security"] == [{"TokenAuth": []}, {"BearerAuth": []}]
        for path, item in document["paths"].items():
            for operation in item.values():
                if is_public(path):
                    assert operation["security"] == [], path
                else:
                    assert "security" not in operation, path
                    assert {"401", "429"} <= set(operation["responses"]), path


class TestFailClosed:
    async def test_get_caller_refuses_without_the_middleware(self) -> None:
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
        with pytest.raises(Unauthorized):
            await get_caller(request)


class TestAuthDisabled:
    @pytest.mark.parametrize(
        "settings_overrides", [{"auth": "disabled", "bootstrap_api_key": None}]
    )
    async def test_everything_acts_as_the_default_project(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="sog_api.auth")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as anonymous:
                assert (await anonymous.get("/vms/")).status_code == 200
        assert "AUTHENTICATION IS DISABLED" in caplog.text
