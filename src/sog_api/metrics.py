"""Prometheus metrics: request counts and latencies, and the state of the work queue.

Request metrics are counted by this process. Queue and resource gauges are read from the
database when ``/metrics`` is scraped, so any API replica shows the whole picture, including the
work of worker processes that serve no HTTP themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from sog_api.db.base import utcnow
from sog_api.errors import ServiceUnavailable, responses
from sog_api.http import SlashRouter
from sog_api.operations import models as opm
from sog_api.operations.models import Operation
from sog_api.orbits.models import Orbit
from sog_api.volumes.models import Volume

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sog_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "sog_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.operations = Gauge(
            "sog_operations_open", "Operations not yet finished", ["state"],
            registry=self.registry,
        )  # fmt: skip
        self.oldest = Gauge(
            "sog_operation_oldest_open_seconds", "Age of the oldest unfinished operation",
            registry=self.registry,
        )  # fmt: skip
        self.orbits = Gauge("sog_orbits", "Live orbits", ["status"], registry=self.registry)
        self.volumes = Gauge("sog_volumes", "Live volumes", ["status"], registry=self.registry)

    def observe(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        """Count one answered request under its route template (never the raw path)."""
        route = getattr(scope.get("route"), "path", None)
        label = (route.rstrip("/") or "/") if route else "unmatched"
        method = scope.get("method", "")
        self.requests.labels(method, label, str(status)).inc()
        self.latency.labels(method, label).observe(seconds)

    async def refresh(self, request: Request) -> None:
        """Read the queue and resource gauges from the database."""
        async with request.app.state.read_sessionmaker() as session:
            open_ops = dict(
                (await session.execute(
                    select(Operation.state, func.count())
                    .where(Operation.state.in_(opm.OPEN_STATES)).group_by(Operation.state)
                )).tuples().all()
            )  # fmt: skip
            oldest = await session.scalar(
                select(func.min(Operation.created_at)).where(Operation.state.in_(opm.OPEN_STATES))
            )
            orbits = await _count_by_status(session, Orbit)
            volumes = await _count_by_status(session, Volume)
        for state in opm.OPEN_STATES:
            self.operations.labels(state).set(open_ops.get(state, 0))
        self.oldest.set((utcnow() - oldest).total_seconds() if oldest else 0)
        _set_all(self.orbits, orbits)
        _set_all(self.volumes, volumes)


async def _count_by_status(session: Any, model: Any) -> dict[str, int]:
    rows = await session.execute(
        select(model.status, func.count()).where(model.deleted_at.is_(None)).group_by(model.status)
    )
    return dict(rows.tuples().all())


def _set_all(gauge: Gauge, counts: dict[str, int]) -> None:
    gauge.clear()  # a status nobody is in any more disappears instead of keeping its last value
    for status, count in counts.items():
        gauge.labels(status).set(count)


def metrics_router() -> SlashRouter:
    router = SlashRouter(tags=["health"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **responses(503)},
    )
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: requests, latencies, the operation queue, orbits and volumes."""
        registry: Metrics = request.app.state.metrics
        try:
            await registry.refresh(request)
        except (SQLAlchemyError, OSError) as exc:
            raise ServiceUnavailable("The database is unavailable.") from exc
        return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)

    return router
