"""The fake cloud's ASGI app: journal, faults, token checks, microversions, dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fake_openstack import api_compute, api_volume
from tests.fake_openstack.faults import Faults, JournalEntry
from tests.fake_openstack.identity import Identity
from tests.fake_openstack.model import ApiError, FakeCloud
from tests.fake_openstack.routing import Ctx, Handler, Microversion, negotiate, parse_version

_KINDS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    429: "overLimit",
    500: "computeFault",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_DISCOVERY = re.compile(r"/(identity|compute|volume|image)(/v[0-9.]+|/versions)?/?")
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
_INVALID_JSON = object()


class _Drop(Response):
    """Send headers announcing a body, a few bytes of it, then let the server close the socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with contextlib.suppress(RuntimeError):  # uvicorn refuses it and closes the connection
            await send({"type": "http.response.body", "body": b'{"serv', "more_body": False})


def _service_of(path: str) -> str:
    return path.strip("/").split("/", 1)[0]


def error_response(status: int, message: str, service: str, headers: dict[str, str]) -> Response:
    """An error body the way each service shapes it."""
    if service == "identity":
        body: dict[str, Any] = {"error": {"code": status, "message": message, "title": "Error"}}
    else:
        body = {_KINDS.get(status, "computeFault"): {"code": status, "message": message}}
    extra = dict(headers)
    if status == 401:
        extra.setdefault("WWW-Authenticate", "Keystone uri='/identity'")
    return JSONResponse(body, status_code=status, headers=extra)


class FakeApp:
    """Routes requests to the Keystone, Nova, Cinder and Glance handlers."""

    def __init__(
        self,
        cloud: FakeCloud,
        identity: Identity,
        faults: Faults,
        *,
        compute_max: str,
        volume_max: str,
    ) -> None:
        self.cloud = cloud
        self.identity = identity
        self.faults = faults
        self.journal: list[JournalEntry] = []
        self.listeners: list[Callable[[JournalEntry], None]] = []
        self.versions: dict[str, tuple[Microversion, Microversion]] = {
            "compute": ((2, 1), parse_version(compute_max)),
            "volume": ((3, 0), parse_version(volume_max)),
        }
        table = identity.routes() + api_compute.ROUTES + api_volume.ROUTES + api_volume.IMAGE_ROUTES
        self.routes = [(m, re.compile(p), h) for m, p, h in table]
        self.asgi = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=_METHODS)])

    async def endpoint(self, request: Request) -> Response:
        received = time.time()
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        path = request.url.path
        delay, rule = self.faults.take(request.method, path)
        if delay:
            await asyncio.sleep(delay)
        service = _service_of(path)
        if rule is not None and rule.action == "drop":
            response: Response = _Drop()
        elif rule is not None and rule.action == "lose":
            self._handle(request, path, body, service)
            response = _Drop()
        elif rule is not None:
            response = error_response(rule.status, rule.message or "", service, rule.headers)
        else:
            response = self._handle(request, path, body, service)
        entry = JournalEntry(
            method=request.method,
            path=path,
            query=parse_qs(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=None if body is _INVALID_JSON else body,
            time=received,
            status=None if isinstance(response, _Drop) else response.status_code,
        )
        self.journal.append(entry)
        for listener in list(self.listeners):  # before the answer leaves: the client waits
            listener(entry)
        return response

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, {k: v for k, v in match.groupdict().items() if v is not None}
            allowed = True
        if allowed:
            raise ApiError(405, f"The method {method} is not allowed for this resource.")
        raise ApiError(404, "The resource could not be found.")

    def _handle(self, request: Request, path: str, body: Any, service: str) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        mv: Microversion | None = None
        try:
            handler, params = self._route(request.method, path)
            discovery = _DISCOVERY.fullmatch(path) is not None
            token = headers.get("x-auth-token")
            if service != "identity" and not discovery and not self.identity.valid(token):
                raise ApiError(401, "The request you have made requires authentication.")
            if service in self.versions:
                lowest, highest = self.versions[service]
                mv = lowest if discovery else negotiate(headers, service, lowest, highest)
            if body is _INVALID_JSON:
                raise ApiError(400, "Malformed request body")
            ctx = self._ctx(request, path, params, body, service, mv)
            with self.cloud.lock:
                self.cloud.advance()
                status, payload, *rest = handler(ctx)
        except ApiError as exc:
            return error_response(exc.status, exc.message, service, self._mv_headers(service, mv))
        extra = {**self._mv_headers(service, mv), **(rest[0] if rest else {})}
        extra["x-openstack-request-id"] = f"req-{uuid.uuid4()}"
        if payload is None:
            return Response(status_code=status, headers=extra)
        return JSONResponse(payload, status_code=status, headers=extra)

    def _ctx(
        self,
        request: Request,
        path: str,
        params: dict[str, str],
        body: Any,
        service: str,
        mv: Microversion | None,
    ) -> Ctx:
        origin = f"{request.url.scheme}://{request.url.netloc}"
        bases = {
            "compute": f"{origin}/compute/v2.1",
            "volume": f"{origin}/volume/v3/{params.get('project_id', '')}",
            "image": f"{origin}/image/v2",
        }
        highest = self.versions.get(service, ((0, 0), (0, 0)))[1]
        return Ctx(
            cloud=self.cloud,
            method=request.method,
            path=path,
            params=params,
            query=parse_qs(request.url.query, keep_blank_values=True),
            body=body,
            origin=origin,
            base=bases.get(service, origin),
            mv=mv or (0, 0),
            max_version=f"{highest[0]}.{highest[1]}",
        )

    @staticmethod
    def _mv_headers(service: str, mv: Microversion | None) -> dict[str, str]:
        if mv is None:
            return {}
        text = f"{mv[0]}.{mv[1]}"
        if service == "compute":
            return {
                "OpenStack-API-Version": f"compute {text}",
                "X-OpenStack-Nova-API-Version": text,
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            }
        return {"OpenStack-API-Version": f"{service} {text}", "Vary": "OpenStack-API-Version"}
