"""In-memory state of the fake cloud: flavors, images, Nova servers and Cinder volumes.

Every mutation happens under ``FakeCloud.lock``. Transitions that take time in a real cloud
(BUILD -> ACTIVE, pausing, resizing, creating, ...) are scheduled events that run lazily, the
next time anybody looks (a request, or the test reading the state), stamped with their own
scheduled time; so there is no background thread and a test can ``settle()`` everything at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Base durations in seconds, multiplied by ``delay_scale``.
DEFAULT_DELAYS: dict[str, float] = {
    "volume_create": 2.0,
    "volume_attach": 0.5,
    "volume_detach": 0.5,
    "volume_extend": 1.0,
    "volume_delete": 1.0,
    "build": 3.0,
    "pause": 1.0,
    "unpause": 1.0,
    "stop": 1.0,
    "start": 1.0,
    "reboot": 2.0,
    "hard_reboot": 3.0,
    "resize": 4.0,
    "confirm_resize": 0.5,
    "delete": 1.0,
}

ZONES = ("nova",)


class ApiError(Exception):
    """An error answer: status, message and optional extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int  # MiB
    disk: int  # GiB


@dataclass
class Image:
    id: str
    name: str
    min_disk: int = 1
    size: int = 1 << 30
    os_distro: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class Bdm:
    volume_id: str
    device: str
    boot_index: int | None
    delete_on_termination: bool = False
    attachment_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Server:
    id: str
    name: str
    flavor: Flavor
    created: float
    updated: float
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    key_name: str | None = None
    user_data: str | None = None
    admin_pass: str | None = None
    availability_zone: str = "nova"
    networks: Any = "auto"
    vm_state: str = "building"
    task_state: str | None = "scheduling"
    power_state: int = 0
    addresses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fault: dict[str, Any] | None = None
    bdms: list[Bdm] = field(default_factory=list)
    old_flavor: Flavor | None = None
    confirming: bool = False  # a confirmResize under way (vm_state stays "resized" meanwhile)
    launched_at: float | None = None
    deleted_at: float | None = None
    description: str | None = None
    op: int = 0  # bumped by every new operation; stale scheduled steps check it

    @property
    def deleted(self) -> bool:
        return self.vm_state == "deleted"

    @property
    def status(self) -> str:
        return server_status(self.vm_state, self.task_state)


@dataclass
class Volume:
    id: str
    name: str | None
    size: int
    created: float
    updated: float | None
    status: str = "creating"
    availability_zone: str = "nova"
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    image: Image | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    op: int = 0

    @property
    def bootable(self) -> bool:
        return self.image is not None


_BY_TASK = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
}
_BY_VM_STATE = {
    "building": "BUILD",
    "active": "ACTIVE",
    "stopped": "SHUTOFF",
    "paused": "PAUSED",
    "resized": "VERIFY_RESIZE",
    "error": "ERROR",
    "deleted": "DELETED",
}


def server_status(vm_state: str, task_state: str | None) -> str:
    """Derive Nova's ``status`` from ``vm_state`` and ``task_state`` like nova.api does."""
    if vm_state in ("active", "stopped") and task_state in _BY_TASK:
        return _BY_TASK[task_state]
    return _BY_VM_STATE.get(vm_state, "UNKNOWN")


def default_flavors() -> list[Flavor]:
    """Return Nova's classic m1.* flavors plus those the default catalogue maps to."""
    classic = [
        Flavor("1", "m1.tiny", 1, 512, 1),
        Flavor("2", "m1.small", 1, 2048, 20),
        Flavor("3", "m1.medium", 2, 4096, 40),
        Flavor("4", "m1.large", 4, 8192, 80),
    ]
    shapes = [
        ("meteor", 1, 1),
        ("asteroid", 2, 2),
        ("comet", 2, 4),
        ("nova", 4, 8),
        ("pulsar", 4, 16),
        ("nebula", 8, 16),
        ("quasar", 8, 32),
        ("galaxy", 16, 64),
    ]
    ns = uuid.UUID("6f1b1c1e-0000-4000-8000-00000000f1a0")
    return classic + [
        Flavor(str(uuid.uuid5(ns, name)), f"sog.{name}", vcpus, ram * 1024, 0)
        for name, vcpus, ram in shapes
    ]


def default_images() -> list[Image]:
    """Return the images the default catalogue maps to (by name), with stable ids."""
    names = [
        ("fedora-24", "fedora"),
        ("ubuntu-16.04-x64", "ubuntu"),
        ("ubuntu-14.04-x64", "ubuntu"),
        ("ubuntu-15.10-x64", "ubuntu"),
        ("centos-7.2-x64", "centos"),
        ("cirros-0.6.2-x86_64-disk", "cirros"),
    ]
    ns = uuid.UUID("6f1b1c1e-0000-4000-8000-000000000000")
    return [
        Image(str(uuid.uuid5(ns, name)), name, 1 if distro == "cirros" else 10, 1 << 30, distro)
        for name, distro in names
    ]


class Scheduler:
    """A heap of (time, callback) run lazily when the clock passes them."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, callback: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), callback))

    def run_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            when, _, callback = heapq.heappop(self._heap)
            callback(when)

    def run_all(self, now: float) -> None:
        while self._heap:
            when, _, callback = heapq.heappop(self._heap)
            callback(min(when, now))


class FakeCloud:
    """All the fake cloud's resources; callers hold ``lock`` and call ``advance()`` first."""

    def __init__(
        self,
        *,
        delay_scale: float = 0.01,
        delays: dict[str, float] | None = None,
        flavors: list[Flavor] | None = None,
        images: list[Image] | None = None,
        quotas: dict[str, int] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.delay_scale = delay_scale
        self.delays = {**DEFAULT_DELAYS, **(delays or {})}
        self.flavors = {f.id: f for f in (flavors or default_flavors())}
        self.images = {i.id: i for i in (images or default_images())}
        self.quotas = dict(quotas or {})
        self.servers: dict[str, Server] = {}
        self.volumes: dict[str, Volume] = {}
        self.deleted_volumes: dict[str, Volume] = {}
        self.scheduler = Scheduler()
        self.pending_server_errors: list[str] = []
        self.pending_volume_errors: list[str] = []
        self.pending_resize_noops = 0
        self._ips = itertools.count(10)

    # clock and scheduling

    def now(self) -> float:
        return time.time()

    def advance(self) -> None:
        self.scheduler.run_due(self.now())

    def settle(self) -> None:
        self.scheduler.run_all(self.now())

    def later(self, kind: str, callback: Callable[[float], None], fraction: float = 1.0) -> None:
        """Run ``callback`` after ``fraction`` of the scaled delay named ``kind``."""
        delay = self.delays[kind] * self.delay_scale * fraction
        self.scheduler.at(self.now() + delay, callback)

    # look-ups

    def server(self, server_id: str) -> Server:
        server = self.servers.get(server_id)
        if server is None or server.deleted:
            raise ApiError(404, f"Instance {server_id} could not be found.")
        return server

    def volume(self, volume_id: str) -> Volume:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise ApiError(404, f"Volume {volume_id} could not be found.")
        return volume

    def flavor(self, ref: str) -> Flavor:
        flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
        flavor = self.flavors.get(flavor_id)
        if flavor is None:
            raise ApiError(400, "Invalid flavorRef provided.")
        return flavor

    def image_by_ref(self, ref: str) -> Image:
        """Resolve an image id, URL or unique name the way Cinder's volume create does."""
        key = str(ref).rstrip("/").rsplit("/", 1)[-1]
        if key in self.images:
            return self.images[key]
        named = [i for i in self.images.values() if i.name == ref]
        if len(named) > 1:
            raise ApiError(
                409, f"Multiple matches found for '{ref}', use an ID to be more specific."
            )
        if not named:
            raise ApiError(400, "Invalid image identifier or unable to access requested image.")
        return named[0]

    def check_quota(self, resource: str, requested: int, used: int) -> None:
        limit = self.quotas.get(resource)
        if limit is not None and used + requested > limit:
            status = 413 if resource in ("volumes", "gigabytes") else 403
            raise ApiError(
                status,
                f"Quota exceeded for {resource}: Requested {requested}, "
                f"but already used {used} of {limit} {resource}",
            )

    def allocate_ip(self) -> str:
        n = next(self._ips)
        return f"10.20.{n // 250}.{n % 250 + 2}"
