"""Abuse limits: a per-key rate limit (429 + Retry-After) and request size limits (413, 414)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from sog_api.auth.limits import RequestLimits
from sog_api.auth.ratelimit import RateLimiter
from tests.auth.conftest import MakeClient, MakeKey, assert_problem


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> FakeClock:
    fake = FakeClock()
    app.state.rate_limiter.clock = fake
    return fake


def limits(response: httpx.Response) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["ratelimit-limit"]),
        int(headers["ratelimit-remaining"]),
        int(headers["ratelimit-reset"]),
    )


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_minute": 3}])
class TestRateLimit:
    async def test_429_then_recovery(self, client: httpx.AsyncClient, clock: FakeClock) -> None:
        seen = [limits(await client.get("/vms/")) for _ in range(3)]
        assert seen == [(3, 2, 20), (3, 1, 40), (3, 0, 60)]
        refused = await client.get("/vms/")
        body = assert_problem(refused, 429, "rate_limited")
        assert refused.headers["retry-after"] == "20"
        assert limits(refused) == (3, 0, 60)
        assert "3 a minute" in body["detail"]
        clock.now += 19
        assert (await client.get("/vms/")).status_code == 429
        clock.now += 1
        assert (await client.get("/vms/")).status_code == 200
        clock.now += 60
        assert [(await client.get("/vms/")).status_code for _ in range(4)] == [200, 200, 200, 429]

    async def test_each_key_has_its_own_bucket(
        self, client: httpx.AsyncClient, clock: FakeClock, make_key: MakeKey,
        make_client: MakeClient,
    ) -> None:  # fmt: skip
        for _ in range(3):
            await client.get("/vms/")
        assert (await client.get("/vms/")).status_code == 429
        other = await make_client(await make_key("other"))
        assert (await other.get("/vms/")).status_code == 200

    async def test_probes_and_refused_keys_are_not_counted(
        self, client: httpx.AsyncClient, clock: FakeClock, make_client: MakeClient
    ) -> None:
        anonymous = await make_client()
        for _ in range(5):
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/vms/")).status_code == 401
        assert limits(await client.get("/vms/"))[1] == 2


class TestRateLimiter:
    def test_zero_is_off(self, app: FastAPI) -> None:
        assert RateLimiter(0).enabled is False
        assert app.state.rate_limiter.enabled is False  # the tests' default

    def test_refills_evenly_and_never_above_the_limit(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(60, clock=clock)
        assert all(limiter.hit("k").allowed for _ in range(60))
        refused = limiter.hit("k")
        assert not refused.allowed and refused.retry_after == 1
        clock.now += 3600
        assert limiter.hit("k").remaining == 59

    def test_forgets_refilled_buckets(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(60, clock=clock, max_buckets=10)
        for n in range(10):
            limiter.hit(f"k{n}")
        clock.now += 61
        limiter.hit("new")
        assert list(limiter._buckets) == ["new"]


class TestSizeLimits:
    async def test_long_url_is_414(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/vms/", params={"vm_name": "x" * 20_000})
        assert_problem(response, 414, "uri_too_long")

    @pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 100}])
    async def test_large_body_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/vms/action/", content=b"x" * 101)
        body = assert_problem(response, 413, "payload_too_large")
        assert "query string" in body["detail"]
        small = await client.post("/vms/action/", content=b"x" * 100)
        assert small.status_code == 422  # through, and refused for its missing parameters

    async def test_body_without_a_length_is_counted_as_it_streams(self) -> None:
        async def reads_body(scope: Scope, receive: Receive, send: Send) -> None:
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"read"})

        app = RequestLimits(reads_body, max_body_bytes=10, max_url_length=1000)

        async def chunks(n: int) -> Any:
            for _ in range(n):
                yield b"xxxx"

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.post("/", content=chunks(2))).status_code == 200
            response = await http.post("/", content=chunks(3))
            assert response.status_code == 413
            assert response.json()["code"] == "payload_too_large"
