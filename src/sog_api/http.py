"""HTTP plumbing shared by every router: both slash forms, strict query types, JSON shapes."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus, unquote_to_bytes

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_DB_INT = 2_147_483_647

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
LINE_BREAKS = "\t\n\r"
"""The non-printable characters that free text (a description) may hold: tabs and line breaks."""
_DECIMAL = re.compile(r"-?[0-9]+")

RAW_QUERY: ContextVar[bytes] = ContextVar("raw_query", default=b"")
"""The current request's query string as it came (set by the request context middleware)."""


def _strict_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError("must be one of true, false, 1, 0, yes, no")


def _decimal(value: Any) -> Any:
    """Only ASCII decimal digits make an integer: not "1.0", " 1", "+1", "1_0" or "0x1"."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    return value


def refuse_nul(value: Any) -> Any:
    """Text may hold anything but NUL (PostgreSQL cannot store it, and no client means it)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _raw_values(query: bytes) -> dict[str, list[bytes]]:
    """Each parameter's values in a query string, percent-decoded to bytes (not yet text)."""
    values: dict[str, list[bytes]] = {}
    for pair in query.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        key = unquote_plus(name.decode("latin-1"))
        values.setdefault(key, []).append(unquote_to_bytes(value.replace(b"+", b" ")))
    return values


class QueryModel(BaseModel):
    """The base of every query-string model: each parameter it knows is given at most once,
    in UTF-8 and without NUL. Parameters it does not know are ignored, as the contract says.

    Starlette decodes the query string leniently (invalid UTF-8 becomes U+FFFD, and a repeated
    parameter silently keeps one value); the raw query string tells what was really sent.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _well_formed(cls, value: Any, info: ValidationInfo) -> Any:
        raw = _raw_values(RAW_QUERY.get()).get(info.field_name or "", [])
        if len(raw) > 1:
            raise ValueError("must be given once")
        if raw:
            try:
                raw[0].decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("must be valid UTF-8 text") from None
        return refuse_nul(value)


def refuse_unprintable(value: str, allowed: str = "") -> str:
    """Refuse every character Python does not call printable (``str.isprintable``), except
    those in ``allowed``: controls (Cc), format characters (Cf: zero-width spaces, bidi overrides
    and isolates, byte order marks), line and paragraph separators, spaces other than the ASCII
    space, surrogates, private-use and unassigned code points. Invisible or reordering text in
    a name misleads whoever reads it (``\u202egnp.exe`` shows as ``exe.png``)."""
    if value.isprintable():
        return value
    for char in value:
        if not char.isprintable() and char not in allowed:
            raise ValueError(f"must hold only printable characters, and U+{ord(char):04X} is not")
    return value


def _printable(value: str) -> str:
    refuse_unprintable(value)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _free_text(value: str) -> str:
    return refuse_unprintable(value, LINE_BREAKS)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


AnyCase = BeforeValidator(_upper)
"""For status filters: ``running`` is read as ``RUNNING``."""


QueryBool = Annotated[bool, BeforeValidator(_strict_bool)]
"""A boolean query parameter: true/false/1/0/yes/no, case-insensitive, nothing else."""

WholeNumber = Annotated[int, BeforeValidator(_decimal)]
"""An integer parameter written in decimal digits (an optional minus sign, nothing else)."""

Printable = Annotated[str, AfterValidator(_printable)]
"""A name: printable characters only (see ``refuse_unprintable``), not blank."""

FreeText = Annotated[str, AfterValidator(_free_text)]
"""Text shown to users over several lines: printable characters, tabs and line breaks."""

IdPath = Annotated[
    int, BeforeValidator(_decimal), Path(ge=1, le=MAX_DB_INT, description="Primary key")
]


def format_timestamp(value: datetime) -> str:
    """ISO 8601 UTC with a Z suffix, to the second, as the seed shows."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


def size_label(size_gb: int) -> str:
    """The seed's size text, e.g. "20 GB"."""
    return f"{size_gb} GB"


class SlashRouter(APIRouter):
    """A router whose every path answers with and without a trailing slash, never redirecting.

    The form given is the one documented in OpenAPI; the other is served by the same handler.
    """

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        other = path[:-1] if path.endswith("/") else path + "/"
        if other and other != path:
            alt = dict(kwargs)
            alt["include_in_schema"] = False
            if alt.get("operation_id"):
                alt["operation_id"] = alt["operation_id"] + "_alt"
            super().add_api_route(other, endpoint, **alt)


class HeadAsGet:
    """Answer HEAD wherever GET is answered, as RFC 9110 asks: the request goes through as a
    GET (key, limits, route and handler alike) and the answer keeps its status and headers,
    Content-Length included, without the body.

    Routes stay GET-only, so the OpenAPI document shows no HEAD operations beside the GETs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = dict(scope, method="GET")

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(as_get, receive, headers_only)
        finally:
            for key, value in as_get.items():  # what routing found (the route, for metrics)
                scope.setdefault(key, value)


METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """The ``Allow`` header for the request's path: the methods of every route it matches.

    Each method of a path is a route of its own, so the one route a 405 comes from knows only
    its own method; this looks at them all.
    """
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "method_table", None
    )
    if table is None:
        table = app.state.method_table = _method_table(app)
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    methods = {m for regex, found in table if regex.match(path) for m in found}
    if "GET" in methods:
        methods.add("HEAD")  # see HeadAsGet
    order = {m: n for n, m in enumerate(METHOD_ORDER)}
    return ", ".join(sorted(methods, key=lambda m: (order.get(m, len(order)), m)))


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    try:  # FastAPI >= 0.16x keeps included routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI flattens included routers
        routes = list(app.routes)
    table = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods:
            table.append((compile_path(path)[0], frozenset(methods)))
    return table


def pagination_headers(
    request: Request, response: Response, total: int, limit: int, offset: int
) -> None:
    """Set X-Total-Count and a Link header (rel=next, rel=prev) for a paged list."""
    response.headers["X-Total-Count"] = str(total)
    links = []
    if offset + limit < total:
        url = request.url.include_query_params(limit=limit, offset=offset + limit)
        links.append(f'<{url}>; rel="next"')
    if offset > 0:
        url = request.url.include_query_params(limit=limit, offset=max(0, offset - limit))
        links.append(f'<{url}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)


def accepted(content: Any, operation_id: str | None, status_code: int = 202) -> JSONResponse:
    """A 202/201 answer pointing at the operation that carries the change out."""
    headers = {"Location": f"/operations/{operation_id}"} if operation_id else None
    return JSONResponse(content, status_code=status_code, headers=headers)


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


OPERATION_LOCATION = _header("The operation that carries the change out: `/operations/{id}`")
PAGING_HEADERS = {
    "X-Total-Count": _header("How many items match the filters, on all pages", "integer"),
    "Link": _header('The next and previous pages (`rel="next"`, `rel="prev"`), when there are'),
}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("Requests allowed per minute for this API key", "integer"),
    "RateLimit-Remaining": _header("Requests left before the limit", "integer"),
    "RateLimit-Reset": _header("Seconds until the whole allowance is back", "integer"),
}
REQUEST_ID = {
    "X-Request-ID": _header(
        "This request's id: the one sent, when it is 1-64 letters, digits and `._:/+-`;"
        " otherwise a new one"
    )
}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again", "integer")}
PAGED_OPERATIONS = frozenset({"list_orbits", "list_volumes"})


def document_headers(app: Any, public_paths: frozenset[str]) -> None:
    """Declare in the OpenAPI document the headers the app sends, so clients and checks see them."""
    generate = app.openapi
    done: list[int] = []  # ids of the documents already given their headers

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = generate()  # cached by the wrappers below this one
        if id(schema) in done:
            return schema
        done.append(id(schema))
        for path, item in schema.get("paths", {}).items():
            public = (path.rstrip("/") or "/") in public_paths
            for operation in item.values():
                for status, response in operation.get("responses", {}).items():
                    headers = response.setdefault("headers", {})
                    headers.update(REQUEST_ID)
                    if status in ("201", "202") or (
                        status == "200" and operation.get("operationId") in ("create_orbit",
                                                                              "act_on_orbit")
                    ):  # fmt: skip
                        headers["Location"] = OPERATION_LOCATION
                    if status == "200" and operation.get("operationId") in PAGED_OPERATIONS:
                        headers.update(PAGING_HEADERS)
                    if status in ("429", "503"):
                        headers.update(RETRY_AFTER)
                    if not public and status.startswith("2"):
                        headers.update(RATE_LIMIT_HEADERS)
        return schema

    app.openapi = openapi
