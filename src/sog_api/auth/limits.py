"""Request limits: long URLs (414), large bodies (413) and line-feed paths are refused early."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sog_api.errors import problem_response


class _BodyTooLarge(Exception):
    pass


async def send_problem(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
    headers: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Answer from a middleware with the problem envelope (request id included)."""
    response = problem_response(Request(scope), status, code, detail, headers=headers)
    await response(scope, receive, send)


class RequestLimits:
    """Refuse URLs longer than ``max_url_length``, paths ending in a line feed (404) and bodies
    over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_url_length: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_length

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
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the body as it streams in (a chunked body declares no length)."""
        received, started = 0, False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (
            f"The request body is larger than {self.max_body} bytes;"
            " parameters travel in the query string."
        )
        await send_problem(scope, receive, send, 413, "payload_too_large", detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
