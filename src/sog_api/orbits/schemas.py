"""Query models and response shapes of the orbit endpoints (the seed's names, alphabetical)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from sog_api.http import (
    MAX_DB_INT,
    AnyCase,
    FreeText,
    Printable,
    QueryBool,
    QueryModel,
    Timestamp,
    WholeNumber,
    refuse_unprintable,
)
from sog_api.orbits.models import ORBIT_STATUSES

OrbitStatus = Literal[
    "CREATING", "BOOTING", "RUNNING", "PAUSING", "PAUSED", "REBOOTING", "RESIZING", "STOPPED",
    "DELETING", "ERROR",
]  # fmt: skip
assert set(OrbitStatus.__args__) == set(ORBIT_STATUSES)  # type: ignore[attr-defined]

_KEY_TYPES = (
    "ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)  # fmt: skip
EXAMPLE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"
)
_KEY_LINE = re.compile(r"^(\S+) ([A-Za-z0-9+/]+={0,3})(?: .*)?$")
AROUND_KEY = " \t\r\n"
"""ASCII spaces, tabs and line breaks around a key line (the newline a .pub file ends with) are
dropped; nothing else is."""


def _openssh_key(value: str) -> str:
    """Accept one OpenSSH public key line of printable characters whose blob names the same key
    type, without the ASCII whitespace around it."""
    value = refuse_unprintable(value.strip(AROUND_KEY))
    match = _KEY_LINE.match(value)
    if not match or match.group(1) not in _KEY_TYPES:
        raise ValueError("must be an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA... user@host'")
    try:
        blob = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the key's base64 part does not decode") from exc
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length].decode("latin-1") != match.group(1):
        raise ValueError("the key's blob does not match its type")
    return value


SshKey = Annotated[str, Field(max_length=16384), AfterValidator(_openssh_key)]
Description = Annotated[FreeText, Field(max_length=4096)]
VmName = Annotated[Printable, Field(min_length=1, max_length=255)]
TransactionId = Annotated[Printable, Field(min_length=1, max_length=64)]
DbId = Annotated[WholeNumber, Field(ge=1, le=MAX_DB_INT)]


class OrbitListQuery(QueryModel):
    status: Annotated[OrbitStatus | None, AnyCase] = Field(
        None, description="Only orbits in this status (any case)"
    )
    vm_name: str | None = Field(None, max_length=255, description="Only orbits with this name")
    limit: WholeNumber = Field(100, ge=1, le=1000, description="Page size")
    offset: WholeNumber = Field(0, ge=0, le=MAX_DB_INT, description="Items to skip")


class OrbitCreateQuery(QueryModel):
    vm_name: VmName = Field(
        description="Name of the orbit, printable characters; `name-1`, `name-2`... when"
        " vm_count > 1",
        examples=["web"],
    )
    vm_count: WholeNumber = Field(
        ge=1, le=1000, description="How many orbits to make (1 to the maximum)", examples=[1]
    )
    flavor: DbId = Field(description="Flavor id, from GET /vms/flavors/", examples=[2])
    root_size: WholeNumber = Field(
        ge=1, le=65536, description="Root volume size in GB", examples=[20]
    )
    availability_zone: str | None = Field(
        None, max_length=255, description="Availability zone", examples=["nova"]
    )
    ssh_key_value: SshKey = Field(
        description="OpenSSH public key line, printable characters (spaces, tabs and line"
        " breaks around it are dropped)",
        examples=[EXAMPLE_KEY],
    )
    admin_pwd: SecretStr = Field(
        min_length=1, max_length=255, description="Administrator password (never stored in clear)"
    )
    transaction_id: TransactionId = Field(
        description="Idempotency key: a retry returns the first result", examples=["order-1001"]
    )
    delete_root: QueryBool = Field(False, description="Delete the root volume with the orbit")
    booting_image: DbId | None = Field(
        None, description="Image id (exactly one of image or volume)", examples=[3]
    )
    booting_volume: DbId | None = Field(None, description="Id of a detached bootable volume")
    description: Description | None = Field(
        None, description="Free text: printable characters, tabs and line breaks"
    )


class OrbitPutQuery(QueryModel):
    vm_name: VmName = Field(
        description="New name (reaches the cloud's server too)", examples=["xxx"]
    )
    description: Description | None = Field(
        None, description="Free text: printable characters, tabs and line breaks", examples=["hi"]
    )
    delete_root: QueryBool = Field(False, description="Delete the root volume with the orbit")


class OrbitPatchQuery(QueryModel):
    vm_name: VmName | None = Field(None, examples=["xxx"])
    description: Description | None = Field(
        None, description="Free text: printable characters, tabs and line breaks", examples=["hi"]
    )
    delete_root: QueryBool | None = Field(None, description="Delete the root volume with the orbit")


class OrbitResizeQuery(QueryModel):
    flavor_id: DbId = Field(
        description="Flavor to grow to, from GET /vms/{id}/resize", examples=[5]
    )


class OrbitActionQuery(QueryModel):
    action: Literal["start", "pause", "reboot"] = Field(
        description="What to do", examples=["reboot"]
    )
    orbit_id: DbId = Field(description="The orbit's id", examples=[20])
    transaction_id: TransactionId | None = Field(None, description="Optional idempotency key")


class VolumeModelRead(BaseModel):
    created_at: Timestamp
    id: int
    is_root: bool
    nickname: str
    partition: str | None
    size: str
    size_gb: int
    source_image: str | None
    status: str


class OrbitSummary(BaseModel):
    availability_zone: str | None
    created_at: Timestamp
    delete_root: bool
    description: str | None
    fault: str | None
    flavor_id: int
    id: int
    image_id: int | None
    ipaddr: str | None
    is_active: bool
    operation_id: str | None
    progress: int
    ram: int
    status: str
    updated_at: Timestamp
    vcpus: int
    vm_name: str


class OrbitDetail(BaseModel):
    admin_pwd: None = Field(None, description="Always null: the password is never returned")
    availability_zone: str | None
    created_at: Timestamp
    delete_root: bool
    description: str | None
    fault: str | None
    flavor_id: int
    id: int
    image_id: int | None
    ipaddr: str | None
    is_active: bool
    operation_id: str | None
    progress: int
    ram: int
    ssh_key_value: str
    status: str
    updated_at: Timestamp
    vcpus: int
    vm_name: str
    volume_model: list[VolumeModelRead]
