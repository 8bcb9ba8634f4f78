"""JSON bodies shaped like the Nova, Cinder and Glance API reference samples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fake_openstack.model import Bdm, Flavor, Image, Server, Volume

Microversion = tuple[int, int]

PROJECT_ID = "6f70656e737461636b20342065766572"
USER_ID = "c853ca26e8ea4797"


def iso_seconds(t: float | None) -> str | None:
    """Nova's ``created``/``updated`` and Glance's timestamps: seconds, with a Z."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(t: float | None) -> str | None:
    """Cinder's timestamps and Nova's launched_at: microseconds, no zone (UTC)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _links(base: str, kind: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"href": f"{base}/{kind}/{item_id}", "rel": "self"},
        {
            "href": f"{base}/{kind}/{item_id}".replace("/v2.1", "").replace("/v3", ""),
            "rel": "bookmark",
        },
    ]


def flavor_summary(flavor: Flavor, base: str, mv: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.id,
        "name": flavor.name,
        "links": _links(base, "flavors", flavor.id),
    }
    if mv >= (2, 55):
        body["description"] = None
    return body


def flavor_detail(flavor: Flavor, base: str, mv: Microversion) -> dict[str, Any]:
    body = flavor_summary(flavor, base, mv)
    body.update(
        {
            "ram": flavor.ram,
            "vcpus": flavor.vcpus,
            "disk": flavor.disk,
            "swap": 0 if mv >= (2, 75) else "",
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": True,
            "rxtx_factor": 1.0,
        }
    )
    if mv >= (2, 61):
        body["extra_specs"] = {}
    return body


def _server_flavor(flavor: Flavor, base: str, mv: Microversion) -> dict[str, Any]:
    if mv < (2, 47):
        return {
            "id": flavor.id,
            "links": [{"href": f"{base}/flavors/{flavor.id}", "rel": "bookmark"}],
        }
    return {
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "ephemeral": 0,
        "swap": 0,
        "original_name": flavor.name,
        "extra_specs": {},
    }


def server_summary(server: Server, base: str) -> dict[str, Any]:
    return {"id": server.id, "name": server.name, "links": _links(base, "servers", server.id)}


def server_detail(server: Server, base: str, mv: Microversion) -> dict[str, Any]:
    """One server as GET /servers/{id} or /servers/detail show it at microversion ``mv``."""
    body: dict[str, Any] = {
        **server_summary(server, base),
        "accessIPv4": "",
        "accessIPv6": "",
        "addresses": server.addresses,
        "created": iso_seconds(server.created),
        "updated": iso_seconds(server.updated),
        "flavor": _server_flavor(server.flavor, base, mv),
        "hostId": "" if server.vm_state == "building" else "9f0c1e" + server.id[:8],
        "image": "",
        "key_name": server.key_name,
        "metadata": server.metadata,
        "config_drive": "",
        "OS-DCF:diskConfig": "AUTO",
        "OS-EXT-AZ:availability_zone": server.availability_zone,
        "OS-EXT-STS:power_state": server.power_state,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "os-extended-volumes:volumes_attached": [
            {"id": b.volume_id, "delete_on_termination": b.delete_on_termination}
            for b in server.bdms
        ],
        "OS-SRV-USG:launched_at": iso_micro(server.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(server.deleted_at),
        "progress": 0,
        "security_groups": [{"name": "default"}],
        "status": server.status,
        "tenant_id": PROJECT_ID,
        "user_id": USER_ID,
    }
    if server.fault is not None and server.vm_state in ("error", "deleted"):
        fault = server.fault
        body["fault"] = {
            "code": fault["code"],
            "created": iso_seconds(fault["created"]),
            "message": fault["message"],
        }
    if mv >= (2, 9):
        body["locked"] = False
    if mv >= (2, 19):
        body["description"] = server.description
    if mv >= (2, 26):
        body["tags"] = server.tags
    if mv >= (2, 63):
        body["trusted_image_certificates"] = None
    if mv >= (2, 73):
        body["locked_reason"] = None
    if mv >= (2, 96):
        body["pinned_availability_zone"] = None
    return body


def attachment(server: Server, bdm: Bdm, mv: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "device": bdm.device,
        "serverId": server.id,
        "volumeId": bdm.volume_id,
    }
    if mv < (2, 89):
        body["id"] = bdm.volume_id
    else:
        body["attachment_id"] = bdm.attachment_id
        body["bdm_uuid"] = bdm.attachment_id
    if mv >= (2, 70):
        body["tag"] = None
    if mv >= (2, 79):
        body["delete_on_termination"] = bdm.delete_on_termination
    return body


def volume_detail(volume: Volume, base: str, mv: Microversion) -> dict[str, Any]:
    """One volume as GET /volumes/{id} or /volumes/detail show it at microversion ``mv``."""
    body: dict[str, Any] = {
        "attachments": [
            {**a, "attached_at": iso_micro(a["attached_at"])} for a in volume.attachments
        ],
        "availability_zone": volume.availability_zone,
        "bootable": "true" if volume.bootable else "false",
        "consistencygroup_id": None,
        "created_at": iso_micro(volume.created),
        "updated_at": iso_micro(volume.updated),
        "description": volume.description,
        "encrypted": False,
        "id": volume.id,
        "links": _links(base, "volumes", volume.id),
        "metadata": volume.metadata,
        "migration_status": None,
        "multiattach": False,
        "name": volume.name,
        "os-vol-tenant-attr:tenant_id": PROJECT_ID,
        "replication_status": None,
        "size": volume.size,
        "snapshot_id": None,
        "source_volid": None,
        "status": volume.status,
        "user_id": USER_ID,
        "volume_type": "__DEFAULT__",
    }
    if volume.image is not None:
        body["volume_image_metadata"] = {
            "image_id": volume.image.id,
            "image_name": volume.image.name,
            "min_disk": str(volume.image.min_disk),
            "container_format": "bare",
            "disk_format": "qcow2",
        }
    if mv >= (3, 13):
        body["group_id"] = None
    if mv >= (3, 21):
        body["provider_id"] = None
    if mv >= (3, 48):
        body["service_uuid"] = None
        body["shared_targets"] = True
    if mv >= (3, 61):
        body["cluster_name"] = None
    if mv >= (3, 63):
        body["volume_type_id"] = "5fed9d7c-401d-46e2-8e80-f30c70cb7e1d"
    if mv >= (3, 65):
        body["consumes_quota"] = True
    return body


def volume_summary(volume: Volume, base: str) -> dict[str, Any]:
    return {"id": volume.id, "name": volume.name, "links": _links(base, "volumes", volume.id)}


def image(image: Image) -> dict[str, Any]:
    """One image as Glance v2 shows it."""
    return {
        "id": image.id,
        "name": image.name,
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "tags": [],
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": image.min_disk,
        "min_ram": 0,
        "size": image.size,
        "virtual_size": None,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "os_distro": image.os_distro,
        "owner": PROJECT_ID,
        "created_at": iso_seconds(image.created),
        "updated_at": iso_seconds(image.created),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }
