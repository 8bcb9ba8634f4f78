"""The cloud backend interface and the data types it speaks.

Two implementations exist: ``simulator`` (in-process, the embedded default) and ``openstack``
(Nova, Cinder, Glance and Keystone through openstacksdk). The worker and the poller only ever
see the types below; no SDK object crosses this boundary.

Error hierarchy::

    CloudError                 anything the backend could not do
    +-- CloudNotFound          the server, volume or attachment does not exist (permanent)
    +-- CloudConflict          the resource is in a state that refuses the call (permanent)
    +-- CloudQuotaExceeded     the cloud's quota refused the call (permanent)
    +-- CloudBadRequest        the cloud rejected the request as malformed (permanent)
    +-- CloudUnavailable       connect errors, timeouts, 5xx, 429 (transient: retry later)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class CloudError(Exception):
    """A backend call failed."""

    transient = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class CloudNotFound(CloudError):
    """The addressed cloud resource does not exist."""


class CloudConflict(CloudError):
    """The cloud resource is in a state that refuses the call."""


class CloudQuotaExceeded(CloudError):
    """The cloud's own quota refused the call."""


class CloudBadRequest(CloudError):
    """The cloud rejected the request as malformed."""


class CloudUnavailable(CloudError):
    """The cloud could not be reached or answered with a transient error."""

    transient = True


# Nova server statuses (derived by Nova from vm_state and task_state).
SERVER_BUILD = "BUILD"
SERVER_ACTIVE = "ACTIVE"
SERVER_PAUSED = "PAUSED"
SERVER_SHUTOFF = "SHUTOFF"
SERVER_REBOOT = "REBOOT"
SERVER_HARD_REBOOT = "HARD_REBOOT"
SERVER_RESIZE = "RESIZE"
SERVER_VERIFY_RESIZE = "VERIFY_RESIZE"
SERVER_ERROR = "ERROR"
SERVER_DELETED = "DELETED"

# Cinder volume statuses.
VOLUME_CREATING = "creating"
VOLUME_AVAILABLE = "available"
VOLUME_ATTACHING = "attaching"
VOLUME_IN_USE = "in-use"
VOLUME_DETACHING = "detaching"
VOLUME_EXTENDING = "extending"
VOLUME_DELETING = "deleting"
VOLUME_ERROR = "error"
VOLUME_ERROR_EXTENDING = "error_extending"
VOLUME_DELETED = "deleted"  # reported by listings for volumes that are gone


@dataclass(frozen=True)
class ServerSpec:
    """What the worker asks the cloud to boot."""

    name: str
    flavor_ref: str
    boot_volume_id: str
    tag: str
    availability_zone: str | None = None
    key_value: str | None = None
    admin_pass: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerInfo:
    """A server as the cloud reports it."""

    id: str
    name: str
    status: str
    flavor_ref: str
    task_state: str | None = None
    ip: str | None = None
    fault: str | None = None
    progress: int | None = None
    tag: str | None = None
    updated_at: datetime | None = None
    availability_zone: str | None = None


@dataclass(frozen=True)
class AttachmentInfo:
    """One attachment of a volume to a server."""

    server_id: str
    volume_id: str
    device: str | None


@dataclass(frozen=True)
class VolumeInfo:
    """A volume as the cloud reports it."""

    id: str
    name: str
    status: str
    size_gb: int
    bootable: bool = False
    image_ref: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()
    tag: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class CatalogItem:
    """A flavor or image the cloud offers (for catalogue checks)."""

    id: str
    name: str


class CloudBackend(Protocol):
    """The async interface every cloud implementation provides.

    Every mutating call is safe to repeat after a crash when combined with the ``find_*_by_tag``
    look-ups: the worker tags each resource it makes with the operation id and asks for the tag
    before making it again.
    """

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # volumes
    async def create_volume(
        self,
        *,
        name: str,
        size_gb: int,
        tag: str,
        image_ref: str | None = None,
        availability_zone: str | None = None,
    ) -> VolumeInfo: ...

    async def find_volume_by_tag(self, tag: str) -> VolumeInfo | None: ...

    async def get_volume(self, volume_id: str) -> VolumeInfo: ...

    async def extend_volume(self, volume_id: str, size_gb: int) -> None: ...

    async def delete_volume(self, volume_id: str) -> None: ...

    async def list_volumes(self, changes_since: datetime | None = None) -> list[VolumeInfo]: ...

    # servers
    async def create_server(self, spec: ServerSpec) -> ServerInfo: ...

    async def find_server_by_tag(self, tag: str) -> ServerInfo | None: ...

    async def get_server(self, server_id: str) -> ServerInfo: ...

    async def rename_server(self, server_id: str, name: str) -> None: ...

    async def pause_server(self, server_id: str) -> None: ...

    async def unpause_server(self, server_id: str) -> None: ...

    async def start_server(self, server_id: str) -> None: ...

    async def stop_server(self, server_id: str) -> None: ...

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None: ...

    async def resize_server(self, server_id: str, flavor_ref: str) -> None: ...

    async def confirm_resize(self, server_id: str) -> None: ...

    async def delete_server(self, server_id: str) -> None: ...

    async def list_servers(self, changes_since: datetime | None = None) -> list[ServerInfo]: ...

    # attachments
    async def attach_volume(
        self, server_id: str, volume_id: str, device: str | None = None
    ) -> AttachmentInfo: ...

    async def detach_volume(self, server_id: str, volume_id: str) -> None: ...

    # catalogue
    async def list_flavors(self) -> list[CatalogItem]: ...

    async def list_images(self) -> list[CatalogItem]: ...
