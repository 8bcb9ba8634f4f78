"""Convert Nova and Cinder JSON bodies (as the API reference shows them) to our data types.

The backend reads raw bodies rather than SDK resources: building an SDK ``Server`` costs ~4 ms of
CPU (GIL-bound), which a poller listing a thousand servers cannot afford.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sog_api.cloud.base import AttachmentInfo, ServerInfo, VolumeInfo

TAG_KEY = "sog_operation_id"


def parse_time(value: Any) -> datetime | None:
    """Parse Nova's ``...Z`` and Cinder's zone-less (UTC) timestamps to aware datetimes."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_since(moment: datetime) -> str:
    """Render a ``changes-since`` value, floored to the second.

    Nova stores ``updated_at`` with whole seconds on MySQL, so a sub-second bound could miss a
    change made in the same second; flooring returns a few extra rows instead.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pick_ip(addresses: Any) -> str | None:
    """The address to show: a floating IPv4, else the first fixed IPv4, else any address."""
    if not isinstance(addresses, Mapping):
        return None
    entries = [
        e for name in sorted(addresses) for e in addresses[name] or [] if isinstance(e, dict)
    ]
    for wanted in ("floating", "fixed", None):
        for entry in entries:
            if entry.get("version", 4) != 4:
                continue
            if wanted is None or entry.get("OS-EXT-IPS:type") == wanted:
                return entry.get("addr")
    return next((e.get("addr") for e in entries if e.get("addr")), None)


def flavor_name(flavor: Any, names_by_id: Mapping[str, str]) -> str:
    """The server's flavor name: embedded ``original_name`` (2.47+), else looked up by id."""
    if not isinstance(flavor, Mapping):
        return ""
    if flavor.get("original_name"):
        return str(flavor["original_name"])
    flavor_id = str(flavor.get("id") or "")
    return names_by_id.get(flavor_id, flavor_id)


def server_info(body: Mapping[str, Any], names_by_id: Mapping[str, str]) -> ServerInfo:
    """Build a ServerInfo from one Nova server body."""
    fault = body.get("fault")
    metadata = body.get("metadata") or {}
    return ServerInfo(
        id=str(body["id"]),
        name=str(body.get("name") or ""),
        status=str(body.get("status") or "UNKNOWN").upper(),
        flavor_ref=flavor_name(body.get("flavor"), names_by_id),
        task_state=body.get("OS-EXT-STS:task_state"),
        ip=pick_ip(body.get("addresses")),
        fault=fault.get("message") if isinstance(fault, Mapping) else None,
        progress=None,
        tag=metadata.get(TAG_KEY) if isinstance(metadata, Mapping) else None,
        updated_at=parse_time(body.get("updated")),
        availability_zone=body.get("OS-EXT-AZ:availability_zone") or None,
    )


def _bootable(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def volume_info(body: Mapping[str, Any]) -> VolumeInfo:
    """Build a VolumeInfo from one Cinder volume body."""
    volume_id = str(body["id"])
    image_meta = body.get("volume_image_metadata") or {}
    metadata = body.get("metadata") or {}
    attachments = tuple(
        AttachmentInfo(
            server_id=str(a.get("server_id")),
            volume_id=str(a.get("volume_id") or volume_id),
            device=a.get("device"),
        )
        for a in body.get("attachments") or []
        if isinstance(a, Mapping) and a.get("server_id")
    )
    return VolumeInfo(
        id=volume_id,
        name=str(body.get("name") or ""),
        status=str(body.get("status") or "unknown"),
        size_gb=int(body.get("size") or 0),
        bootable=_bootable(body.get("bootable")),
        image_ref=image_meta.get("image_id") if isinstance(image_meta, Mapping) else None,
        attachments=attachments,
        tag=metadata.get(TAG_KEY) if isinstance(metadata, Mapping) else None,
        updated_at=parse_time(body.get("updated_at")) or parse_time(body.get("created_at")),
    )


def cloud_init_user_data(public_key: str) -> str:
    """Base64 cloud-config that installs ``public_key`` for the image's default user."""
    key = json.dumps(" ".join(public_key.split()))  # a JSON string is a YAML scalar
    document = f"#cloud-config\nssh_authorized_keys:\n  - {key}\n"
    return base64.b64encode(document.encode()).decode("ascii")
