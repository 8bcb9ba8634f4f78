"""Cinder behaviour of the fake: volume create, extend, delete and listing filters."""

from __future__ import annotations

import ast
import uuid
from typing import Any

from tests.fake_openstack.model import ZONES, ApiError, FakeCloud, Volume

Microversion = tuple[int, int]

_DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")


def create_volume(cloud: FakeCloud, body: Any) -> Volume:
    """Validate a POST /volumes body and start creating the volume."""
    spec = body.get("volume") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise ApiError(400, "Missing required element 'volume' in request body.")
    size = spec.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ApiError(400, "Invalid input for field/attribute size.")
    zone = spec.get("availability_zone") or ZONES[0]
    if zone not in ZONES:
        raise ApiError(400, f"Availability zone '{zone}' is invalid.")
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ApiError(400, "Invalid input for field/attribute metadata.")
    image = cloud.image_by_ref(spec["imageRef"]) if spec.get("imageRef") else None
    if image is not None and size < image.min_disk:
        raise ApiError(
            400,
            f"Volume size {size}GB cannot be smaller than the image minDisk size {image.min_disk}GB.",
        )
    live = list(cloud.volumes.values())
    cloud.check_quota("volumes", 1, len(live))
    cloud.check_quota("gigabytes", size, sum(v.size for v in live))
    volume = Volume(
        id=str(uuid.uuid4()),
        name=spec.get("name"),
        size=size,
        created=cloud.now(),
        updated=None,
        availability_zone=zone,
        description=spec.get("description"),
        metadata=dict(metadata),
        image=image,
    )
    cloud.volumes[volume.id] = volume
    error = cloud.pending_volume_errors.pop(0) if cloud.pending_volume_errors else None

    def done(when: float) -> None:
        if volume.status == "creating":
            volume.status = "error" if error is not None else "available"
            volume.updated = when

    cloud.later("volume_create", done)
    return volume


def extend_volume(cloud: FakeCloud, volume: Volume, arg: Any, mv: Microversion) -> None:
    """os-extend: in-use volumes only from microversion 3.42, like Cinder."""
    new_size = arg.get("new_size") if isinstance(arg, dict) else None
    if not isinstance(new_size, int) or isinstance(new_size, bool):
        raise ApiError(400, "Invalid input for field/attribute new_size.")
    if volume.status == "in-use" and mv < (3, 42):
        raise ApiError(
            400, "Invalid volume: Volume status must be 'available' to extend, currently in-use."
        )
    if volume.status not in ("available", "in-use"):
        raise ApiError(
            400,
            f"Invalid volume: Volume status must be 'available' or 'in-use' to extend, "
            f"currently {volume.status}.",
        )
    if new_size <= volume.size:
        raise ApiError(
            400,
            f"New size for extend must be greater than current size. "
            f"(current: {volume.size}, extended: {new_size}).",
        )
    cloud.check_quota(
        "gigabytes", new_size - volume.size, sum(v.size for v in cloud.volumes.values())
    )
    previous = volume.status
    volume.status, volume.updated = "extending", cloud.now()

    def done(when: float) -> None:
        if volume.status == "extending":
            volume.status, volume.size, volume.updated = previous, new_size, when

    cloud.later("volume_extend", done)


def volume_action(cloud: FakeCloud, volume: Volume, body: Any, mv: Microversion) -> None:
    """Run one POST /volumes/{id}/action."""
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body")
    ((name, arg),) = body.items()
    if name == "os-extend":
        extend_volume(cloud, volume, arg, mv)
        return
    if name == "os-reset_status" and isinstance(arg, dict) and arg.get("status"):
        volume.status, volume.updated = str(arg["status"]), cloud.now()
        return
    raise ApiError(400, f"There is no such action: {name}")


def delete_volume(cloud: FakeCloud, volume: Volume) -> None:
    """Start deleting a detached volume in a deletable state."""
    if volume.status not in _DELETABLE or volume.attachments:
        raise ApiError(
            400,
            "Invalid volume: Volume status must be available or error or error_restoring or "
            "error_extending or error_managing and must not be migrating, attached, belong to "
            "a group, have snapshots, awaiting a transfer, or be disassociated from snapshots "
            "after volume transfer.",
        )
    volume.status, volume.updated = "deleting", cloud.now()

    def done(when: float) -> None:
        if cloud.volumes.get(volume.id) is volume:
            volume.updated = when
            cloud.deleted_volumes[volume.id] = cloud.volumes.pop(volume.id)

    cloud.later("volume_delete", done)


def filter_volumes(volumes: list[Volume], query: dict[str, str]) -> list[Volume]:
    """Apply the Cinder list filters the fake understands (name, status, metadata)."""
    if "name" in query:
        volumes = [v for v in volumes if v.name == query["name"]]
    if "status" in query:
        volumes = [v for v in volumes if v.status == query["status"]]
    if "metadata" in query:
        try:
            wanted = ast.literal_eval(query["metadata"])
        except (ValueError, SyntaxError):
            raise ApiError(400, f"Invalid metadata filter: {query['metadata']}") from None
        if not isinstance(wanted, dict):
            raise ApiError(400, f"Invalid metadata filter: {query['metadata']}")
        volumes = [v for v in volumes if all(v.metadata.get(k) == w for k, w in wanted.items())]
    return volumes
