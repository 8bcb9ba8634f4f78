"""Wire authentication into the app, and make sure the right keys exist at start."""

from __future__ import annotations

import logging
import os
import sys

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.auth import keys
from sog_api.auth.limits import RequestLimits
from sog_api.auth.middleware import AuthMiddleware
from sog_api.auth.openapi import document_security
from sog_api.auth.ratelimit import RateLimiter
from sog_api.http import document_headers
from sog_api.projects.models import DEFAULT_PROJECT_ID, Project
from sog_api.settings import Settings

log = logging.getLogger("sog_api.auth")

ALWAYS_PUBLIC = ("/healthz", "/readyz", "/metrics")


def public_paths(app: FastAPI) -> frozenset[str]:
    """Paths answered without a key: the probes, metrics and the API documentation."""
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url, app.openapi_url)
    return frozenset(p.rstrip("/") or "/" for p in (*ALWAYS_PUBLIC, *docs) if p)


def install_auth(app: FastAPI) -> None:
    """Add the size limits and the authentication middleware; document the key schemes.

    Call after the routers are included and before ``RequestContext`` is added, so the request
    id and the access log wrap these refusals too.
    """
    settings: Settings = app.state.settings
    limiter = RateLimiter(settings.rate_limit_per_minute)
    failures = RateLimiter(settings.auth_failure_limit_per_minute)
    app.state.rate_limiter, app.state.auth_failure_limiter = limiter, failures
    public = public_paths(app)
    app.add_middleware(
        AuthMiddleware, settings=settings, limiter=limiter, failures=failures,
        public_paths=public,
    )  # fmt: skip
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_url_length=settings.max_url_length,
        body_timeout=settings.body_timeout,
    )
    document_security(app, public)
    document_headers(app, public)  # after document_security, which adds the 401s and 429s


async def start_auth(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Store SOG_BOOTSTRAP_API_KEY, or in development make a first key; warn when auth is off."""
    if settings.auth == "disabled":
        log.warning(
            "AUTHENTICATION IS DISABLED (SOG_AUTH=disabled): anyone who can reach this port acts"
            " as the default project. Use it only for local experiments."
        )
        return
    async with sessions.begin() as session:
        # Lock the default project so that replicas starting together make one key, not two.
        await session.execute(
            select(Project.id)
            .where(Project.id == DEFAULT_PROJECT_ID)
            .with_for_update(key_share=True)
        )
        if settings.bootstrap_api_key is not None:
            key = settings.bootstrap_api_key.get_secret_value()
            if await keys.ensure_key(session, DEFAULT_PROJECT_ID, key, label="bootstrap"):
                log.info("bootstrap_api_key_stored project_id=%s", DEFAULT_PROJECT_ID)
            return
        if settings.env != "development":
            return
        if await keys.has_active_key(session, DEFAULT_PROJECT_ID):
            _tell(
                "\n    The default project has an API key (it was shown once, when it was made)."
                f"\n    Another one: {_command()} keys create --project default\n"
            )
            return
        new = await keys.create_key(session, DEFAULT_PROJECT_ID, label="first development key")
    log.info("api_key_created key_id=%s project=default", new.id)
    _announce_development_key(settings, new)


def _command() -> str:
    """How the operator started this program (``.venv/bin/sog-api`` under ``make run``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "sog-api":
        return os.path.relpath(argv0) if os.path.isabs(argv0) else argv0
    return "sog-api"


def _tell(text: str) -> None:
    """Write to the operator's terminal, not to the logs (which may be shipped elsewhere)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _announce_development_key(settings: Settings, new: keys.NewKey) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    _tell(
        f"\n    API key for the default project (development only; shown this once): {new.key}\n"
        f"\n    Try it:  curl -H 'Authorization: Token {new.key}' http://{host}:{settings.port}/vms/\n"
        f"\n    More keys: {_command()} keys create --project NAME; list: {_command()} keys list\n"
    )
