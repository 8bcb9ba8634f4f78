"""Nova behaviour of the fake: server create, actions, delete and volume attachments."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from tests.fake_openstack.model import ZONES, ApiError, Bdm, FakeCloud, Flavor, Server, Volume

Microversion = tuple[int, int]

_ATTACHABLE = ("active", "paused", "stopped", "resized")


def _invalid_state(action: str, server: Server) -> ApiError:
    if server.task_state is not None:
        where = f"task_state {server.task_state}"
    else:
        where = f"vm_state {server.vm_state}"
    return ApiError(409, f"Cannot '{action}' instance {server.id} while it is in {where}")


def _require(server: Server, action: str, vm_states: tuple[str, ...]) -> None:
    if server.task_state is not None or server.vm_state not in vm_states:
        raise _invalid_state(action, server)


def _step(server: Server, fn: Callable[[float], None]) -> Callable[[float], None]:
    """Wrap a scheduled transition so it is dropped once a newer operation started."""
    op = server.op

    def run(when: float) -> None:
        if server.op != op or server.deleted:
            return
        fn(when)
        server.updated = when

    return run


def _begin(cloud: FakeCloud, server: Server, task_state: str | None) -> None:
    server.op += 1
    server.task_state = task_state
    server.updated = cloud.now()


# create


def _validate_networks(networks: Any, mv: Microversion) -> Any:
    if networks is None:
        if mv >= (2, 37):
            raise ApiError(
                400, "Invalid input for field/attribute networks. 'networks' is required"
            )
        return "auto"
    if networks in ("auto", "none"):
        return networks
    if isinstance(networks, list) and all(
        isinstance(n, dict) and ("uuid" in n or "port" in n) for n in networks
    ):
        return networks
    raise ApiError(400, "Invalid input for field/attribute networks.")


def _validate_tags(tags: Any, mv: Microversion) -> list[str]:
    if tags is None:
        return []
    if mv < (2, 52):
        raise ApiError(400, "Additional properties are not allowed ('tags' was unexpected)")
    if not isinstance(tags, list) or len(tags) > 50:
        raise ApiError(400, "Invalid input for field/attribute tags.")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > 60 or "/" in tag or "," in tag:
            raise ApiError(400, f"Invalid input for field/attribute tags. Value: {tag!r}")
    return list(tags)


def _validate_metadata(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > 128:
        raise ApiError(400, "Invalid input for field/attribute metadata.")
    for key, value in metadata.items():
        if not isinstance(value, str) or not key or len(key) > 255 or len(value) > 255:
            raise ApiError(400, f"Invalid input for field/attribute metadata. Key: {key!r}")
    return dict(metadata)


def _validate_user_data(user_data: Any) -> str | None:
    if user_data is None:
        return None
    try:
        base64.b64decode(user_data, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ApiError(400, "User data needs to be valid base 64.") from None
    if len(user_data) > 65535:
        raise ApiError(400, "Invalid input for field/attribute user_data.")
    return str(user_data)


def _boot_volumes(cloud: FakeCloud, spec: dict[str, Any]) -> list[Bdm]:
    bdms: list[Bdm] = []
    for index, raw in enumerate(spec.get("block_device_mapping_v2") or []):
        if raw.get("source_type") != "volume" or raw.get("destination_type") != "volume":
            raise ApiError(400, "Block Device Mapping is Invalid: the fake only boots volumes.")
        volume = cloud.volumes.get(str(raw.get("uuid")))
        if volume is None:
            raise ApiError(
                400, f"Block Device Mapping is Invalid: failed to get volume {raw.get('uuid')}."
            )
        if volume.status != "available":
            raise ApiError(
                400,
                f"Invalid volume: volume '{volume.id}' status must be 'available'. "
                f"Currently in '{volume.status}'",
            )
        boot_index = raw.get("boot_index")
        boot_index = None if boot_index in (None, "none", -1) else int(boot_index)
        device = "/dev/vda" if boot_index == 0 else f"/dev/vd{chr(ord('b') + index)}"
        delete = bool(raw.get("delete_on_termination", False))
        bdms.append(Bdm(volume.id, device, boot_index, delete))
    if not spec.get("imageRef") and not any(b.boot_index == 0 for b in bdms):
        raise ApiError(
            400,
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block "
            "device mapping combination is not valid.",
        )
    return bdms


def _check_server_quota(cloud: FakeCloud, flavor: Flavor) -> None:
    live = [s for s in cloud.servers.values() if not s.deleted]
    cloud.check_quota("instances", 1, len(live))
    cloud.check_quota("cores", flavor.vcpus, sum(s.flavor.vcpus for s in live))
    cloud.check_quota("ram", flavor.ram, sum(s.flavor.ram for s in live))


def create_server(cloud: FakeCloud, body: Any, mv: Microversion) -> Server:
    """Validate a POST /servers body and start building the server."""
    spec = body.get("server") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise ApiError(400, "Invalid input for field/attribute server.")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ApiError(400, "Invalid input for field/attribute name.")
    if "flavorRef" not in spec:
        raise ApiError(400, "Invalid input for field/attribute flavorRef.")
    flavor = cloud.flavor(spec["flavorRef"])
    networks = _validate_networks(spec.get("networks"), mv)
    tags = _validate_tags(spec.get("tags"), mv)
    metadata = _validate_metadata(spec.get("metadata"))
    user_data = _validate_user_data(spec.get("user_data"))
    zone = spec.get("availability_zone") or ZONES[0]
    if zone not in ZONES:
        raise ApiError(400, "The requested availability zone is not available")
    if spec.get("key_name") is not None:
        raise ApiError(400, "Invalid key_name provided.")
    if spec.get("imageRef") and str(spec["imageRef"]) not in cloud.images:
        raise ApiError(400, f"Image {spec['imageRef']} could not be found.")
    bdms = _boot_volumes(cloud, spec)
    _check_server_quota(cloud, flavor)
    now = cloud.now()
    server = Server(
        id=str(uuid.uuid4()),
        name=name,
        flavor=flavor,
        created=now,
        updated=now,
        metadata=metadata,
        tags=tags,
        user_data=user_data,
        admin_pass=spec.get("adminPass") or secrets.token_urlsafe(9),
        availability_zone=zone,
        networks=networks,
        bdms=bdms,
        description=spec.get("description"),
    )
    cloud.servers[server.id] = server
    for bdm in bdms:
        _set_volume(cloud, bdm.volume_id, "reserved", now)
    error = cloud.pending_server_errors.pop(0) if cloud.pending_server_errors else None
    _schedule_build(cloud, server, error)
    return server


def _set_volume(cloud: FakeCloud, volume_id: str, status: str, when: float) -> Volume | None:
    volume = cloud.volumes.get(volume_id)
    if volume is not None:
        volume.status = status
        volume.updated = when
    return volume


def _record_attachment(volume: Volume, server: Server, bdm: Bdm, when: float) -> None:
    volume.attachments = [
        {
            "server_id": server.id,
            "attachment_id": bdm.attachment_id,
            "attached_at": when,
            "host_name": None,
            "volume_id": volume.id,
            "device": bdm.device,
            "id": volume.id,
        }
    ]


def _schedule_build(cloud: FakeCloud, server: Server, error: str | None) -> None:
    def bdm_stage(when: float) -> None:
        server.task_state = "block_device_mapping"
        for bdm in server.bdms:
            _set_volume(cloud, bdm.volume_id, "attaching", when)

    def network_stage(when: float) -> None:
        server.task_state = "networking"
        if server.networks != "none":
            server.addresses = _addresses(cloud, server.networks)

    def spawn_stage(when: float) -> None:
        server.task_state = "spawning"
        for bdm in server.bdms:
            volume = _set_volume(cloud, bdm.volume_id, "in-use", when)
            if volume is not None:
                _record_attachment(volume, server, bdm, when)

    def finish(when: float) -> None:
        server.task_state = None
        if error is not None:
            server.vm_state = "error"
            server.fault = {"code": 500, "message": error, "created": when}
            for bdm in server.bdms:
                volume = _set_volume(cloud, bdm.volume_id, "available", when)
                if volume is not None:
                    volume.attachments = []
            return
        server.vm_state = "active"
        server.power_state = 1
        server.launched_at = when

    for fraction, stage in ((0.2, bdm_stage), (0.4, network_stage), (0.6, spawn_stage)):
        cloud.later("build", _step(server, stage), fraction)
    cloud.later("build", _step(server, finish))


def _addresses(cloud: FakeCloud, networks: Any) -> dict[str, list[dict[str, Any]]]:
    names = (
        ["private"]
        if networks == "auto"
        else [f"net-{n.get('uuid', 'port')[:8]}" for n in networks]
    )
    return {
        name: [
            {
                "addr": cloud.allocate_ip(),
                "version": 4,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:" + secrets.token_bytes(3).hex(":"),
            }
        ]
        for name in names
    }


# actions


def _simple(
    cloud: FakeCloud,
    server: Server,
    action: str,
    allowed: tuple[str, ...],
    plan: tuple[str, str, str, int],
) -> None:
    task, delay, vm_state, power = plan
    _require(server, action, allowed)
    _begin(cloud, server, task)

    def done(when: float) -> None:
        server.task_state = None
        server.vm_state = vm_state
        server.power_state = power

    cloud.later(delay, _step(server, done))


def _reboot(cloud: FakeCloud, server: Server, arg: Any) -> None:
    kind = arg.get("type") if isinstance(arg, dict) else None
    if kind not in ("SOFT", "HARD"):
        raise ApiError(400, "Invalid input for field/attribute type.")
    if kind == "SOFT":
        allowed, task, delay = ("active",), "rebooting", "reboot"
    else:  # like Nova: a hard reboot also recovers ERROR, if the server ever ran on a host
        allowed = ("active", "stopped", "paused", "error")
        task, delay = "rebooting_hard", "hard_reboot"
        if server.launched_at is None and server.task_state is None:
            raise ApiError(409, f"Instance {server.id} is not ready")
    _require(server, "reboot", allowed)
    server.vm_state = "active"
    _begin(cloud, server, task)

    def done(when: float) -> None:
        server.task_state = None
        server.power_state = 1

    cloud.later(delay, _step(server, done))


def _resize(cloud: FakeCloud, server: Server, arg: Any) -> None:
    if not isinstance(arg, dict) or "flavorRef" not in arg:
        raise ApiError(400, "Invalid input for field/attribute resize.")
    flavor = cloud.flavor(arg["flavorRef"])
    _require(server, "resize", ("active", "stopped"))
    if flavor.id == server.flavor.id:
        raise ApiError(400, "When resizing, instances must change flavor!")
    noop = cloud.pending_resize_noops > 0
    cloud.pending_resize_noops -= int(noop)
    original_vm_state = server.vm_state
    _begin(cloud, server, "resize_prep")
    stages = ("resize_migrating", "resize_migrated", "resize_finish")
    for fraction, task in zip((0.25, 0.5, 0.75), stages, strict=True):
        cloud.later(
            "resize", _step(server, lambda when, t=task: setattr(server, "task_state", t)), fraction
        )

    def done(when: float) -> None:
        server.task_state = None
        if noop:  # the compute host gave up without a fault, as Nova sometimes does
            server.vm_state = original_vm_state
            return
        server.old_flavor, server.flavor = server.flavor, flavor
        server.vm_state = "resized"

    cloud.later("resize", _step(server, done))


def _confirm_resize(cloud: FakeCloud, server: Server) -> None:
    _require(server, "confirmResize", ("resized",))
    if server.confirming:  # Nova finds no migration left to confirm
        raise ApiError(400, "Instance has not been resized.")
    _begin(cloud, server, None)
    server.confirming = True

    def done(when: float) -> None:
        server.vm_state = "active" if server.power_state == 1 else "stopped"
        server.old_flavor, server.confirming = None, False

    cloud.later("confirm_resize", _step(server, done))


# action name -> (allowed vm_states, task_state while busy, delay name, final vm_state, power)
_SIMPLE_ACTIONS = {
    "pause": (("active",), "pausing", "pause", "paused", 3),
    "unpause": (("paused",), "unpausing", "unpause", "active", 1),
    "os-stop": (("active", "error"), "powering-off", "stop", "stopped", 4),
    "os-start": (("stopped",), "powering-on", "start", "active", 1),
}


def server_action(cloud: FakeCloud, server: Server, body: Any) -> int:
    """Run one POST /servers/{id}/action; return the HTTP status."""
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body")
    ((name, arg),) = body.items()
    if name in _SIMPLE_ACTIONS:
        allowed, task, delay, vm_state, power = _SIMPLE_ACTIONS[name]
        _simple(cloud, server, name, allowed, (task, delay, vm_state, power))
        return 202
    if name == "reboot":
        _reboot(cloud, server, arg)
        return 202
    if name == "resize":
        _resize(cloud, server, arg)
        return 202
    if name == "confirmResize":
        _confirm_resize(cloud, server)
        return 204
    raise ApiError(400, f"There is no such action: {name}")


# delete


def delete_server(cloud: FakeCloud, server: Server) -> None:
    """Start deleting a server (a repeated delete while deleting is accepted, like Nova)."""
    if server.task_state == "deleting":
        return
    _begin(cloud, server, "deleting")
    cloud.later("delete", _step(server, lambda when: finish_delete(cloud, server, when)))


def finish_delete(cloud: FakeCloud, server: Server, when: float) -> None:
    """Mark a server deleted and release its volumes."""
    server.op += 1
    server.vm_state = "deleted"
    server.task_state = None
    server.power_state = 0
    server.deleted_at = when
    server.updated = when
    for bdm in server.bdms:
        volume = cloud.volumes.get(bdm.volume_id)
        if volume is None:
            continue
        if bdm.delete_on_termination:
            cloud.deleted_volumes[volume.id] = cloud.volumes.pop(volume.id)
        else:
            volume.status, volume.attachments, volume.updated = "available", [], when


# attachments


def attach_volume(cloud: FakeCloud, server: Server, body: Any) -> Bdm:
    """Attach a volume; the device is chosen by the fake (libvirt ignores the requested one)."""
    spec = body.get("volumeAttachment") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or not spec.get("volumeId"):
        raise ApiError(400, "Invalid input for field/attribute volumeAttachment.")
    requested = spec.get("device")
    if requested is not None and not str(requested).startswith("/dev/"):
        raise ApiError(400, f"The supplied device path ({requested}) is invalid.")
    _require(server, "attach_volume", _ATTACHABLE)
    volume = cloud.volumes.get(str(spec["volumeId"]))
    if volume is None:
        raise ApiError(404, f"Volume {spec['volumeId']} could not be found.")
    if volume.status != "available":
        raise ApiError(
            400,
            f"Invalid volume: volume '{volume.id}' status must be 'available'. "
            f"Currently in '{volume.status}'",
        )
    used = {b.device for b in server.bdms}
    device = next(f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used)
    bdm = Bdm(volume.id, device, None, bool(spec.get("delete_on_termination", False)))
    server.bdms.append(bdm)
    _set_volume(cloud, volume.id, "attaching", cloud.now())

    def done(when: float) -> None:
        if volume.status == "attaching" and bdm in server.bdms:
            volume.status, volume.updated = "in-use", when
            _record_attachment(volume, server, bdm, when)

    cloud.later("volume_attach", done)
    return bdm


def detach_volume(cloud: FakeCloud, server: Server, volume_id: str) -> None:
    """Detach a volume that is attached to the server."""
    bdm = next((b for b in server.bdms if b.volume_id == volume_id), None)
    if bdm is None:
        raise ApiError(404, f"Volume {volume_id} is not attached to instance {server.id}")
    if bdm.boot_index == 0:
        raise ApiError(400, "Cannot detach a root device volume")
    _require(server, "detach_volume", _ATTACHABLE)
    volume = _set_volume(cloud, volume_id, "detaching", cloud.now())
    server.bdms.remove(bdm)

    def done(when: float) -> None:
        if volume is not None and volume.status == "detaching":
            volume.status, volume.attachments, volume.updated = "available", [], when

    cloud.later("volume_detach", done)
