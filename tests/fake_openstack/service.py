"""FakeOpenStack: the fake cloud served by uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from tests.fake_openstack import nova
from tests.fake_openstack.app import FakeApp
from tests.fake_openstack.faults import Faults, JournalEntry
from tests.fake_openstack.identity import REGION, Credentials, Identity
from tests.fake_openstack.model import FakeCloud, Flavor, Image, Server, Volume
from tests.fake_openstack.views import PROJECT_ID


class FakeOpenStack:
    """A Keystone v3 + Nova + Cinder + Glance subset on loopback, for tests through real HTTP.

    ``delay_scale`` multiplies the base durations of state transitions (a build takes 3 s at
    scale 1.0). ``quotas`` may limit ``instances``, ``cores``, ``ram``, ``volumes``, ``gigabytes``.
    """

    def __init__(
        self,
        *,
        delay_scale: float = 0.01,
        delays: dict[str, float] | None = None,
        flavors: list[Flavor] | None = None,
        images: list[Image] | None = None,
        quotas: dict[str, int] | None = None,
        compute_max_microversion: str = "2.96",
        volume_max_microversion: str = "3.71",
        token_ttl: float = 3600.0,
        credentials: Credentials | None = None,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.cloud = FakeCloud(
            delay_scale=delay_scale, delays=delays, flavors=flavors, images=images, quotas=quotas
        )
        self.identity = Identity(self.credentials, token_ttl)
        self.faults = Faults(self.cloud)
        self._app = FakeApp(
            self.cloud,
            self.identity,
            self.faults,
            compute_max=compute_max_microversion,
            volume_max=volume_max_microversion,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle

    def start(self) -> FakeOpenStack:
        """Serve on 127.0.0.1 with a free port; return once it accepts connections.

        After ``stop()``, ``start()`` serves again on the same port with the same state (a cloud
        that was down for a while).
        """
        config = uvicorn.Config(
            self._app.asgi,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            lifespan="off",
            access_log=False,
            log_level="warning",
            log_config=None,
            timeout_keep_alive=120,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openstack", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenStack did not start")
            time.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving (open connections are closed)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # how to reach it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity"

    project_id = PROJECT_ID
    region_name = REGION

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``openstack.connect`` that reach this fake and nothing else."""
        creds = self.credentials
        return {
            "auth_url": self.auth_url,
            "username": creds.username,
            "password": creds.password,
            "project_name": creds.project_name,
            "user_domain_name": creds.domain_name,
            "project_domain_name": creds.domain_name,
            "region_name": REGION,
            "load_envvars": False,
            "load_yaml_config": False,
            **overrides,
        }

    def os_environ(self) -> dict[str, str]:
        """``OS_*`` variables for ``openstack.connect(cloud=None)`` (e.g. via monkeypatch.setenv)."""
        creds = self.credentials
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_AUTH_TYPE": "password",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_USERNAME": creds.username,
            "OS_PASSWORD": creds.password,
            "OS_PROJECT_NAME": creds.project_name,
            "OS_USER_DOMAIN_NAME": creds.domain_name,
            "OS_PROJECT_DOMAIN_NAME": creds.domain_name,
            "OS_REGION_NAME": REGION,
        }

    # journal

    @property
    def journal(self) -> list[JournalEntry]:
        """Every request received so far, oldest first (a live list)."""
        return self._app.journal

    def requests(self, method: str | None = None, path: str | None = None) -> list[JournalEntry]:
        """Journal entries with this method and whose path matches the regex ``path``."""
        pattern = re.compile(path) if path else None
        return [
            e
            for e in list(self._app.journal)
            if (method is None or e.method == method.upper())
            and (pattern is None or pattern.search(e.path))
        ]

    def clear_journal(self) -> None:
        self._app.journal.clear()

    def on_request(self, listener: Callable[[JournalEntry], None]) -> Callable[[], None]:
        """Call ``listener(entry)`` for every request, after it was handled and journaled but
        before its answer is sent (so the client has not seen it yet); return a remover."""
        self._app.listeners.append(listener)
        return lambda: self._app.listeners.remove(listener)

    @property
    def auth_count(self) -> int:
        """How many tokens Keystone issued."""
        return self.identity.auth_count

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (clients get 401 and must re-authenticate)."""
        self.identity.revoke_all()

    # state

    @property
    def delays(self) -> dict[str, float]:
        """Base durations in seconds by transition (live and mutable; scaled by delay_scale)."""
        return self.cloud.delays

    def settle(self) -> None:
        """Finish every pending transition now (builds, resizes, deletions, ...)."""
        with self.cloud.lock:
            self.cloud.settle()

    @property
    def servers(self) -> dict[str, Server]:
        """A snapshot of the servers, deleted ones included (``vm_state == 'deleted'``)."""
        with self.cloud.lock:
            self.cloud.advance()
            return copy.deepcopy(self.cloud.servers)

    @property
    def volumes(self) -> dict[str, Volume]:
        """A snapshot of the volumes that exist."""
        with self.cloud.lock:
            self.cloud.advance()
            return copy.deepcopy(self.cloud.volumes)

    @property
    def deleted_volumes(self) -> dict[str, Volume]:
        with self.cloud.lock:
            self.cloud.advance()
            return copy.deepcopy(self.cloud.deleted_volumes)

    @property
    def flavors(self) -> list[Flavor]:
        return list(self.cloud.flavors.values())

    @property
    def images(self) -> list[Image]:
        return list(self.cloud.images.values())

    # behind our back

    def external_delete_server(self, server_id: str) -> None:
        """Delete a server at once, as an operator would, outside the service."""
        with self.cloud.lock:
            self.cloud.advance()
            nova.finish_delete(self.cloud, self.cloud.server(server_id), self.cloud.now())

    def external_stop_server(self, server_id: str) -> None:
        """Power a server off at once (vm_state stopped, status SHUTOFF)."""
        self._external(server_id, vm_state="stopped", power_state=4)

    def external_error_server(self, server_id: str, message: str = "Host failure") -> None:
        """Put a server in ERROR with a fault, as a failed host would."""
        with self.cloud.lock:
            fault = {"code": 500, "message": message, "created": self.cloud.now()}
            self._external(server_id, vm_state="error", fault=fault)

    def external_delete_volume(self, volume_id: str) -> None:
        """Remove a volume at once, detaching it from any server."""
        with self.cloud.lock:
            self.cloud.advance()
            volume = self.cloud.volume(volume_id)
            for server in self.cloud.servers.values():
                server.bdms = [b for b in server.bdms if b.volume_id != volume_id]
            self.cloud.deleted_volumes[volume_id] = self.cloud.volumes.pop(volume.id)

    def _external(self, server_id: str, **changes: Any) -> None:
        with self.cloud.lock:
            self.cloud.advance()
            server = self.cloud.server(server_id)
            server.op += 1
            server.task_state = None
            for name, value in changes.items():
                setattr(server, name, value)
            server.updated = self.cloud.now()
