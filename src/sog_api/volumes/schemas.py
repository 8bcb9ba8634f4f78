"""Query models and response shapes of the volume endpoints (the seed's names, alphabetical)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from sog_api.http import MAX_DB_INT, AnyCase, Printable, QueryModel, Timestamp, WholeNumber
from sog_api.orbits.schemas import DbId, OrbitSummary, TransactionId
from sog_api.volumes.models import VOLUME_STATUSES

VolumeStatus = Literal[
    "CREATING", "AVAILABLE", "ATTACHING", "RUNNING", "DETACHING", "RESIZING", "DELETING", "ERROR",
]  # fmt: skip
assert set(VolumeStatus.__args__) == set(VOLUME_STATUSES)  # type: ignore[attr-defined]

Nickname = Annotated[Printable, Field(min_length=1, max_length=255)]
Device = Annotated[str, Field(pattern=r"^/dev/(x?vd|sd|hd)[a-z]{1,2}$", max_length=32)]


class VolumeListQuery(QueryModel):
    status: Annotated[VolumeStatus | None, AnyCase] = Field(
        None, description="Only volumes in this status (any case)"
    )
    limit: WholeNumber = Field(100, ge=1, le=1000, description="Page size")
    offset: WholeNumber = Field(0, ge=0, le=MAX_DB_INT, description="Items to skip")


class VolumeCreateQuery(QueryModel):
    nickname: Nickname = Field(description="Name of the volume, printable characters")
    capacity: WholeNumber = Field(
        ge=1, le=MAX_DB_INT, description="Size in GB: a capacity from GET /volume/templates"
    )
    attach_to: DbId | None = Field(None, description="Id of an orbit to attach the new volume to")
    partition: Device | None = Field(
        None,
        description="Device wished for the attachment, e.g. `/dev/vdb` (a hint: the cloud chooses;"
        " ignored without `attach_to`)",
    )
    transaction_id: TransactionId | None = Field(
        None,
        description="Idempotency key: a repeat with the same parameters answers 200 with the"
        " first answer instead of making a second volume",
        examples=["vol-order-1001"],
    )


class VolumePutQuery(QueryModel):
    nickname: Nickname


class VolumePatchQuery(QueryModel):
    nickname: Nickname | None = None


class VolumeResizeQuery(QueryModel):
    template_id: DbId = Field(description="Template to grow to, from GET /volume/{id}/resize/")


class VolumeRead(BaseModel):
    attached_to: str | None = Field(description="`vm_name` of the orbit it is attached to")
    created_at: Timestamp
    fault: str | None = Field(description="Why the last operation failed, if it did")
    id: int
    is_bootable: bool
    is_root: bool
    nickname: str
    operation_id: str | None
    orbit_id: int | None
    partition: str | None = Field(description="Device the cloud reports, e.g. `/dev/vdb`")
    size: str = Field(description='Size as the seed writes it, e.g. "20 GB"')
    size_gb: int
    source_image: str | None = Field(description="Name of the image it was made from")
    status: VolumeStatus
    updated_at: Timestamp


class VolumeDetail(VolumeRead):
    virtual_machine: OrbitSummary | None = Field(description="The orbit it is attached to")
