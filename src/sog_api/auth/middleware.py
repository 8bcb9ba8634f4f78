"""The authentication middleware: every non-public request needs an active API key."""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sog_api.auth.keys import Principal, authenticate
from sog_api.auth.limits import send_problem
from sog_api.auth.ratelimit import RateLimiter
from sog_api.projects.models import DEFAULT_PROJECT_ID
from sog_api.settings import Settings

log = logging.getLogger("sog_api.auth")

SCHEMES = ("token", "bearer")
CHALLENGE = 'Token realm="sog-api", Bearer realm="sog-api"'
MISSING = (
    "Authentication required: send the header 'Authorization: Token <key>' (or 'Bearer <key>')."
)
INVALID = "The API key is invalid or has been revoked."
TOO_MANY_FAILURES = (
    "Too many refused authentications from this address: at most {limit} a minute."
    " Check the API key."
)


def route_path(scope: Scope) -> str:
    """The path the router matches (without the root path a proxy may add)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


def presented_key(scope: Scope) -> str | None:
    """The key of an ``Authorization: Token <key>`` or ``Bearer <key>`` header, if well formed."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").strip().partition(" ")
            key = key.strip()
            if scheme.lower() in SCHEMES and key and key.isprintable() and " " not in key:
                return key
            return None
    return None


class AuthMiddleware:
    """Authenticate, set ``state.project_id`` / ``state.api_key_id``, apply the rate limit.

    Refused authentications (no key, or one that is unknown or revoked) are limited per client
    address by ``failures``: once its allowance is spent, its refusals are 429s, which slows a
    key-guessing client down; a good key from the same address still works.
    """

    def __init__(
        self, app: ASGIApp, *, settings: Settings, limiter: RateLimiter,
        failures: RateLimiter, public_paths: Collection[str],
    ) -> None:  # fmt: skip
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.failures = failures
        self.public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or route_path(scope) in self.public:
            await self.app(scope, receive, send)
            return
        principal = await self._principal(scope, receive, send)
        if principal is None:
            return  # refused already
        state = scope.setdefault("state", {})
        state["project_id"], state["api_key_id"] = principal.project_id, principal.key_id
        if not self.limiter.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = self.limiter.hit(_bucket(scope, principal))
        if not decision.allowed:
            headers = {k.decode(): v.decode() for k, v in decision.headers()}
            detail = f"Too many requests: at most {decision.limit} a minute per API key."
            await send_problem(scope, receive, send, 429, "rate_limited", detail, headers)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(decision.headers())
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _principal(self, scope: Scope, receive: Receive, send: Send) -> Principal | None:
        """The caller, or None after refusing the request (401, or 503 when the db is down)."""
        if self.settings.auth == "disabled":
            return Principal(key_id=None, project_id=DEFAULT_PROJECT_ID)
        address = client_address(scope)
        key = presented_key(scope)
        if key is None:
            await self._refuse(scope, receive, send, MISSING, address)
            return None
        try:
            async with scope["app"].state.read_sessionmaker() as session:
                principal = await authenticate(session, key)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("auth_lookup_failed error=%s", type(exc).__name__)
            detail = "The database is unavailable; retry shortly."
            headers = {"Retry-After": "2"}
            await self._deny(scope, receive, send, 503, "service_unavailable", detail, headers)
            return None
        if principal is None:
            await self._refuse(scope, receive, send, INVALID, address)
        return principal

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, detail: str, address: str
    ) -> None:
        """401, or 429 once the address has spent its allowance of refusals (a good key from
        the same address, another client behind one proxy, is never held back by them)."""
        if self.failures.enabled:
            allowance = self.failures.hit(address)
            if not allowance.allowed:
                detail = TOO_MANY_FAILURES.format(limit=allowance.limit)
                headers = {"Retry-After": str(allowance.retry_after)}
                await self._deny(scope, receive, send, 429, "rate_limited", detail, headers)
                return
        headers = {"WWW-Authenticate": CHALLENGE}
        await self._deny(scope, receive, send, 401, "unauthorized", detail, headers)

    @staticmethod
    async def _deny(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
        headers: dict[str, str],
    ) -> None:  # fmt: skip
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(scope, receive, send, status, code, detail, headers)


def client_address(scope: Scope) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For behind a trusted proxy)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _bucket(scope: Scope, principal: Principal) -> str:
    if principal.key_id is not None:
        return f"key:{principal.key_id}"
    return f"client:{client_address(scope)}"
