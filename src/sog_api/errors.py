"""Error types and the one problem+json envelope (RFC 9457) every error response uses.

Hierarchy::

    ApiError                    status 500, code "internal_error"
    +-- NotFound                404 "not_found"
    +-- Conflict                409, code given per refusal ("orbit_busy", "volume_attached", ...)
    +-- InvalidParameter        422 "invalid_parameter", names the parameter
    +-- Unauthorized            401 "unauthorized" (with WWW-Authenticate)
    +-- Forbidden               403 (quota refusals)
    +-- TooManyRequests         429 "rate_limited" (with Retry-After)
    +-- ServiceUnavailable      503 "service_unavailable" (database unreachable)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sog_api.db.errors import is_unavailable
from sog_api.http import allowed_methods

log = logging.getLogger("sog_api.errors")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER = "2"  # seconds a client should wait after a 503 (the database is away)


class ApiError(Exception):
    """An error the API answers with a problem document."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}


class NotFound(ApiError):
    status = 404
    code = "not_found"

    @classmethod
    def referenced(cls, name: str, what: str, ident: object) -> NotFound:
        """A resource named by a query parameter does not exist for the caller (``attach_to``)."""
        message = f"{what} {ident} not found"
        return cls(
            f"{message} (query parameter '{name}')",
            errors=[{"loc": ["query", name], "msg": message, "type": "not_found"}],
        )


class Conflict(ApiError):
    status = 409
    code = "conflict"


class InvalidParameter(ApiError):
    status = 422
    code = "invalid_parameter"

    def __init__(self, name: str, message: str, *, location: str = "query") -> None:
        super().__init__(
            f"Invalid value for {location} parameter '{name}': {message}",
            errors=[{"loc": [location, name], "msg": message, "type": "value_error"}],
        )


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", RETRY_AFTER)


class Problem(BaseModel):
    """The error envelope (RFC 9457 problem details)."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build the problem+json response every error path uses."""
    body: dict[str, Any] = {
        "type": f"https://sog-api.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": getattr(request.state, "request_id", None),
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Answered by the request limits before any route runs, whatever the operation.
EVERY_OPERATION = {
    "408": "The request body did not arrive in time",
    "413": "The request body is too large (parameters travel in the query string)",
    "414": "The URL is too long",
}


def problem_declaration(description: str) -> dict[str, Any]:
    """One documented error response: a problem document, and nothing else."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response declarations for the error statuses a route can answer."""
    return {status: problem_declaration(HTTPStatus(status).phrase) for status in statuses}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what the error handlers send.

    Every error is a problem document (``application/problem+json``): FastAPI's own 422
    declaration (``HTTPValidationError`` as ``application/json``) is replaced, and the
    statuses the request limits answer for any path are declared on every operation.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                declared = operation.setdefault("responses", {})
                if "422" in declared:
                    declared["422"] = problem_declaration(declared["422"]["description"])
                for status, description in EVERY_OPERATION.items():
                    declared.setdefault(status, problem_declaration(description))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _clean_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Keep loc, msg and type of each validation error; never the input (it may be a secret)."""
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg", ""),
         "type": err.get("type", "")}
        for err in raw
    ]  # fmt: skip


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = err["loc"]
        where = loc[0] if loc else "request"
        name = loc[1] if len(loc) > 1 else where
        parts.append(f"Invalid value for {where} parameter '{name}': {err['msg']}")
    return "; ".join(parts) or "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the problem envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_errors(exc.errors())
        return problem_response(
            request, 422, "invalid_parameter", _validation_detail(errors), errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}"
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.app, request.scope)
            detail = (
                f"{request.url.path} does not answer {request.method};"
                f" it answers {headers['Allow']}."
            )
        return problem_response(request, exc.status_code, code, detail, headers=headers)

    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable error=%s", type(exc).__name__)
        return problem_response(
            request, 503, "service_unavailable",
            "The database is unavailable; retry shortly.", headers={"Retry-After": RETRY_AFTER},
        )  # fmt: skip

    for exc_type in (OperationalError, InterfaceError, PoolTimeout, ConnectionError, OSError):
        app.add_exception_handler(exc_type, _database_down)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_unavailable(exc):  # e.g. "the database system is shutting down" (57P03)
            return await _database_down(request, exc)
        log.exception("database_error")
        return problem_response(request, 500, "internal_error", "Internal server error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):  # a driver error that reached us unwrapped
            return await _database_down(request, exc)
        log.exception("unhandled_error path=%s", request.url.path)
        return problem_response(request, 500, "internal_error", "Internal server error")
