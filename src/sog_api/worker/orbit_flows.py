"""The stages of orbit operations: create, delete, pause/start/reboot, resize and rename."""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog.models import Flavor, Image
from sog_api.cloud import base as cb
from sog_api.db.base import utcnow
from sog_api.operations.models import Operation
from sog_api.orbits import models as om
from sog_api.orbits.models import Orbit
from sog_api.volumes import models as vm
from sog_api.volumes.models import Volume
from sog_api.worker.context import ActionContext
from sog_api.worker.flows import Apply, Band, Flow, Snapshot, Step, locked, register

log = logging.getLogger("sog_api.worker")


async def _orbit(session: AsyncSession, op: Operation) -> Orbit:
    orbit = await locked(session, Orbit, op.orbit_id)
    assert orbit is not None
    return orbit


def _settle(orbit: Orbit, op: Operation, status: str) -> None:
    """Put the orbit in a settled status when this operation is still the one it follows."""
    if orbit.operation_id in (None, op.id):
        orbit.status = status
        orbit.progress = 100


async def _watched(session: AsyncSession, op: Operation) -> list[str]:
    """The cloud ids the operation's wait stage watches: its root volume(s) or its server."""
    if op.stage == "volume_wait":
        root = await session.get(Volume, op.params["root_volume_id"])
        ids = [root.backend_volume_id] if root else []
    elif op.stage == "root_gone":
        ids = list(
            await session.scalars(
                select(Volume.backend_volume_id).where(
                    Volume.orbit_id == op.orbit_id,
                    Volume.status == vm.V_DELETING,
                    Volume.deleted_at.is_(None),
                )
            )
        )
    else:
        orbit = await session.get(Orbit, op.orbit_id)
        ids = [orbit.server_id] if orbit else []
    return [i for i in ids if i]


def _server(snap: Snapshot, orbit: Orbit) -> cb.ServerInfo | None:
    return snap.servers.get(orbit.server_id) if orbit.server_id else None


# -- create ------------------------------------------------------------------------------------


async def _root(session: AsyncSession, op: Operation) -> Volume:
    root = await locked(session, Volume, op.params["root_volume_id"])
    assert root is not None
    return root


async def create_root_volume(ctx: ActionContext) -> Step:
    root = await ctx.load(Volume, ctx.op.params["root_volume_id"])
    assert root is not None
    want = int(ctx.op.params["root_size"])
    if root.backend_volume_id is not None:  # booting from an existing volume
        if root.size_gb >= want:
            return Step.next("server")
        grown = await ctx.cloud.get_volume(root.backend_volume_id)
        if grown.size_gb < want and grown.status != cb.VOLUME_EXTENDING:  # not grown before
            await ctx.cloud.extend_volume(root.backend_volume_id, want)
        return Step.wait("volume_wait")
    info = await ctx.cloud.find_volume_by_tag(ctx.op.id)
    if info is None:
        image = await ctx.load(Image, root.source_image_id)
        assert image is not None
        info = await ctx.cloud.create_volume(
            name=f"sog-root-{root.id}", size_gb=root.size_gb, tag=ctx.op.id,
            image_ref=image.backend_image, availability_zone=root.availability_zone,
        )  # fmt: skip
    volume_id = info.id

    async def record(session: AsyncSession) -> None:
        (await _root(session, ctx.op)).backend_volume_id = volume_id

    return Step.wait("volume_wait", record)


async def check_root_volume(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    root = await _root(session, op)
    info = snap.volumes.get(root.backend_volume_id or "")
    if info is None:
        return None
    if info.status in (cb.VOLUME_ERROR, cb.VOLUME_ERROR_EXTENDING, cb.VOLUME_DELETED):
        return Step.fail(f"The root volume could not be prepared (cloud status {info.status}).")
    if info.status == cb.VOLUME_AVAILABLE and info.size_gb >= int(op.params["root_size"]):
        root.size_gb = info.size_gb
        return Step.next("server")
    return None


async def _create_or_adopt(ctx: ActionContext, spec: cb.ServerSpec) -> cb.ServerInfo:
    """Create the server; if the cloud refuses, adopt an earlier attempt's server instead.

    An earlier POST whose answer never came may be carried out after our look-up found nothing:
    its server then holds the boot volume, and the cloud refuses this second one. Finding the
    server by its tag now turns that refusal into the server we wanted, not an ERROR beside it.
    """
    try:
        return await ctx.cloud.create_server(spec)
    except (cb.CloudBadRequest, cb.CloudConflict):
        earlier = await ctx.cloud.find_server_by_tag(spec.tag)
        if earlier is None:
            raise
        log.info("server_adopted op=%s server_id=%s", ctx.op.id, earlier.id)
        return earlier


async def create_server(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    root = await ctx.load(Volume, ctx.op.params["root_volume_id"])
    assert orbit is not None and root is not None and root.backend_volume_id is not None
    if orbit.server_id is None:
        info = await ctx.cloud.find_server_by_tag(ctx.op.id)
        if info is None:
            flavor = await ctx.load(Flavor, orbit.flavor_id)
            assert flavor is not None
            spec = cb.ServerSpec(
                name=orbit.vm_name, flavor_ref=flavor.backend_flavor,
                boot_volume_id=root.backend_volume_id, tag=ctx.op.id,
                availability_zone=orbit.availability_zone, key_value=orbit.ssh_key_value,
                admin_pass=ctx.open_secret(), metadata={"sog_orbit_id": str(orbit.id)},
            )  # fmt: skip
            info = await _create_or_adopt(ctx, spec)
        server_id = info.id
    else:
        server_id = orbit.server_id

    async def record(session: AsyncSession) -> None:
        (await _orbit(session, ctx.op)).server_id = server_id
        op = await locked(session, Operation, ctx.op.id)
        op.secret = None  # the cloud has the password now; keep no copy

    return Step.wait("server_wait", record)


async def check_server_built(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    orbit = await _orbit(session, op)
    info = _server(snap, orbit)
    if info is None:
        return None
    if info.status in (cb.SERVER_ERROR, cb.SERVER_DELETED):
        return Step.fail(info.fault or f"The cloud could not build the server ({info.status}).")
    if info.status != cb.SERVER_ACTIVE or info.task_state is not None:
        return None
    root = await _root(session, op)
    root.status, root.partition = vm.V_RUNNING, "/dev/vda"
    orbit.ipaddr = info.ip
    orbit.availability_zone = orbit.availability_zone or info.availability_zone  # where it landed
    _settle(orbit, op, om.RUNNING)
    return Step.done()


async def create_failed(session: AsyncSession, op: Operation, message: str) -> None:
    orbit = await _orbit(session, op)
    orbit.status, orbit.fault = om.ERROR, message
    root = await _root(session, op)
    if op.stage in ("volume", "volume_wait"):
        if root.status != vm.V_AVAILABLE:
            root.status, root.fault = vm.V_ERROR, message
    elif root.status in vm.VOLUME_TRANSITIONAL:  # ready, but no server uses it: free again
        root.status = vm.V_AVAILABLE
    op.secret = None


register(
    Flow(
        kind="orbit.create",
        actions={"volume": create_root_volume, "server": create_server},
        checks={
            "volume_wait": ("volume", check_root_volume),
            "server_wait": ("server", check_server_built),
        },
        bands={
            "volume": Band(0, 5),
            "volume_wait": Band(5, 35, "volume_create"),
            "server": Band(35, 40),
            "server_wait": Band(40, 99, "build"),
        },
        on_fail=create_failed,
        watch_ids=_watched,
    )
)


# -- delete ------------------------------------------------------------------------------------


async def delete_server(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    assert orbit is not None
    server_id = orbit.server_id
    if server_id is None:  # the create failed, or died between making the server and recording it
        async with ctx.sessions() as session:
            create_ids = list(
                await session.scalars(
                    select(Operation.id).where(
                        Operation.orbit_id == orbit.id, Operation.kind == "orbit.create"
                    )
                )
            )
        for create_id in create_ids:
            found = await ctx.cloud.find_server_by_tag(create_id)
            if found is not None:
                server_id = found.id
        if server_id is None:
            return Step.next("volumes")
    try:
        await ctx.cloud.delete_server(server_id)
    except cb.CloudNotFound:
        return Step.next("volumes")
    found_id = server_id

    async def record(session: AsyncSession) -> None:
        (await _orbit(session, ctx.op)).server_id = found_id

    return Step.wait("server_gone", record)


async def check_server_gone(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    orbit = await _orbit(session, op)
    info = _server(snap, orbit)
    if info is not None and info.status == cb.SERVER_DELETED:
        return Step.next("volumes")
    if info is not None and info.status == cb.SERVER_ERROR and info.task_state is None:
        return Step.fail(info.fault or "The cloud could not delete the server.")
    return None


async def release_volumes(ctx: ActionContext) -> Step:
    async with ctx.sessions() as session:
        volumes = list(
            await session.scalars(
                select(Volume).where(
                    Volume.orbit_id == ctx.op.orbit_id, Volume.deleted_at.is_(None)
                )
            )
        )
        orbit = await session.get(Orbit, ctx.op.orbit_id)
    assert orbit is not None
    doomed = [v for v in volumes if v.is_root and orbit.delete_root and v.backend_volume_id]
    for volume in doomed:
        try:
            await ctx.cloud.delete_volume(volume.backend_volume_id)  # type: ignore[arg-type]
        except cb.CloudNotFound:
            pass
        except cb.CloudConflict as exc:  # still detaching from the deleted server
            return Step.retry(f"The root volume is still busy: {exc.message}", delay=1.0)
    doomed_ids = {v.id for v in doomed}

    async def record(session: AsyncSession) -> None:
        for volume in volumes:
            row = await locked(session, Volume, volume.id)
            if row.id in doomed_ids:  # keeps orbit_id until the cloud confirms the deletion
                row.status, row.partition = vm.V_DELETING, None
                continue
            row.orbit_id, row.partition = None, None
            if row.is_root and orbit.delete_root:  # never reached the cloud
                row.status, row.deleted_at = vm.V_DELETED, utcnow()
            else:
                row.status, row.is_root = vm.V_AVAILABLE, False
        if not doomed_ids:
            await _gone(session, ctx.op)

    return Step.wait("root_gone", record) if doomed_ids else Step.done(record)


async def check_root_gone(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    roots = await session.scalars(
        select(Volume).where(
            Volume.orbit_id == op.orbit_id,
            Volume.status == vm.V_DELETING,
            Volume.deleted_at.is_(None),
        )
    )
    pending = 0
    for root in roots:
        info = snap.volumes.get(root.backend_volume_id or "")
        if info is not None and info.status == cb.VOLUME_DELETED:
            root.status, root.deleted_at, root.orbit_id = vm.V_DELETED, utcnow(), None
        elif info is not None and info.status == cb.VOLUME_ERROR:
            return Step.fail("The cloud could not delete the root volume.")
        else:
            pending += 1
    if pending:
        return None
    await _gone(session, op)
    return Step.done()


async def _gone(session: AsyncSession, op: Operation) -> None:
    orbit = await _orbit(session, op)
    orbit.status, orbit.deleted_at, orbit.progress = om.DELETED, utcnow(), 100


async def action_failed(session: AsyncSession, op: Operation, message: str) -> None:
    """Put the orbit in ERROR, unless the failing step already settled it (or another op runs)."""
    orbit = await _orbit(session, op)
    if orbit.operation_id == op.id and orbit.status in om.TRANSITIONAL:
        orbit.status, orbit.fault = om.ERROR, message


# The cloud refused the call: nothing changed there, so the orbit goes back to where it was.
_REFUSALS = (cb.CloudConflict, cb.CloudBadRequest, cb.CloudQuotaExceeded)


def _keep(op: Operation, status: str, message: str) -> Apply:
    """Settle the orbit back in ``status``, ``message`` its fault (on_fail then leaves it)."""

    async def apply(session: AsyncSession) -> None:
        orbit = await _orbit(session, op)
        if orbit.operation_id == op.id:
            orbit.fault = message
            _settle(orbit, op, status)

    return apply


def _refused(op: Operation, status: str, exc: cb.CloudError) -> Step:
    message = f"The cloud refused: {exc.message}"
    return Step.fail(message, apply=_keep(op, status, message))


async def _done_before(ctx: ActionContext, server_id: str, statuses: set[str]) -> bool:
    """Whether a refused call is the retry of one that reached the cloud (its answer lost).

    A first attempt that is refused was refused. A retry is refused when the earlier call got
    through: the server is then busy with it, or already where it leads. A retry is a stage run
    again after a failed attempt, or after its worker stopped before recording the outcome.
    """
    if ctx.op.error is None:  # set for a retry of this stage (see Worker.claim), cleared after
        return False
    info = await ctx.cloud.get_server(server_id)
    return info.task_state is not None or info.status in statuses


register(
    Flow(
        kind="orbit.delete",
        actions={"delete_server": delete_server, "volumes": release_volumes},
        checks={
            "server_gone": ("server", check_server_gone),
            "root_gone": ("volume", check_root_gone),
        },
        bands={
            "delete_server": Band(0, 5),
            "server_gone": Band(5, 70, "delete"),
            "volumes": Band(70, 75),
            "root_gone": Band(75, 99, "volume_delete"),
        },
        on_fail=action_failed,
        watch_ids=_watched,
    )
)


# -- pause, start, reboot ----------------------------------------------------------------------

_TARGET = {"orbit.pause": cb.SERVER_PAUSED, "orbit.start": cb.SERVER_ACTIVE,
           "orbit.reboot": cb.SERVER_ACTIVE}  # fmt: skip
_SETTLED = {"orbit.pause": om.PAUSED, "orbit.start": om.RUNNING, "orbit.reboot": om.RUNNING}


async def act(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    assert orbit is not None
    if orbit.server_id is None:
        return Step.fail("The orbit has no server in the cloud; delete it and create it anew.")
    came_from = ctx.op.params.get("from_status")
    try:
        if ctx.op.kind == "orbit.pause":
            await ctx.cloud.pause_server(orbit.server_id)
        elif ctx.op.kind == "orbit.start" and came_from == om.PAUSED:
            await ctx.cloud.unpause_server(orbit.server_id)
        elif ctx.op.kind == "orbit.start":
            await ctx.cloud.start_server(orbit.server_id)
        else:
            await ctx.cloud.reboot_server(orbit.server_id, hard=came_from == om.ERROR)
    except _REFUSALS as exc:
        if await _done_before(ctx, orbit.server_id, {_TARGET[ctx.op.kind]}):
            return Step.wait("act_wait")
        return _refused(ctx.op, came_from or om.RUNNING, exc)
    return Step.wait("act_wait")


async def check_act(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    orbit = await _orbit(session, op)
    info = _server(snap, orbit)
    if info is None or info.task_state is not None:
        return None
    if info.status == _TARGET[op.kind]:
        orbit.ipaddr = info.ip or orbit.ipaddr
        orbit.fault = None
        _settle(orbit, op, _SETTLED[op.kind])
        return Step.done()
    if info.status in (cb.SERVER_ERROR, cb.SERVER_DELETED):
        return Step.fail(info.fault or f"The server ended in {info.status}.")
    if info.status == cb.SERVER_SHUTOFF and op.kind != "orbit.start":
        return Step.fail("The server was found shut off.")
    return None


for _kind in ("orbit.pause", "orbit.start", "orbit.reboot"):
    register(
        Flow(
            kind=_kind,
            actions={"act": act},
            checks={"act_wait": ("server", check_act)},
            bands={
                "act": Band(0, 10),
                "act_wait": Band(
                    10,
                    99,
                    {"orbit.pause": "pause", "orbit.start": "start", "orbit.reboot": "reboot"}[
                        _kind
                    ],
                ),
            },
            on_fail=action_failed,
            watch_ids=_watched,
        )
    )


# -- resize ------------------------------------------------------------------------------------


async def resize(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    flavor = await ctx.load(Flavor, ctx.op.params["flavor_id"])
    assert orbit is not None and flavor is not None
    if orbit.server_id is None:
        return Step.fail("The orbit has no server in the cloud.")
    try:
        await ctx.cloud.resize_server(orbit.server_id, flavor.backend_flavor)
    except _REFUSALS as exc:  # e.g. Nova's quota on cores or RAM: it runs on, unchanged
        if await _done_before(ctx, orbit.server_id, {cb.SERVER_RESIZE, cb.SERVER_VERIFY_RESIZE}):
            return Step.wait("resize_wait")
        return _refused(ctx.op, om.RUNNING, exc)
    return Step.wait("resize_wait")


async def _flavor_refs(session: AsyncSession, op: Operation) -> tuple[str, str]:
    new = await session.get(Flavor, op.params["flavor_id"])
    old = await session.get(Flavor, op.params["old_flavor_id"])
    assert new is not None and old is not None
    return new.backend_flavor, old.backend_flavor


async def check_resized(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    orbit = await _orbit(session, op)
    info = _server(snap, orbit)
    if info is None or info.task_state is not None:
        return None
    if info.status == cb.SERVER_VERIFY_RESIZE:
        return Step.next("confirm")
    if info.status == cb.SERVER_ERROR:
        return Step.fail(info.fault or "The cloud could not resize the server.")
    if info.status == cb.SERVER_ACTIVE:
        new_ref, old_ref = await _flavor_refs(session, op)
        if info.flavor_ref == new_ref:  # a cloud that confirms resizes by itself
            orbit.flavor_id = op.params["flavor_id"]
            _settle(orbit, op, om.RUNNING)
            return Step.done()
        message = f"The cloud did not resize the server; it still runs flavor {old_ref}."
        return Step.fail(message, apply=_keep(op, om.RUNNING, message))
    return None


async def confirm(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    assert orbit is not None and orbit.server_id is not None
    try:
        await ctx.cloud.confirm_resize(orbit.server_id)
    except (cb.CloudConflict, cb.CloudBadRequest):
        # A repeat is refused: 409 once the earlier confirm is done (ACTIVE), 400 while it is
        # still under way (Nova finds no resize left to confirm)
        info = await ctx.cloud.get_server(orbit.server_id)
        repeat = ctx.op.error is not None and info.status == cb.SERVER_VERIFY_RESIZE
        if info.status != cb.SERVER_ACTIVE and not repeat:
            raise
    return Step.wait("confirm_wait")


async def check_confirmed(session: AsyncSession, op: Operation, snap: Snapshot) -> Step | None:
    orbit = await _orbit(session, op)
    info = _server(snap, orbit)
    if info is None or info.task_state is not None:
        return None
    if info.status == cb.SERVER_ACTIVE:
        orbit.flavor_id = op.params["flavor_id"]
        orbit.fault = None
        _settle(orbit, op, om.RUNNING)
        return Step.done()
    if info.status == cb.SERVER_ERROR:
        return Step.fail(info.fault or "The cloud could not confirm the resize.")
    return None


register(
    Flow(
        kind="orbit.resize",
        actions={"resize": resize, "confirm": confirm},
        checks={
            "resize_wait": ("server", check_resized),
            "confirm_wait": ("server", check_confirmed),
        },
        bands={
            "resize": Band(0, 5),
            "resize_wait": Band(5, 85, "resize"),
            "confirm": Band(85, 88),
            "confirm_wait": Band(88, 99, "confirm"),
        },
        on_fail=action_failed,
        watch_ids=_watched,
    )
)


# -- rename ------------------------------------------------------------------------------------


async def rename(ctx: ActionContext) -> Step:
    orbit = await ctx.load(Orbit, ctx.op.orbit_id)
    assert orbit is not None
    if orbit.server_id is None:
        if orbit.status == om.CREATING:  # its server may be in the making under the old name
            return Step.retry("waiting for the server to exist", delay=1.0)
        return Step.done()
    if orbit.vm_name != ctx.op.params["vm_name"]:  # a later rename supersedes this one
        return Step.done()
    with contextlib.suppress(cb.CloudNotFound):  # deleted meanwhile: nothing to rename
        await ctx.cloud.rename_server(orbit.server_id, orbit.vm_name)
    return Step.done()


async def rename_failed(session: AsyncSession, op: Operation, message: str) -> None:
    return None


register(
    Flow(
        kind="orbit.rename",
        actions={"rename": rename},
        checks={},
        bands={"rename": Band(0, 99)},
        on_fail=rename_failed,
    )
)
