"""Run blocking openstacksdk calls from asyncio on one shared, warmed Connection.

Every call goes to a dedicated, bounded thread pool. The Connection is made and warmed once
(Keystone auth, then version discovery of compute, block-storage and image) under a lock, on the
first call: ``start()`` makes that first call, and a cloud that is down then is tried again by the
next one. A 401 is retried once (keystoneauth races when a token is revoked under concurrent
calls); every failure leaves as one of ``base.py``'s errors. keystoneauth logs request and
response bodies at DEBUG; the secrets in them (``adminPass``, passwords) are masked first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from keystoneauth1.session import TCPKeepAliveAdapter
from openstack import exceptions as sdk_exc
from openstack.connection import Connection

from sog_api.cloud import base as cb
from sog_api.cloud.openstack_errors import is_unauthorized, map_exception

log = logging.getLogger("sog_api.cloud")

T = TypeVar("T")
Version = tuple[int, int]
PAGE_SIZE = 1000
MIN_COMPUTE: Version = (2, 52)  # server tags at create (2.47 embeds flavors, 2.37 networks)
EXTEND_IN_USE: Version = (3, 42)
SDK_HTTP_LOGGER = "keystoneauth.session"  # where the SDK's DEBUG request/response traces go
_SECRET_FIELD = re.compile(
    r'("(?:adminPass|admin_pass|password|secret|application_credential_secret)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"'
)


class MaskSecrets(logging.Filter):
    """Mask the values of secret JSON fields in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET_FIELD.sub(r'\1"***"', message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_sdk_http_logs() -> None:
    """Install ``MaskSecrets`` on keystoneauth's HTTP trace logger (once)."""
    logger = logging.getLogger(SDK_HTTP_LOGGER)
    if not any(isinstance(f, MaskSecrets) for f in logger.filters):
        logger.addFilter(MaskSecrets())


def parse_version(text: str) -> Version:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor or 0)


def version_text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _highest(proxy: Any, service: str) -> Version:
    """The highest microversion the service advertises (keystoneauth caches discovery)."""
    data = proxy.get_endpoint_data()
    highest = data.max_microversion if data is not None else None
    if not highest:
        raise cb.CloudError(f"The cloud's {service} service advertises no microversions.")
    return int(highest[0]), int(highest[1])


def _pin(proxy: Any, wanted: Version, service: str) -> Version:
    """Make every call of ``proxy`` send ``wanted``, lowered to what the cloud offers."""
    chosen = min(wanted, _highest(proxy, service))
    if chosen < wanted:
        log.warning(
            "openstack_microversion_lowered service=%s to=%s", service, version_text(chosen)
        )
    proxy.default_microversion = version_text(chosen)
    return chosen


def get_json(proxy: Any, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """GET through an SDK proxy (auth, endpoint, microversion) and return the JSON body."""
    response = proxy.get(path, params=dict(params or {}))
    sdk_exc.raise_from_response(response)
    body: dict[str, Any] = response.json()
    return body


def list_all(proxy: Any, path: str, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Follow limit/marker paging; one request unless a page comes back full."""
    query = {**params, "limit": PAGE_SIZE}
    items: list[dict[str, Any]] = []
    while True:
        body = get_json(proxy, path, query)
        page = body.get(key) or []
        items.extend(page)
        has_next = any(link.get("rel") == "next" for link in body.get(f"{key}_links") or [])
        if not page or not (has_next or len(page) >= PAGE_SIZE):
            return items
        query["marker"] = page[-1]["id"]


async def _outlast(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` to finish, whatever cancellations arrive meanwhile."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future])
    if not future.cancelled():
        future.exception()  # retrieved: its outcome belongs to nobody now


class SdkRunner:
    """The thread pool, the shared Connection and the boundary where SDK errors are mapped."""

    def __init__(
        self,
        factory: Callable[[], Connection],
        *,
        call_timeout: float,
        pool_size: int,
        compute_microversion: str,
        volume_microversion: str,
    ) -> None:
        self._factory = factory
        self._call_timeout = call_timeout
        self._pool_size = pool_size
        self._wanted_compute = parse_version(compute_microversion)
        self._wanted_volume = parse_version(volume_microversion)
        self._pool: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.extend_microversion: str | None = None
        mask_sdk_http_logs()

    async def start(self) -> None:
        """Start the pool and warm the connection; a cloud that is down now is retried later."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="openstack")
        try:
            await self.run(lambda conn: None)
        except cb.CloudUnavailable as exc:
            log.warning("openstack_unreachable_at_start error=%s", exc.message)

    async def close(self) -> None:
        """Wait for the calls in flight, stop the pool and close the connection."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in the pool.

        Cancelling the caller (a step timeout, a shutdown) cannot stop the thread, so the
        cancellation waits until the call has ended: whoever retries the step afterwards never
        overlaps a request that is still on its way (two POST /servers, two servers).
        """
        if self._pool is None:
            raise RuntimeError("OpenStackBackend.start() has not been awaited")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._call, fn)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await _outlast(future)
            raise

    def _call(self, fn: Callable[[Connection], T]) -> T:
        try:
            conn = self._ready()
            try:
                return fn(conn)
            except Exception as exc:
                if not is_unauthorized(exc):
                    raise
                log.info("openstack_unauthorized_retry")
                return fn(conn)
        except Exception as exc:
            mapped = map_exception(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _ready(self) -> Connection:
        conn = self._conn
        if conn is not None:
            return conn
        with self._lock:
            if self._conn is None:
                self._conn = self._warm()
            return self._conn

    def _warm(self) -> Connection:
        """Connect, authenticate and discover every service once; pin the microversions."""
        conn = self._factory()
        try:
            self._tune_session(conn)
            compute = _pin(conn.compute, self._wanted_compute, "compute")
            if compute < MIN_COMPUTE:
                raise cb.CloudError(
                    f"Nova microversion {version_text(compute)} is too old: sog-api needs "
                    f"{version_text(MIN_COMPUTE)} (server tags at create)."
                )
            volume = _pin(conn.block_storage, self._wanted_volume, "volume")
            extend = volume
            if _highest(conn.block_storage, "volume") >= EXTEND_IN_USE:
                extend = max(volume, EXTEND_IN_USE)
            else:
                log.warning("openstack_no_in_use_extend volume=%s", version_text(volume))
            self.extend_microversion = version_text(extend)
            conn.image.get_endpoint_data()
        except BaseException:
            conn.close()
            raise
        log.info(
            "openstack_ready compute=%s volume=%s", version_text(compute), version_text(volume)
        )
        return conn

    def _tune_session(self, conn: Connection) -> None:
        """Apply the call timeout; let urllib3 keep one connection per pool thread."""
        session = conn.session
        session.timeout = self._call_timeout
        adapter = TCPKeepAliveAdapter(
            pool_maxsize=max(10, self._pool_size),
            tls_ciphers=getattr(session, "tls_ciphers", None),
            tls_min_version=getattr(session, "tls_min_version", None),
        )
        for scheme in ("https://", "http://"):
            session.session.mount(scheme, adapter)
