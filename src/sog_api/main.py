"""The application: create_app(settings) wires routers, errors, the database, cloud and worker."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sog_api.auth.setup import install_auth, start_auth
from sog_api.catalog.loader import load_catalog, read_catalog
from sog_api.catalog.router import router as catalog_router
from sog_api.cloud.factory import build_cloud
from sog_api.db import migrate
from sog_api.db.engine import create_engine, create_read_engine, create_sessionmaker
from sog_api.errors import (
    ServiceUnavailable,
    document_errors,
    install_error_handlers,
    responses,
)
from sog_api.http import RAW_QUERY, HeadAsGet, SlashRouter
from sog_api.metrics import Metrics, metrics_router
from sog_api.operations.router import router as operations_router
from sog_api.orbits.router import router as orbits_router
from sog_api.settings import Settings
from sog_api.volumes.router import router as volumes_router
from sog_api.worker.runner import Worker

log = logging.getLogger("sog_api")
access_log = logging.getLogger("sog_api.access")

# An X-Request-ID is kept when it is 1-64 of these characters (a UUID, a trace id); otherwise
# the request gets a new one, so that it can stand as it is in a header, a log line or a URL.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+-]{1,64}")
CLIENT_CLOSED_REQUEST = 499  # logged and counted when no answer was sent (nginx's convention)
# A query parameter whose name holds one of these (letters only, any case or spelling: admin_pwd,
# ADMIN-PWD, admin_pwd[], admin%5Fpwd, api.key) has its value written as *** in the logs.
SECRET_WORDS = ("pw", "pass", "secret", "token", "key", "auth")

READY_QUERY = text("SELECT id FROM projects LIMIT 1")
"""What /readyz reads: a row of a real table (``SELECT 1`` reads no page of an SQLite file)."""
READY_TIMEOUT = 3.0

DESCRIPTION = """
Self-service virtual machines ("orbits") and block volumes on an OpenStack cloud.

Every parameter travels in the query string. Long changes answer `202 Accepted` with the
resource in its transitional status and a `Location` header naming the operation to follow at
`/operations/{id}`. Errors are `application/problem+json` documents with a stable `code`.
"""


def is_secret_name(name: str) -> bool:
    """Whether a query parameter's name (percent-encoded, as sent) looks like a secret's."""
    text = unicodedata.normalize("NFKC", unquote_plus(name)).casefold()  # fullwidth letters too
    letters = "".join(c for c in text if "a" <= c <= "z")
    return any(word in letters for word in SECRET_WORDS)


def redact_query(query: str) -> str:
    """The query string with the values of secret parameters replaced by ``***``.

    A pair without ``=`` whose text looks like a secret's goes whole (``admin_pwd%3Ds3cret``).
    """
    parts = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        if is_secret_name(name):
            pair = f"{name}=***" if sep else "***"
        parts.append(pair)
    return "&".join(parts)


class RequestContext:
    """Give each request an id (X-Request-ID) and log one line for it, secrets redacted.

    It also keeps the raw query string for the query models (see ``sog_api.http.QueryModel``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if WELL_FORMED_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        token = RAW_QUERY.set(scope.get("query_string", b""))
        try:
            await self.app(scope, receive, send_with_id)
            if status is None:  # the client left before its request was whole: no answer
                status = CLIENT_CLOSED_REQUEST
        finally:
            status = status or 500  # the app raised: the server answers 500
            RAW_QUERY.reset(token)
            elapsed = time.perf_counter() - started
            scope["app"].state.metrics.observe(scope, status, elapsed)
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            access_log.info(
                "request method=%s path=%s query=%s status=%s ms=%.1f request_id=%s",
                scope["method"], scope["path"], query, status, elapsed * 1000, request_id,
            )  # fmt: skip


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.migrate_on_start:
        await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    app.state.engine, app.state.sessionmaker = engine, sessions
    app.state.read_engine = create_read_engine(settings, engine)
    app.state.read_sessionmaker = create_sessionmaker(app.state.read_engine)
    if settings.load_catalog_on_start:
        catalog = read_catalog(settings.catalog_file)
        async with sessions.begin() as session:
            await load_catalog(session, catalog)
    await start_auth(settings, sessions)
    cloud = build_cloud(settings, sessions)
    await cloud.start()
    app.state.cloud = cloud
    app.state.wake = asyncio.Event()
    worker = None
    if settings.run_worker:
        worker = Worker(settings, sessions, cloud, app.state.wake)
        worker.start()
    app.state.worker = worker
    log.info("started cloud=%s worker=%s db=%s", cloud.name, bool(worker), engine.dialect.name)
    try:
        yield
    finally:
        if worker is not None:
            await worker.stop()
        await cloud.close()
        await app.state.read_engine.dispose()
        await engine.dispose()


async def _read_one_row(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(READY_QUERY)


def _health_router() -> SlashRouter:
    router = SlashRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (for liveness probes)."""
        return {"status": "ok"}

    @router.get("/readyz", responses=responses(503))
    async def readyz(request: Request) -> dict[str, str]:
        """The database answers reads (for readiness probes and load balancers)."""
        try:  # a read, as GETs make it: on SQLite it does not wait for a writer's lock
            await asyncio.wait_for(_read_one_row(request.app.state.read_engine), READY_TIMEOUT)
        except Exception as exc:
            raise ServiceUnavailable("The database is unavailable.") from exc
        return {"status": "ready"}

    return router


def _operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id is its handler's name (``create_orbit``), not a mangle."""
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (read from the environment when omitted)."""
    settings = settings or Settings()
    app = FastAPI(
        title="System on Grid API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        responses=responses(503),
        swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    for router in (orbits_router, volumes_router, catalog_router, operations_router,
                   _health_router(), metrics_router()):  # fmt: skip
        app.include_router(router)
    install_auth(app)  # after the routers, inside RequestContext
    document_errors(app)
    app.add_middleware(HeadAsGet)  # inside RequestContext, which logs the HEAD as it came
    app.add_middleware(RequestContext)
    return app


def openapi_json(app: FastAPI) -> str:
    """The app's OpenAPI document as committed in openapi/openapi.json."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
