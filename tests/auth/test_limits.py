"""Abuse limits: a per-key rate limit (429 + Retry-After) and request size limits (413, 414)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from sog_api.auth import middleware
from sog_api.auth.keys import Principal, authenticate
from sog_api.auth.limits import RequestLimits
from sog_api.auth.ratelimit import RateLimiter
from sog_api.settings import Settings
from tests.auth.conftest import MakeClient, MakeKey, assert_problem
from tests.conftest import TEST_API_KEY, db_rows
from tests.helpers import running_orbit, wait_status

WRONG_KEY = "sog_wrong-key-that-looks-real-0123456789abcdef"


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


@pytest.fixture
def failures_clock(app: FastAPI) -> FakeClock:
    fake = FakeClock()
    app.state.auth_failure_limiter.clock = fake
    return fake


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys looked up in the database, in order."""
    seen: list[str] = []

    async def counting(session: AsyncSession, presented: str) -> Principal | None:
        seen.append(presented)
        return await authenticate(session, presented)

    monkeypatch.setattr(middleware, "authenticate", counting)
    return seen


def from_address(app: FastAPI, address: str, key: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    headers = {"Authorization": f"Token {key}"} if key else {}
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit_per_minute": 3}])
class TestAuthFailureLimit:
    async def test_refusals_are_limited_per_address(
        self, app: FastAPI, failures_clock: FakeClock
    ) -> None:
        async with (
            from_address(app, "192.0.2.7", WRONG_KEY) as wrong,
            from_address(app, "192.0.2.7", None) as anonymous,
            from_address(app, "192.0.2.7", TEST_API_KEY) as right,
            from_address(app, "192.0.2.8", WRONG_KEY) as neighbour,
        ):
            assert [(await wrong.get("/vms/")).status_code for _ in range(2)] == [401, 401]
            assert_problem(await anonymous.get("/vms/"), 401, "unauthorized")
            for http in (wrong, anonymous):
                refused = await http.get("/vms/")
                body = assert_problem(refused, 429, "rate_limited")
                assert refused.headers["retry-after"] == "20"
                assert (
                    "refused authentications" in body["detail"] and "3 a minute" in body["detail"]
                )
            # a good key from the same address (another client behind one proxy) still works
            assert (await right.get("/vms/")).status_code == 200
            assert (await neighbour.get("/vms/")).status_code == 401  # each address on its own
            assert (await anonymous.get("/healthz")).status_code == 200  # probes need no key
            failures_clock.now += 19
            assert (await wrong.get("/vms/")).status_code == 429
            failures_clock.now += 1
            assert (await wrong.get("/vms/")).status_code == 401  # the token refilled, spent
            assert (await wrong.get("/vms/")).status_code == 429

    async def test_accepted_keys_and_probes_spend_nothing(
        self, app: FastAPI, failures_clock: FakeClock
    ) -> None:
        async with (
            from_address(app, "192.0.2.7", TEST_API_KEY) as right,
            from_address(app, "192.0.2.7", None) as anonymous,
        ):
            for _ in range(10):
                assert (await right.get("/vms/")).status_code == 200
                assert (await anonymous.get("/healthz")).status_code == 200
            assert [(await anonymous.get("/vms/")).status_code for _ in range(4)] == [
                401, 401, 401, 429,
            ]  # fmt: skip


class TestAuthFailureLimitSettings:
    @pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit_per_minute": 0}])
    async def test_zero_is_off(self, app: FastAPI, lookups: list[str]) -> None:
        async with from_address(app, "192.0.2.7", WRONG_KEY) as wrong:
            codes = {(await wrong.get("/vms/")).status_code for _ in range(70)}
        assert codes == {401} and len(lookups) == 70

    def test_the_default_is_sixty_a_minute(self) -> None:
        assert Settings().auth_failure_limit_per_minute == 60


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

    def test_a_flood_of_new_keys_keeps_at_most_the_cap(self) -> None:
        # Only refilled buckets were forgotten: a flood within a minute grew the table without
        # bound, and every hit past the cap scanned all of it.
        clock = FakeClock()
        limiter = RateLimiter(60, clock=clock, max_buckets=10)
        limiter.hit("steady")
        for n in range(1000):
            limiter.hit(f"flood-{n}")
            if n % 3 == 0:
                limiter.hit("steady")  # seen again and again: kept
        assert len(limiter._buckets) == 10
        assert "steady" in limiter._buckets and "flood-999" in limiter._buckets


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

    async def test_a_body_without_a_length_is_counted_before_the_app_runs(self) -> None:
        async def reads_body(scope: Scope, receive: Receive, send: Send) -> None:
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"read"})

        app = RequestLimits(reads_body, max_body_bytes=10, max_url_length=1000)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.post("/", content=chunks(2, b"xxxx"))).status_code == 200
            response = await http.post("/", content=chunks(3, b"xxxx"))
            assert response.status_code == 413
            assert response.json()["code"] == "payload_too_large"

    @pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 100}])
    async def test_a_chunked_body_too_large_is_refused_before_anything_is_done(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """The handlers never read the body, so it must be counted before they run: a chunked
        body (no Content-Length) over the limit is a 413 and the action is not carried out."""
        orbit = await running_orbit(client)
        operations = "SELECT id FROM operations WHERE orbit_id = :id"
        before = await db_rows(app, operations, id=orbit["id"])
        action = {"action": "reboot", "orbit_id": orbit["id"]}
        response = await client.post("/vms/action/", params=action, content=chunks(26, b"xxxx"))
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "payload_too_large")
        assert (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()["status"] == "RUNNING"
        assert await db_rows(app, operations, id=orbit["id"]) == before
        # Within the limit, chunked or not, the body is passed on and the request carried out.
        response = await client.post("/vms/action/", params=action, content=chunks(25, b"xxxx"))
        assert response.status_code == 202, response.text
        await wait_status(client, orbit["id"], "RUNNING")

    async def test_a_request_whose_client_leaves_mid_body_is_not_carried_out(
        self, app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        orbit = await running_orbit(client)
        messages: list[Message] = [
            {"type": "http.request", "body": b"xxxx", "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        query = f"action=pause&orbit_id={orbit['id']}".encode()
        headers = [(b"authorization", f"Token {TEST_API_KEY}".encode())]
        scope = action_scope(query, headers)
        caplog.set_level(logging.INFO, logger="sog_api.access")
        await app(scope, receive, send)
        assert sent == []  # nobody is left to answer
        assert "path=/vms/action/ " in caplog.text and " status=499 " in caplog.text
        assert (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()["status"] == "RUNNING"

    @pytest.mark.parametrize("settings_overrides", [{"body_timeout": 0.3}])
    async def test_a_body_that_does_not_come_is_a_408_and_nothing_is_done(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        # The request waited for its body for ever, holding its connection.
        orbit = await running_orbit(client)
        first = asyncio.Event()

        async def receive() -> Message:
            if not first.is_set():
                first.set()
                return {"type": "http.request", "body": b"x", "more_body": True}
            await asyncio.sleep(3600)  # the rest never comes
            raise AssertionError("unreachable")

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        query = f"action=pause&orbit_id={orbit['id']}".encode()
        headers = [(b"authorization", f"Token {TEST_API_KEY}".encode()), (b"content-length", b"9")]
        scope = action_scope(query, headers)
        await asyncio.wait_for(app(scope, receive, send), timeout=5)
        assert sent[0]["status"] == 408
        body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert body["code"] == "request_timeout"
        assert (await client.get(f"/vms/vm_details/{orbit['id']}/")).json()["status"] == "RUNNING"


def action_scope(query: bytes, headers: list[tuple[bytes, bytes]]) -> Scope:
    """The ASGI scope of a POST /vms/action/, for driving the app's receive by hand."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/vms/action/", "raw_path": b"/vms/action/",
        "query_string": query, "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip


async def chunks(n: int, chunk: bytes) -> AsyncIterator[bytes]:
    """A body sent in ``n`` pieces with no Content-Length (Transfer-Encoding: chunked)."""
    for _ in range(n):
        yield chunk
