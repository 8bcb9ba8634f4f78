"""Walk every route of the app, so tests cover routes added later without being told."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def route_templates(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route, e.g. ("GET", "/vms/vm_details/{pk}/")."""
    try:  # FastAPI >= 0.16x keeps included routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # pragma: no cover - older FastAPI flattens included routers
        routes = list(app.routes)
    found = [
        (method, route.path)
        for route in routes
        if route.path is not None
        for method in sorted(route.methods or {"GET"})
    ]
    assert found, "no routes found: did FastAPI change how it keeps them?"
    return found


def fill(template: str, values: dict[str, Any]) -> str:
    """The template with each ``{name}`` replaced by ``values[name]``."""
    return PARAM.sub(lambda m: str(values[m.group(1)]), template)


def params_of(template: str) -> list[str]:
    return PARAM.findall(template)
