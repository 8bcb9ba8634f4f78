"""The committed OpenAPI document is the one the app serves."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from sog_api.main import create_app, openapi_json
from tests.helpers import create_params

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
WATCHED = {"location", "x-total-count", "link", "x-request-id", "retry-after"}


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_json(create_app()), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_every_documented_operation_declares_its_errors() -> None:
    document = create_app().openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in ("/healthz",):
                continue
            codes = set(operation["responses"])
            assert codes & {"404", "409", "422", "503", "401"}, f"{method} {path} declares no error"


def test_operation_ids_are_the_handler_names() -> None:
    document = create_app().openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"create_orbit", "list_orbits", "act_on_orbit", "attach_volume"} <= set(ids)
    assert all(re.fullmatch(r"[a-z_]+", i) for i in ids), ids


async def test_the_headers_the_app_sends_are_documented(client: httpx.AsyncClient) -> None:
    document = create_app().openapi()

    def documented(path: str, method: str, status: int) -> set[str]:
        response = document["paths"][path][method]["responses"][str(status)]
        return {name.lower() for name in response.get("headers", {})}

    created = await client.post("/vms/create/", params=create_params())
    listed = await client.get("/vms/", params={"limit": 1})
    for response, path, method in (
        (created, "/vms/create/", "post"), (listed, "/vms/", "get")
    ):  # fmt: skip
        sent = {name for name in response.headers if name in WATCHED}
        assert sent, response.headers
        assert sent <= documented(path, method, response.status_code), (path, sent)
    assert {"location"} <= documented("/vms/create/", "post", 201)
    assert {"x-total-count", "link"} <= documented("/vms/", "get", 200)
    assert "retry-after" in documented("/vms/", "get", 429)
    assert "retry-after" in documented("/readyz", "get", 503)
