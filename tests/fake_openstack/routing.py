"""The request context handlers receive, paging, microversions and time parsing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from tests.fake_openstack.model import ApiError, FakeCloud

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Microversion = tuple[int, int]
MAX_LIMIT = 1000


class HasId(Protocol):
    id: str


T = TypeVar("T", bound=HasId)


@dataclass
class Ctx:
    """What a handler needs to know about one request."""

    cloud: FakeCloud
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    origin: str  # scheme://host:port
    base: str  # the service's versioned URL, for links
    mv: Microversion
    max_version: str

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


Handler = Callable[[Ctx], Reply]


def parse_version(text: str) -> Microversion:
    major, _, minor = text.strip().partition(".")
    if not major.isdigit() or not minor.isdigit():
        raise ApiError(400, f"Invalid API version request: {text!r}")
    return int(major), int(minor)


def negotiate(
    headers: dict[str, str], service: str, lowest: Microversion, highest: Microversion
) -> Microversion:
    """Pick the microversion a request asked for (OpenStack-API-Version or Nova's old header)."""
    requested = None
    for part in headers.get("openstack-api-version", "").split(","):
        name, _, value = part.strip().partition(" ")
        if name.lower() == service:
            requested = value.strip()
    if requested is None and service == "compute":
        requested = headers.get("x-openstack-nova-api-version")
    if not requested:
        return lowest
    if requested.lower() == "latest":
        return highest
    version = parse_version(requested)
    if not lowest <= version <= highest:
        raise ApiError(
            406,
            f"Version {requested} is not supported by the API. Minimum is "
            f"{lowest[0]}.{lowest[1]} and maximum is {highest[0]}.{highest[1]}.",
        )
    return version


def parse_time(text: str, name: str) -> float:
    """Parse an ISO 8601 query value (naive means UTC) to epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise ApiError(400, f"Invalid input for query parameters {name}. Value: {text}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def page(ctx: Ctx, items: Sequence[T], collection: str) -> tuple[list[T], list[dict[str, str]]]:
    """Apply ``marker`` and ``limit`` like Nova and Cinder; return the page and its links."""
    start = 0
    marker = ctx.q("marker")
    if marker is not None:
        ids = [item.id for item in items]
        if marker not in ids:
            raise ApiError(400, f"marker [{marker}] not found")
        start = ids.index(marker) + 1
    raw_limit = ctx.q("limit")
    try:
        limit = MAX_LIMIT if raw_limit is None else min(int(raw_limit), MAX_LIMIT)
    except ValueError:
        raise ApiError(400, "limit param must be an integer") from None
    if limit < 0:
        raise ApiError(400, "limit param must be positive")
    chosen = list(items[start : start + limit])
    links = []
    if chosen and len(chosen) == limit:
        query = {k: v[-1] for k, v in ctx.query.items() if k not in ("marker", "limit")}
        query.update(limit=str(limit), marker=chosen[-1].id)
        suffix = "/detail" if ctx.path.endswith("/detail") else ""
        links.append({"rel": "next", "href": f"{ctx.base}/{collection}{suffix}?{urlencode(query)}"})
    return chosen, links
