"""The stages of volume operations: create (then attach), attach, detach, extend and delete.

A volume operation owns its volume while the volume is in the transitional status the request
set and ``volume.operation_id`` names it; only then does a step change the volume's status. (A
deleted orbit releases its volumes on its own, which ends the ownership.) When the cloud refuses
a call, nothing changed there, so the volume keeps its settled status and shows why in ``fault``;
when the cloud reports an error, or the outcome is unknown, the volume goes to ``ERROR``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.cloud import base as cb
from sog_api.db.base import utcnow
from sog_api.operations.models import Operation
from sog_api.orbits import models as om
from sog_api.orbits.models import Orbit
from sog_api.volumes import models as vm
from sog_api.volumes.models import Volume
from sog_api.worker.context import ActionContext
from sog_api.worker.flows import Apply, Band, Flow, Snapshot, Step, locked, register

# Cloud statuses of a volume in the middle of something: an action waits for them to pass.
_CLOUD_BUSY = frozenset(
    {cb.VOLUME_CREATING, cb.VOLUME_ATTACHING, cb.VOLUME_DETACHING, cb.VOLUME_EXTENDING,
     cb.VOLUME_DELETING, "reserved", "maintenance"}
)  # fmt: skip
_SETTLED = frozenset({cb.VOLUME_AVAILABLE, cb.VOLUME_IN_USE})
# Errors by which the cloud refuses a call: nothing changed there.
_REFUSALS = (cb.CloudConflict, cb.CloudBadRequest, cb.CloudNotFound, cb.CloudQuotaExceeded)
_RELEASED = "The Virtual Machine was deleted meanwhile; the volume was released with it."
_NOT_IN_CLOUD = "The volume does not exist in the cloud."


async def _volume(session: AsyncSession, op: Operation) -> Volume:
    volume = await locked(session, Volume, op.volume_id)
    assert volume is not None
    return volume


def _ours(volume: Volume, op: Operation) -> bool:
    """Whether this operation still owns the volume (see the module docstring)."""
    return volume.operation_id == op.id and volume.status in vm.VOLUME_TRANSITIONAL


def _settle(volume: Volume, op: Operation, status: str) -> None:
    if _ours(volume, op):
        volume.status, volume.fault = status, None
        if status == vm.V_AVAILABLE:
            volume.orbit_id, volume.partition = None, None


def _is_error(status: str) -> bool:
    return status.startswith("error")  # error, error_extending, error_deleting, ...


def _attachment(info: cb.VolumeInfo, server_id: str | None) -> cb.AttachmentInfo | None:
    return next((a for a in info.attachments if a.server_id == server_id), None)


def _changed_since_asked(info: cb.VolumeInfo, op: Operation) -> bool:
    """The cloud touched the volume after we asked: a settled status now is its answer."""
    return info.updated_at is not None and info.updated_at > op.stage_started_at


def _keep(op: Operation, status: str, message: str) -> Apply:
    """The cloud refused: the volume keeps its settled ``status`` and tells why in ``fault``."""

    async def apply(session: AsyncSession) -> None:
        volume = await _volume(session, op)
        if _ours(volume, op):
            _settle(volume, op, status)
            volume.fault = message

    return apply


def _refused(op: Operation, status: str, exc: cb.CloudError) -> Step:
    message = f"The cloud refused: {exc.message}"
    return Step.fail(message, apply=_keep(op, status, message))


async def _orbit_server(session: AsyncSession, op: Operation) -> str | None:
    orbit = await session.get(Orbit, op.orbit_id) if op.orbit_id else None
    return orbit.server_id if orbit else None


async def _watched(session: AsyncSession, op: Operation) -> list[str]:
    """The cloud id of the operation's volume (what every volume wait stage watches)."""
    volume = await session.get(Volume, op.volume_id)
    return [volume.backend_volume_id] if volume and volume.backend_volume_id else []


async def volume_failed(session: AsyncSession, op: Operation, message: str) -> None:
    volume = await _volume(session, op)
    if _ours(volume, op):
        volume.status, volume.fault = vm.V_ERROR, message


# -- create ------------------------------------------------------------------------------------


async def create_volume(ctx: ActionContext) -> Step:
    volume = await ctx.load(Volume, ctx.op.volume_id)
    assert volume is not None
    if volume.backend_volume_id is not None:
        return Step.wait("create_wait")
    info = await ctx.cloud.find_volume_by_tag(ctx.op.id)
    if info is None:
        info = await ctx.cloud.create_volume(
            name=f"sog-volume-{volume.id}", size_gb=volume.size_gb, tag=ctx.op.id,
            availability_zone=volume.availability_zone,
        )  # fmt: skip
    backend_id = info.id

    async def record(session: AsyncSession) -> None:
        (await _volume(session, ctx.op)).backend_volume_id = backend_id

    return Step.wait("create_wait", record)


async def check_created(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    volume = await _volume(session, op)
    info = snap.volumes.get(volume.backend_volume_id or "")
    if info is None:
        return None
    if _is_error(info.status) or info.status == cb.VOLUME_DELETED:
        return Step.fail(f"The cloud could not create the volume (status {info.status}).")
    if info.status != cb.VOLUME_AVAILABLE:
        return None
    if op.orbit_id is None:
        _settle(volume, op, vm.V_AVAILABLE)
        return Step.done()
    if _ours(volume, op):
        volume.status, volume.orbit_id = vm.V_ATTACHING, op.orbit_id
    return Step.next("attach")


# -- attach ------------------------------------------------------------------------------------


def _attached(op: Operation, device: str | None) -> Apply:
    async def apply(session: AsyncSession) -> None:
        volume = await _volume(session, op)
        if _ours(volume, op):
            _settle(volume, op, vm.V_RUNNING)
            volume.partition = device

    return apply


async def attach(ctx: ActionContext) -> Step:
    volume = await ctx.load(Volume, ctx.op.volume_id)
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    assert volume is not None
    if not _ours(volume, ctx.op):
        return Step.fail(_RELEASED)
    if volume.backend_volume_id is None:
        return Step.fail(_NOT_IN_CLOUD)
    if orbit is None or orbit.deleted_at is not None or orbit.status == om.DELETING:
        message = "The Virtual Machine was deleted before the volume could be attached."
        return Step.fail(message, apply=_keep(ctx.op, vm.V_AVAILABLE, message))
    if orbit.status in om.TRANSITIONAL or orbit.server_id is None:
        return Step.retry(f"waiting for the Virtual Machine ({orbit.status}) to settle", 1.0)
    info = await ctx.cloud.get_volume(volume.backend_volume_id)
    attachment = _attachment(info, orbit.server_id)
    if info.status == cb.VOLUME_IN_USE and attachment is not None:  # an earlier attempt did it
        return Step.done(_attached(ctx.op, attachment.device))
    if info.status == cb.VOLUME_ATTACHING:
        return Step.wait("attach_wait")
    if info.status in _CLOUD_BUSY:
        return Step.retry(f"the cloud volume is {info.status}", 1.0)
    try:
        await ctx.cloud.attach_volume(
            orbit.server_id, volume.backend_volume_id, ctx.op.params.get("partition")
        )
    except _REFUSALS as exc:
        return _refused(ctx.op, vm.V_AVAILABLE, exc)
    return Step.wait("attach_wait")


async def check_attached(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    volume = await _volume(session, op)
    info = snap.volumes.get(volume.backend_volume_id or "")
    if info is None:
        return None
    attachment = _attachment(info, await _orbit_server(session, op))
    if info.status == cb.VOLUME_IN_USE and attachment is not None:
        if _ours(volume, op):
            _settle(volume, op, vm.V_RUNNING)
            volume.partition = attachment.device  # the device the cloud chose, not the wish
        return Step.done()
    if _is_error(info.status):
        return Step.fail(f"The cloud could not attach the volume (status {info.status}).")
    if not _ours(volume, op):
        return Step.fail(_RELEASED)
    if info.status == cb.VOLUME_AVAILABLE and _changed_since_asked(info, op):
        message = "The cloud did not attach the volume."
        return Step.fail(message, apply=_keep(op, vm.V_AVAILABLE, message))
    return None


register(
    Flow(
        kind="volume.create",
        actions={"create": create_volume, "attach": attach},
        checks={
            "create_wait": ("volume", check_created),
            "attach_wait": ("volume", check_attached),
        },
        bands={
            "create": Band(0, 5),
            "create_wait": Band(5, 60, "volume_create"),
            "attach": Band(60, 65),
            "attach_wait": Band(65, 99, "attach"),
        },
        on_fail=volume_failed,
        watch_ids=_watched,
    )
)

register(
    Flow(
        kind="volume.attach",
        actions={"attach": attach},
        checks={"attach_wait": ("volume", check_attached)},
        bands={"attach": Band(0, 10), "attach_wait": Band(10, 99, "attach")},
        on_fail=volume_failed,
        watch_ids=_watched,
    )
)


# -- detach ------------------------------------------------------------------------------------


def _detached(op: Operation) -> Apply:
    async def apply(session: AsyncSession) -> None:
        _settle(await _volume(session, op), op, vm.V_AVAILABLE)

    return apply


async def detach(ctx: ActionContext) -> Step:
    volume = await ctx.load(Volume, ctx.op.volume_id)
    assert volume is not None
    if not _ours(volume, ctx.op):
        return Step.fail(_RELEASED)
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    server_id = orbit.server_id if orbit else None
    if volume.backend_volume_id is None or server_id is None:  # nothing attached in the cloud
        return Step.done(_detached(ctx.op))
    info = await ctx.cloud.get_volume(volume.backend_volume_id)
    if info.status == cb.VOLUME_AVAILABLE and _attachment(info, server_id) is None:
        return Step.done(_detached(ctx.op))
    if info.status == cb.VOLUME_DETACHING:
        return Step.wait("detach_wait")
    if info.status in _CLOUD_BUSY:
        return Step.retry(f"the cloud volume is {info.status}", 1.0)
    try:
        await ctx.cloud.detach_volume(server_id, volume.backend_volume_id)
    except cb.CloudNotFound:  # not attached to that server (any more)
        return Step.done(_detached(ctx.op))
    except (cb.CloudConflict, cb.CloudBadRequest) as exc:
        return _refused(ctx.op, vm.V_RUNNING, exc)
    return Step.wait("detach_wait")


async def check_detached(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    volume = await _volume(session, op)
    info = snap.volumes.get(volume.backend_volume_id or "")
    if info is None:
        return None
    attachment = _attachment(info, await _orbit_server(session, op))
    if info.status == cb.VOLUME_AVAILABLE and attachment is None:
        _settle(volume, op, vm.V_AVAILABLE)
        return Step.done()
    if _is_error(info.status):
        return Step.fail(f"The cloud could not detach the volume (status {info.status}).")
    if not _ours(volume, op):
        return Step.fail(_RELEASED)
    if info.status == cb.VOLUME_IN_USE and _changed_since_asked(info, op):
        message = "The cloud did not detach the volume."
        return Step.fail(message, apply=_keep(op, vm.V_RUNNING, message))
    return None


register(
    Flow(
        kind="volume.detach",
        actions={"detach": detach},
        checks={"detach_wait": ("volume", check_detached)},
        bands={"detach": Band(0, 10), "detach_wait": Band(10, 99, "detach")},
        on_fail=volume_failed,
        watch_ids=_watched,
    )
)


# -- extend ------------------------------------------------------------------------------------


def _extended(op: Operation, size_gb: int) -> Apply:
    async def apply(session: AsyncSession) -> None:
        volume = await _volume(session, op)
        volume.size_gb = size_gb  # a fact of the cloud, even when the volume was released
        _settle(volume, op, op.params["from_status"])

    return apply


async def extend(ctx: ActionContext) -> Step:
    volume = await ctx.load(Volume, ctx.op.volume_id)
    assert volume is not None
    if not _ours(volume, ctx.op):
        return Step.fail(_RELEASED)
    if volume.backend_volume_id is None:
        return Step.fail(_NOT_IN_CLOUD)
    want, came_from = int(ctx.op.params["size_gb"]), ctx.op.params["from_status"]
    info = await ctx.cloud.get_volume(volume.backend_volume_id)
    if info.status in _SETTLED and info.size_gb >= want:  # an earlier attempt did it
        return Step.done(_extended(ctx.op, info.size_gb))
    if info.status == cb.VOLUME_EXTENDING:
        return Step.wait("extend_wait")
    if info.status in _CLOUD_BUSY:
        return Step.retry(f"the cloud volume is {info.status}", 1.0)
    try:
        await ctx.cloud.extend_volume(volume.backend_volume_id, want)
    except _REFUSALS as exc:
        return _refused(ctx.op, came_from, exc)  # e.g. no in-use extend: keep size and status
    return Step.wait("extend_wait")


async def check_extended(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    volume = await _volume(session, op)
    info = snap.volumes.get(volume.backend_volume_id or "")
    if info is None:
        return None
    if info.status in _SETTLED and info.size_gb >= int(op.params["size_gb"]):
        await _extended(op, info.size_gb)(session)
        return Step.done()
    if _is_error(info.status) or info.status == cb.VOLUME_DELETED:
        return Step.fail(f"The cloud could not grow the volume (status {info.status}).")
    if info.status in _SETTLED and _changed_since_asked(info, op):
        message = f"The cloud did not grow the volume; it is still {info.size_gb} GB."
        return Step.fail(message, apply=_keep(op, op.params["from_status"], message))
    return None


register(
    Flow(
        kind="volume.extend",
        actions={"extend": extend},
        checks={"extend_wait": ("volume", check_extended)},
        bands={"extend": Band(0, 10), "extend_wait": Band(10, 99, "volume_extend")},
        on_fail=volume_failed,
        watch_ids=_watched,
    )
)


# -- delete ------------------------------------------------------------------------------------


def _gone(op: Operation) -> Apply:
    async def apply(session: AsyncSession) -> None:
        volume = await _volume(session, op)
        volume.status, volume.deleted_at = vm.V_DELETED, utcnow()
        volume.orbit_id, volume.partition = None, None

    return apply


async def _made_by_earlier_create(ctx: ActionContext, volume_id: int) -> str | None:
    """The cloud volume of a create that died before recording it (found by its tag)."""
    async with ctx.sessions() as session:
        create_ids = list(
            await session.scalars(
                select(Operation.id).where(
                    Operation.volume_id == volume_id, Operation.kind == "volume.create"
                )
            )
        )
    for create_id in create_ids:
        found = await ctx.cloud.find_volume_by_tag(create_id)
        if found is not None:
            return found.id
    return None


async def delete(ctx: ActionContext) -> Step:
    volume = await ctx.load(Volume, ctx.op.volume_id)
    assert volume is not None
    if not _ours(volume, ctx.op):
        return Step.fail(_RELEASED)
    backend_id = volume.backend_volume_id or await _made_by_earlier_create(ctx, volume.id)
    if backend_id is None:  # it never reached the cloud
        return Step.done(_gone(ctx.op))
    try:
        await ctx.cloud.delete_volume(backend_id)
    except cb.CloudNotFound:
        return Step.done(_gone(ctx.op))
    except cb.CloudConflict as exc:
        info = await ctx.cloud.get_volume(backend_id)
        if info.status in _CLOUD_BUSY - {cb.VOLUME_DELETING}:
            return Step.retry(f"the cloud volume is {info.status}", 1.0)
        if info.status != cb.VOLUME_DELETING:  # e.g. still attached in the cloud
            return _refused(ctx.op, ctx.op.params["from_status"], exc)

    async def record(session: AsyncSession) -> None:
        (await _volume(session, ctx.op)).backend_volume_id = backend_id

    return Step.wait("delete_wait", record)


async def check_deleted(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    volume = await _volume(session, op)
    info = snap.volumes.get(volume.backend_volume_id or "")
    if info is None:
        return None
    if info.status == cb.VOLUME_DELETED:
        await _gone(op)(session)
        return Step.done()
    if _is_error(info.status):
        return Step.fail(f"The cloud could not delete the volume (status {info.status}).")
    return None


register(
    Flow(
        kind="volume.delete",
        actions={"delete": delete},
        checks={"delete_wait": ("volume", check_deleted)},
        bands={"delete": Band(0, 10), "delete_wait": Band(10, 99, "volume_delete")},
        on_fail=volume_failed,
        watch_ids=_watched,
    )
)
