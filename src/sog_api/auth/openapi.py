"""Show the API key schemes in the OpenAPI document (Swagger UI's "Authorize" button)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI

from sog_api.errors import PROBLEM_JSON, Problem

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "TokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The whole header value: `Token <key>` (the System on Grid form).",
    },
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "The key alone; it is sent as `Authorization: Bearer <key>`.",
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_AUTH_RESPONSES = {
    "401": "Missing, invalid or revoked API key",
    "429": (
        "Too many requests with this API key, or too many refused authentications from this"
        " address; retry after `Retry-After` seconds"
    ),
}


def document_security(app: FastAPI, public_paths: Collection[str]) -> None:
    """Every operation needs a key (either scheme) except those under ``public_paths``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        components.setdefault("schemas", {}).setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
        for path, operations in schema.get("paths", {}).items():
            public = (path.rstrip("/") or "/") in public_paths
            for operation in operations.values():
                if public:
                    operation["security"] = []
                    continue
                responses = operation.setdefault("responses", {})
                for status, description in _AUTH_RESPONSES.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
