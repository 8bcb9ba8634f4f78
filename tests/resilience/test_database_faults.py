"""PostgreSQL restarted under load (a private server, never the shared one): the API answers 503
problem+json, never a 500 or a hang, and recovers by itself; the worker survives and loses
nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.fake_openstack import FakeOpenStack
from tests.helpers import create_params
from tests.resilience.harness import (
    AUTH_HEADERS,
    Processes,
    eventually,
    inprocess_api,
    live_servers,
    live_volumes,
    server_posts,
    volume_posts,
)
from tests.resilience.pgserver import PrivatePostgres

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Sample:
    at: float
    kind: str
    status: int | None  # None: no answer (a transport error or a timeout)
    detail: str
    tid: str | None = None
    took: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 300


class Load:
    """Clients listing, creating and probing readiness in a loop, every answer recorded."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[Sample] = []
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n, kind in enumerate(["list", "list", "create", "create", "ready", "health"]):
            self._tasks.append(asyncio.create_task(self._client(n, kind)))

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, n: int, kind: str) -> None:
        # a hang would show as a timeout: nothing should take 10 s
        async with httpx.AsyncClient(base_url=self.base, headers=AUTH_HEADERS, timeout=10) as http:
            count = 0
            while not self.stop.is_set():
                count += 1
                tid = f"db-{n}-{count}" if kind == "create" else None
                sent = time.monotonic()
                try:
                    if kind == "create":
                        response = await http.post(
                            "/vms/create/", params=create_params(vm_name=tid, transaction_id=tid)
                        )
                    else:
                        path = {"list": "/vms/", "ready": "/readyz", "health": "/healthz"}[kind]
                        response = await http.get(path)
                except httpx.TransportError as exc:
                    now = time.monotonic()
                    self.samples.append(Sample(now, kind, None, repr(exc), tid, now - sent))
                else:
                    now = time.monotonic()
                    self.samples.append(Sample(now, kind, response.status_code,
                                               _describe(response), tid, now - sent))  # fmt: skip
                await asyncio.sleep(0.25 if kind == "create" else 0.05)


def _describe(response: httpx.Response) -> str:
    if response.status_code < 300:
        return "ok"
    kind = response.headers.get("content-type", "")
    code = response.json().get("code") if kind.startswith("application/problem+json") else None
    return f"{kind} code={code} retry-after={response.headers.get('retry-after')}"


async def test_postgres_restarted_under_load(
    private_pg: PrivatePostgres, private_db_url: str, fake: FakeOpenStack,
    processes: Callable[..., Processes],
) -> None:  # fmt: skip
    url = private_db_url
    procs = processes(url, fake)
    api = await procs.server(SOG_RUN_WORKER="false")
    worker = procs.worker()
    load = Load(f"http://127.0.0.1:{api.port}")
    load.start()
    await asyncio.sleep(0.6)
    t0 = time.monotonic()
    await asyncio.to_thread(private_pg.stop, "fast")  # every session ends, connections refused
    down = time.monotonic()
    await asyncio.sleep(1.5)
    await asyncio.to_thread(private_pg.start)
    up = time.monotonic()
    await asyncio.sleep(1.5)
    await load.finish()

    samples = load.samples
    bad = [s for s in samples if not s.ok and s.status != 503]
    assert not bad, bad[:5]  # never a 500, never a hang or a dropped connection
    refused = [s for s in samples if s.status == 503]
    assert refused, "the outage was not felt"
    expected = "application/problem+json code=service_unavailable retry-after=2"
    assert {s.detail for s in refused} == {expected}
    assert not [s for s in samples if s.at < t0 and not s.ok]  # fine before the stop
    recovered = {k: min((s.at for s in samples if s.kind == k and s.at > up and s.ok),
                        default=None) for k in ("list", "create", "ready")}  # fmt: skip
    assert all(recovered.values()), recovered  # by itself, the same processes
    first_ok = min(v for v in recovered.values() if v is not None)
    assert not [s for s in samples if s.at > first_ok and not s.ok]  # and it stays so
    assert all(s.ok for s in samples if s.kind == "health")  # alive all along
    assert api.alive and worker.alive

    # every create that was accepted completes; one that was refused can be retried
    async with (
        httpx.AsyncClient(base_url=load.base, headers=AUTH_HEADERS, timeout=10) as http,
        inprocess_api(url) as handle,
    ):
        tids = {s.tid for s in samples if s.kind == "create"}
        accepted = {s.tid for s in samples if s.kind == "create" and s.ok}
        for tid in sorted(tids - accepted):
            response = await http.post(
                "/vms/create/", params=create_params(vm_name=tid, transaction_id=tid)
            )
            assert response.status_code in (200, 201), response.text

        async def all_running() -> bool:
            listing = (await http.get("/vms/", params={"limit": 1000})).json()
            return len(listing) == len(tids) and {o["status"] for o in listing} == {"RUNNING"}

        await eventually(all_running, f"{len(tids)} orbits RUNNING", diagnostics=procs.tails)
        rows = await handle.rows("SELECT id FROM operations WHERE kind='orbit.create'")
    posts, volumes, servers, live = (server_posts(fake), volume_posts(fake),
                                     live_servers(fake), live_volumes(fake))  # fmt: skip
    counts = Counter((posts[r["id"]], volumes[r["id"]], servers[r["id"]], live[r["id"]])
                     for r in rows)  # fmt: skip
    assert counts == {(1, 1, 1, 1): len(tids)}, counts
    print(
        f"answers: {len(samples)}, 503s: {len(refused)} "
        f"({Counter(s.kind for s in refused)}), slowest answer {max(s.took for s in samples):.2f} s, "
        f"slowest 503 {max(s.took for s in refused):.2f} s, back {first_ok - up:.2f} s after the start "
        f"(down {up - down:.1f} s); creates: {len(tids)} ({len(accepted)} accepted at once)"
    )
