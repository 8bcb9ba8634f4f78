"""HTTP methods as RFC 9110 has them: HEAD wherever GET is answered, and every 405 names, in
``Allow``, all the methods its path answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.conftest import assert_problem
from tests.auth.routes import fill, route_templates
from tests.helpers import running_orbit

# Headers that differ from one request to the next, whatever the method.
VARYING = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}
ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def comparable(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in VARYING}


def methods_by_path(app: FastAPI) -> dict[str, set[str]]:
    """Each route template and the methods its routes answer (HEAD wherever GET is)."""
    found: dict[str, set[str]] = defaultdict(set)
    for method, template in route_templates(app):
        found[template].add(method)
        if method == "GET":
            found[template].add("HEAD")
    return found


def allowed(response: httpx.Response) -> list[str]:
    return [m.strip() for m in response.headers["allow"].split(",")]


class TestHead:
    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/healthz/", "/metrics"])
    async def test_probes_answer_head_without_a_key(
        self, anonymous: httpx.AsyncClient, path: str
    ) -> None:
        get, head = await anonymous.get(path), await anonymous.head(path)
        assert get.status_code == head.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        if path != "/metrics":  # the metrics change between the two requests
            assert comparable(head) == comparable(get)

    async def test_every_get_route_answers_head_with_the_same_status_and_headers(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        orbit = await running_orbit(client)
        ids = {
            "pk": orbit["id"], "orbit_id": orbit["id"],
            "volume_id": orbit["volume_model"][0]["id"], "operation_id": orbit["operation_id"],
        }  # fmt: skip
        gets = [fill(t, ids) for m, t in route_templates(app) if m == "GET"]
        assert len(gets) > 20
        for path in gets:
            if path.rstrip("/") == "/metrics":
                continue  # its body (and so its length) changes with every request
            get, head = await client.get(path), await client.head(path)
            assert head.status_code == get.status_code, (path, head.status_code)
            assert head.content == b"", path
            assert comparable(head) == comparable(get), path
        listed = await client.head("/vms/", params={"offset": 1})
        assert listed.headers["x-total-count"] == "1" and 'rel="prev"' in listed.headers["link"]

    async def test_a_refused_head_has_the_refusal_s_headers_and_no_body(
        self, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        refused = await anonymous.head("/vms/")
        assert refused.status_code == 401 and refused.content == b""
        assert refused.headers["content-type"] == "application/problem+json"
        assert "Token" in refused.headers["www-authenticate"]
        missing = await client.head("/vms/vm_details/999/")
        assert missing.status_code == 404 and missing.content == b""

    async def test_head_where_there_is_no_get_is_a_405(self, client: httpx.AsyncClient) -> None:
        response = await client.head("/vms/action/")
        assert response.status_code == 405 and response.content == b""
        assert allowed(response) == ["POST"]

    def test_head_is_not_an_operation_of_the_document(self, app: FastAPI) -> None:
        # It answers wherever GET does, with GET's headers; schemathesis and the route checks
        # read the document, where a HEAD operation would only repeat its GET.
        for item in app.openapi()["paths"].values():
            assert "head" not in item


class TestMethodNotAllowed:
    async def test_options_names_every_method_of_the_path(self, client: httpx.AsyncClient) -> None:
        response = await client.options("/vms/vm_details/1/")
        body = assert_problem(response, 405, "method_not_allowed")
        assert allowed(response) == ["GET", "HEAD", "PUT", "PATCH"]
        assert "GET, HEAD, PUT, PATCH" in body["detail"]

    async def test_every_405_names_all_the_methods_of_its_path(
        self, app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        checked = 0
        for template, methods in methods_by_path(app).items():
            path = fill(template, defaultdict(lambda: 1))
            public = template.startswith(("/docs", "/redoc", "/openapi", "/healthz", "/readyz"))
            http = anonymous if public or template.startswith("/metrics") else client
            for method in {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - methods:
                response = await http.request(method, path)
                if response.status_code != 405:  # another route of the same shape answers
                    continue
                checked += 1
                expected = sorted(methods_of(app, path), key=ORDER.index)
                assert allowed(response) == expected, (method, path)
        assert checked > 60

    async def test_the_unknown_method_of_a_post_route(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/vms/1/delete/")
        assert_problem(response, 405, "method_not_allowed")
        assert allowed(response) == ["POST"]


def methods_of(app: FastAPI, path: str) -> set[str]:
    """The methods of every route whose template matches ``path``."""
    from starlette.routing import compile_path

    found: set[str] = set()
    for template, methods in methods_by_path(app).items():
        regex, _, _ = compile_path(template)
        if regex.match(path):
            found |= methods
    return found
