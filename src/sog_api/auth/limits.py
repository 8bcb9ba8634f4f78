"""Request limits: long URLs (414), large bodies (413), bodies that do not come (408) and
line-feed paths are refused early."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sog_api.errors import problem_response


async def send_problem(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
    headers: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Answer from a middleware with the problem envelope (request id included)."""
    response = problem_response(Request(scope), status, code, detail, headers=headers)
    await response(scope, receive, send)


class RequestLimits:
    """Refuse URLs longer than ``max_url_length``, paths ending in a line feed (404) and bodies
    over ``max_body_bytes``, whether they declare a length or come in chunks; a body not
    complete within ``body_timeout`` seconds is a 408 (a client cannot hold a request open)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_url_length: int, body_timeout: float = 30.0
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_length
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if len(raw_path) + len(scope.get("query_string", b"")) > self.max_url:
            detail = f"The URL is longer than {self.max_url} bytes."
            await send_problem(scope, receive, send, 414, "uri_too_long", detail)
            return
        if scope["path"].endswith("\n"):
            # The routers' patterns end in "$", which also matches before a final line feed:
            # "/volume/%0A" would list volumes and "/vms/vm_details/1/%0A" show orbit 1.
            detail = "No route matches a path that ends in a line feed."
            await send_problem(scope, receive, send, 404, "not_found", detail)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._too_large(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read_body(receive)
        except TimeoutError:
            detail = f"The request body did not arrive within {self.body_timeout:g} seconds."
            await send_problem(scope, receive, send, 408, "request_timeout", detail,
                               {"Connection": "close"})  # fmt: skip
            return
        if body is None:
            return  # the client went away before its request was complete: nothing to do
        if len(body) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, read before any handler runs, or None if the client disconnected.

        The handlers never read the body (every parameter is in the query string), so a limit
        counted as they read would never be reached: a chunked body, which declares no length,
        would be acted on whatever its size. Reading stops one byte past the limit.
        """
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            if size > self.max_body or not message.get("more_body", False):
                return b"".join(parts)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (
            f"The request body is larger than {self.max_body} bytes;"
            " parameters travel in the query string."
        )
        await send_problem(scope, receive, send, 413, "payload_too_large", detail)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
