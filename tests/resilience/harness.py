"""Real processes for the resilience tests: `sog-api worker` and `sog-api serve` subprocesses,
databases made and dropped per test, the fake cloud's journal counted per operation, waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from fastapi import FastAPI

from sog_api.cloud.openstack_convert import TAG_KEY
from sog_api.db import migrate
from sog_api.main import create_app
from sog_api.settings import Settings
from tests.conftest import TEST_API_KEY, db_rows, make_settings
from tests.fake_openstack import FakeOpenStack, JournalEntry

T = TypeVar("T")
AUTH_HEADERS = {"Authorization": f"Token {TEST_API_KEY}"}

# Short leases and polls keep these tests at seconds; every process of a test gets them.
FAST_ENV = {
    "SOG_WORKER_LEASE_SECONDS": "1.5",
    "SOG_WORKER_POLL_INTERVAL": "0.1",
    "SOG_WORKER_CONCURRENCY": "4",
    "SOG_RECONCILE_INTERVAL": "0.5",
    "SOG_OS_CALL_TIMEOUT": "5",
    "SOG_DB_POOL_TIMEOUT": "2",
    "SOG_DB_STATEMENT_TIMEOUT": "3",
    "SOG_LOG_LEVEL": "INFO",
    "SOG_RATE_LIMIT_PER_MINUTE": "0",
}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases ---------------------------------------------------------------------------------


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database(admin_url: str, *, drop: bool = True) -> Iterator[str]:
    """A new, migrated PostgreSQL database on the server of ``admin_url``; dropped afterwards
    (unless the whole server goes, ``drop=False``)."""
    name = f"sog_res_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        migrate.upgrade(Settings(database_url=url))
        yield url
    finally:
        if drop:
            asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{directory / 'sog.db'}"
    migrate.upgrade(Settings(database_url=url))
    yield url


# -- processes ---------------------------------------------------------------------------------


class Launcher:
    """Forks `sog-api` processes from one that imported sog-api already (see ``zygote.py``):
    each is a process of its own, in its own session, running the `sog-api` command line."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parents[2]
        self._zygote = subprocess.Popen(
            [sys.executable, "-m", "tests.resilience.zygote"], cwd=root,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        self._lock = threading.Lock()
        self._pids: queue.Queue[int] = queue.Queue()
        self.exit_codes: dict[int, int] = {}
        self._ready = threading.Event()
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()
        if not self._ready.wait(60):
            raise RuntimeError("the zygote did not start")

    def _read(self) -> None:
        assert self._zygote.stdout is not None
        for line in self._zygote.stdout:
            message = json.loads(line)
            if "ready" in message:
                self._ready.set()
            elif "pid" in message:
                self._pids.put(int(message["pid"]))
            elif "exited" in message:
                self.exit_codes[int(message["exited"])] = int(message["code"])

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> int:
        request = {"args": args, "env": env, "cwd": str(cwd), "log": str(log)}
        with self._lock:
            assert self._zygote.stdin is not None
            self._zygote.stdin.write((json.dumps(request) + "\n").encode())
            self._zygote.stdin.flush()
            return self._pids.get(timeout=30)

    def close(self) -> None:
        if self._zygote.stdin is not None:
            self._zygote.stdin.close()
        self._zygote.wait(timeout=10)


@dataclass
class Proc:
    """One `sog-api` process, its own session and process group, its output in a file."""

    name: str
    pid: int
    launcher: Launcher
    log_path: Path
    env: dict[str, str]
    port: int | None = None

    @property
    def returncode(self) -> int | None:
        """The exit status once it ended (negative: the signal that ended it)."""
        return self.launcher.exit_codes.get(self.pid)

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def kill(self) -> None:
        """SIGKILL its whole process group: no cleanup of any kind runs. Waits for the end."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.002)

    def terminate(self) -> None:
        """SIGTERM: ask for a graceful stop (does not wait)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (pid {self.pid}) ---\n" + "\n".join(
            self.log().splitlines()[-lines:]
        )


@dataclass
class Processes:
    """Starts `sog-api` processes with a common environment and kills every one at the end."""

    launcher: Launcher
    directory: Path
    env: dict[str, str]
    started: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str], extra: dict[str, str]) -> Proc:
        env = {**self.env, **extra}
        log_path = self.directory / f"{name}-{len(self.started)}.log"
        pid = self.launcher.spawn(args, env, self.directory, log_path)
        proc = Proc(name, pid, self.launcher, log_path, env)
        self.started.append(proc)
        return proc

    def worker(self, name: str = "worker", **extra: str) -> Proc:
        """`sog-api worker` (no HTTP)."""
        return self._spawn(name, ["worker"], extra)

    async def server(self, name: str = "api", port: int | None = None, **extra: str) -> Proc:
        """`sog-api serve` on a loopback port (with its in-process worker unless told otherwise);
        returns once it answers /healthz."""
        port = port or free_port()
        proc = self._spawn(name, ["serve", "--no-migrate"], {"SOG_PORT": str(port), **extra})
        proc.port = port
        await wait_http(proc)
        return proc

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.alive:
                proc.kill()


async def wait_http(proc: Proc, timeout: float = 30.0) -> None:
    """Wait until the server process answers /healthz."""
    url = f"http://127.0.0.1:{proc.port}/healthz"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if not proc.alive:
                raise AssertionError(f"{proc.name} exited early\n{proc.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{proc.name} did not answer\n{proc.tail()}")


def process_env(directory: Path, database_url: str, fake: FakeOpenStack | None) -> dict[str, str]:
    """The environment of a subprocess: nothing inherited but PATH, OpenStack credentials only
    for the fake, and the fast settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),  # no clouds.yaml of the developer's
        "LANG": "C.UTF-8",
        "SOG_DATABASE_URL": database_url,
        "SOG_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "SOG_LOAD_CATALOG_ON_START": "true",
        **FAST_ENV,
    }
    if fake is not None:
        env.update({"SOG_CLOUD": "openstack", **fake.os_environ()})
    return env


# -- the API in this process (to make requests a worker subprocess carries out) ----------------


@contextlib.asynccontextmanager
async def inprocess_api(database_url: str, **overrides: Any) -> AsyncIterator[ApiHandle]:
    """The app without a worker of its own, over ASGI: requests are recorded, nothing runs."""
    app = create_app(make_settings(database_url, run_worker=False, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sog", headers=AUTH_HEADERS
        ) as http:
            yield ApiHandle(app, http)


@dataclass
class ApiHandle:
    app: FastAPI
    http: httpx.AsyncClient

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return await db_rows(self.app, sql, **params)


# -- the cloud side: what reached the fake, per operation --------------------------------------


def _tag_of(entry: JournalEntry, key: str) -> str | None:
    body = entry.json if isinstance(entry.json, dict) else {}
    metadata = (body.get(key) or {}).get("metadata") or {}
    return metadata.get(TAG_KEY)


def _accepted(fake: FakeOpenStack, path: str, key: str) -> Counter[str]:
    return Counter(
        tag
        for e in fake.requests("POST", path)
        if e.status is not None and 200 <= e.status < 300 and (tag := _tag_of(e, key))
    )


def server_posts(fake: FakeOpenStack) -> Counter[str]:
    """POST /servers requests the cloud carried out, per operation tag."""
    return _accepted(fake, r"/servers$", "server")


def volume_posts(fake: FakeOpenStack) -> Counter[str]:
    """POST /volumes requests the cloud carried out, per operation tag."""
    return _accepted(fake, r"/volumes$", "volume")


def live_servers(fake: FakeOpenStack) -> Counter[str]:
    """Servers that exist (not deleted) per operation tag."""
    return Counter(s.metadata.get(TAG_KEY, "") for s in fake.servers.values() if not s.deleted)


def live_volumes(fake: FakeOpenStack) -> Counter[str]:
    """Volumes that exist per operation tag."""
    return Counter(v.metadata.get(TAG_KEY, "") for v in fake.volumes.values())


def deletes_per_id(fake: FakeOpenStack, collection: str) -> Counter[str]:
    """DELETE /servers/{id} or /volumes/{id} requests per resource id."""
    return Counter(
        e.path.rsplit("/", 1)[1] for e in fake.requests("DELETE", rf"/{collection}/[^/]+$")
    )


# -- waiting -----------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0,
    diagnostics: Callable[[], str] | None = None,
) -> T:  # fmt: skip
    """Poll ``check`` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (httpx.TransportError, OSError) as exc:
            last = exc
        else:
            if last is not None and last is not False:
                return last
        await asyncio.sleep(0.05)
    extra = diagnostics() if diagnostics else ""
    raise AssertionError(f"not reached within {timeout:.0f} s: {what} (last: {last!r})\n{extra}")


async def wait_exit(proc: Proc, timeout: float = 30.0) -> int:
    """Wait for the process to exit by itself; its exit status."""
    deadline = time.monotonic() + timeout
    while proc.alive:
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.name} did not exit\n{proc.tail()}")
        await asyncio.sleep(0.02)
    assert proc.returncode is not None
    return proc.returncode


# -- the app with its own worker on the fake OpenStack, in this process ------------------------


@dataclass
class Running:
    """The app with its worker on the fake OpenStack, and a client."""

    app: FastAPI
    client: httpx.AsyncClient
    lifespan: Any

    async def stop(self) -> None:
        """Shut down: the worker stops, and every cloud call still on its way ends first."""
        if self.lifespan is not None:
            lifespan, self.lifespan = self.lifespan, None
            await self.client.aclose()
            await lifespan.__aexit__(None, None, None)


CloudApp = Callable[..., Awaitable[Running]]


@contextlib.asynccontextmanager
async def cloud_apps(database_url: str) -> AsyncIterator[CloudApp]:
    """``await start(**settings)`` inside: the app and its worker on the fake OpenStack (the
    OS_* variables must be set); every app started is shut down at the end."""
    started: list[Running] = []

    async def start(**overrides: Any) -> Running:
        values: dict[str, Any] = {
            "cloud": "openstack", "worker_poll_interval": 0.05, "worker_lease_seconds": 5.0,
            "os_call_timeout": 5.0, "reconcile_interval": 0.2, **overrides,
        }  # fmt: skip
        app = create_app(make_settings(database_url, **values))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sog", headers=AUTH_HEADERS
        )
        started.append(Running(app, client, lifespan))
        return started[-1]

    try:
        yield start
    finally:
        for running in reversed(started):
            await running.stop()
