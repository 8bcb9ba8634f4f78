"""The committed OpenAPI document is the one the app serves."""

from __future__ import annotations

from pathlib import Path

from sog_api.main import create_app, openapi_json

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


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
