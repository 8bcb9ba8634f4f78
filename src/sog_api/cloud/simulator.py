"""An in-process cloud that behaves like Nova and Cinder, persisted in its own tables.

Each server or volume row holds its current state plus a list of timed steps still to come
(``{"at": ISO time, "set": {field: value}}``). Reads apply the steps that are due, so state moves
on by the clock alone: no background task, and a restarted service finds every server where the
clock says it should be. Durations are scaled by ``SOG_SIMULATOR_DELAY_SCALE``.
"""

from __future__ import annotations

import functools
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud import base as cb
from sog_api.cloud.simulator_models import SimServer, SimVolume
from sog_api.db.base import utcnow
from sog_api.settings import DEFAULT_CATALOG

# Seconds each transition takes at delay scale 1.0 (roughly what a small OpenStack cloud shows).
DEFAULT_ZONE = "nova"  # where Nova's scheduler puts a server that asks for no zone

DURATIONS: dict[str, float] = {
    "volume_create": 4.0,
    "volume_delete": 2.0,
    "volume_extend": 3.0,
    "attach": 2.0,
    "detach": 2.0,
    "build": 10.0,
    "pause": 2.0,
    "unpause": 2.0,
    "stop": 3.0,
    "start": 4.0,
    "reboot": 5.0,
    "hard_reboot": 6.0,
    "resize": 12.0,
    "confirm": 2.0,
    "delete": 3.0,
}

SERVER_FIELDS = ("name", "flavor_ref", "status", "task_state", "ip", "fault", "deleted")
VOLUME_FIELDS = ("status", "size_gb", "server_id", "device", "deleted", "bootable")


@dataclass
class SimulatorFaults:
    """Failures a test can ask the simulator to produce."""

    fail_calls: dict[str, list[cb.CloudError]] = field(default_factory=dict)
    build_error: str | None = None
    volume_error: str | None = None
    resize_noop: bool = False

    def fail_next(self, method: str, error: cb.CloudError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        self.fail_calls.setdefault(method, []).extend([error] * times)

    def check(self, method: str) -> None:
        queue = self.fail_calls.get(method)
        if queue:
            raise queue.pop(0)


@functools.cache
def _default_catalog() -> tuple[list[str], list[str]]:
    catalog = tomllib.loads(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    return (
        [f["backend_flavor"] for f in catalog["flavors"]],
        [i["backend_image"] for i in catalog["images"]],
    )


def _ip_for(seq: int) -> str:
    return f"192.168.{(seq // 250) % 256}.{seq % 250 + 2}"


def _apply_due(row: SimServer | SimVolume, now: datetime) -> bool:
    """Apply the row's steps whose time has come; return whether anything changed."""
    steps = list(row.steps or [])
    changed = False
    while steps and datetime.fromisoformat(steps[0]["at"]) <= now:
        step = steps.pop(0)
        for name, value in step["set"].items():
            setattr(row, name, value)
        row.updated_at = datetime.fromisoformat(step["at"])
        changed = True
    if changed:
        row.steps = steps
    return changed


class SimulatorBackend:
    """The simulated cloud; the same interface as the OpenStack backend."""

    name = "simulator"

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], delay_scale: float = 1.0
    ) -> None:
        self._sessions = sessionmaker
        self.delay_scale = delay_scale
        self.faults = SimulatorFaults()
        self.calls: list[str] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- helpers -------------------------------------------------------------------------------

    def _schedule(self, row: SimServer | SimVolume, *steps: tuple[str, dict[str, Any]]) -> None:
        now = utcnow()
        at = now
        planned = []
        for duration_key, values in steps:
            at = at + timedelta(seconds=DURATIONS[duration_key] * self.delay_scale)
            planned.append({"at": at.isoformat(), "set": values})
        row.steps = planned
        row.updated_at = now

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        self.faults.check(method)

    async def _server(self, session: AsyncSession, server_id: str) -> SimServer:
        row = await session.scalar(
            select(SimServer).where(SimServer.id == server_id).with_for_update()
        )
        if row is not None:
            _apply_due(row, utcnow())
        if row is None or row.deleted:
            raise cb.CloudNotFound(f"server {server_id} not found")
        return row

    async def _volume(self, session: AsyncSession, volume_id: str) -> SimVolume:
        row = await session.scalar(
            select(SimVolume).where(SimVolume.id == volume_id).with_for_update()
        )
        if row is not None:
            _apply_due(row, utcnow())
        if row is None or row.deleted:
            raise cb.CloudNotFound(f"volume {volume_id} not found")
        return row

    @staticmethod
    def _server_info(row: SimServer) -> cb.ServerInfo:
        return cb.ServerInfo(
            id=row.id,
            name=row.name,
            status=cb.SERVER_DELETED if row.deleted else row.status,
            flavor_ref=row.flavor_ref,
            task_state=row.task_state,
            ip=row.ip,
            fault=row.fault,
            tag=row.tag,
            updated_at=row.updated_at,
            availability_zone=row.availability_zone,
        )

    @staticmethod
    def _volume_info(row: SimVolume) -> cb.VolumeInfo:
        attachments: tuple[cb.AttachmentInfo, ...] = ()
        if row.server_id and row.status in (cb.VOLUME_IN_USE, cb.VOLUME_DETACHING):
            attachments = (cb.AttachmentInfo(row.server_id, row.id, row.device),)
        return cb.VolumeInfo(
            id=row.id,
            name=row.name,
            status=cb.VOLUME_DELETED if row.deleted else row.status,
            size_gb=row.size_gb,
            bootable=row.bootable,
            image_ref=row.image_ref,
            attachments=attachments,
            tag=row.tag,
            updated_at=row.updated_at,
        )

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise cb.CloudConflict(message)

    # -- volumes -------------------------------------------------------------------------------

    async def create_volume(
        self,
        *,
        name: str,
        size_gb: int,
        tag: str,
        image_ref: str | None = None,
        availability_zone: str | None = None,
    ) -> cb.VolumeInfo:
        self._enter("create_volume")
        if size_gb < 1:
            raise cb.CloudBadRequest("size must be at least 1 GB")
        async with self._sessions.begin() as session:
            row = SimVolume(
                id=str(uuid.uuid4()),
                name=name,
                size_gb=size_gb,
                status=cb.VOLUME_CREATING,
                bootable=image_ref is not None,
                image_ref=image_ref,
                tag=tag,
            )
            final = {"status": cb.VOLUME_AVAILABLE}
            if self.faults.volume_error:
                final = {"status": cb.VOLUME_ERROR}
                self.faults.volume_error = None
            self._schedule(row, ("volume_create", final))
            session.add(row)
            await session.flush()
            return self._volume_info(row)

    async def find_volume_by_tag(self, tag: str) -> cb.VolumeInfo | None:
        self._enter("find_volume_by_tag")
        async with self._sessions.begin() as session:
            rows = await session.scalars(
                select(SimVolume).where(SimVolume.tag == tag, SimVolume.deleted.is_(False))
            )
            for row in rows:
                _apply_due(row, utcnow())
                if not row.deleted:
                    return self._volume_info(row)
            return None

    async def get_volume(self, volume_id: str) -> cb.VolumeInfo:
        self._enter("get_volume")
        async with self._sessions.begin() as session:
            return self._volume_info(await self._volume(session, volume_id))

    async def extend_volume(self, volume_id: str, size_gb: int) -> None:
        self._enter("extend_volume")
        async with self._sessions.begin() as session:
            row = await self._volume(session, volume_id)
            self._require(
                row.status in (cb.VOLUME_AVAILABLE, cb.VOLUME_IN_USE),
                f"volume {volume_id} is {row.status}",
            )
            if size_gb <= row.size_gb:
                raise cb.CloudBadRequest("new size must be larger than the current size")
            back = row.status
            row.status = cb.VOLUME_EXTENDING
            self._schedule(row, ("volume_extend", {"status": back, "size_gb": size_gb}))

    async def delete_volume(self, volume_id: str) -> None:
        self._enter("delete_volume")
        async with self._sessions.begin() as session:
            row = await self._volume(session, volume_id)
            self._require(
                row.status in (cb.VOLUME_AVAILABLE, cb.VOLUME_ERROR, cb.VOLUME_ERROR_EXTENDING),
                f"volume {volume_id} is {row.status}",
            )
            row.status = cb.VOLUME_DELETING
            self._schedule(row, ("volume_delete", {"deleted": True}))

    async def list_volumes(self, changes_since: datetime | None = None) -> list[cb.VolumeInfo]:
        self._enter("list_volumes")
        return [self._volume_info(r) for r in await self._list(SimVolume, changes_since)]

    async def _list(self, model: Any, changes_since: datetime | None) -> list[Any]:
        now = utcnow()
        async with self._sessions.begin() as session:
            query = select(model).order_by(model.seq)
            if changes_since is None:
                query = query.where(model.deleted.is_(False))
            rows = list(await session.scalars(query))
            result = []
            for row in rows:
                _apply_due(row, now)
                if changes_since is None and row.deleted:
                    continue
                if changes_since is not None and row.updated_at < changes_since:
                    continue
                result.append(row)
            return result

    # -- servers -------------------------------------------------------------------------------

    async def create_server(self, spec: cb.ServerSpec) -> cb.ServerInfo:
        self._enter("create_server")
        async with self._sessions.begin() as session:
            volume = await self._volume(session, spec.boot_volume_id)
            self._require(
                volume.status == cb.VOLUME_AVAILABLE,
                f"boot volume {volume.id} is {volume.status}",
            )
            row = SimServer(
                id=str(uuid.uuid4()),
                name=spec.name,
                flavor_ref=spec.flavor_ref,
                status=cb.SERVER_BUILD,
                task_state="spawning",
                tag=spec.tag,
                boot_volume_id=volume.id,
                availability_zone=spec.availability_zone or DEFAULT_ZONE,
            )
            session.add(row)
            await session.flush()
            volume.status, volume.server_id, volume.device = cb.VOLUME_IN_USE, row.id, "/dev/vda"
            volume.updated_at = utcnow()
            final: dict[str, Any] = {"status": cb.SERVER_ACTIVE, "task_state": None}
            if self.faults.build_error:
                final = {"status": cb.SERVER_ERROR, "task_state": None}
                final["fault"] = self.faults.build_error
                self.faults.build_error = None
            else:
                final["ip"] = _ip_for(row.seq)
            self._schedule(row, ("build", final))
            return self._server_info(row)

    async def find_server_by_tag(self, tag: str) -> cb.ServerInfo | None:
        self._enter("find_server_by_tag")
        async with self._sessions.begin() as session:
            rows = await session.scalars(
                select(SimServer).where(SimServer.tag == tag, SimServer.deleted.is_(False))
            )
            for row in rows:
                _apply_due(row, utcnow())
                if not row.deleted:
                    return self._server_info(row)
            return None

    async def get_server(self, server_id: str) -> cb.ServerInfo:
        self._enter("get_server")
        async with self._sessions.begin() as session:
            return self._server_info(await self._server(session, server_id))

    async def rename_server(self, server_id: str, name: str) -> None:
        self._enter("rename_server")
        async with self._sessions.begin() as session:
            row = await self._server(session, server_id)
            row.name = name
            row.updated_at = utcnow()

    async def _transition(
        self,
        method: str,
        server_id: str,
        allowed: tuple[str, ...],
        now_values: dict[str, Any],
        duration: str,
        final: dict[str, Any],
    ) -> None:
        self._enter(method)
        async with self._sessions.begin() as session:
            row = await self._server(session, server_id)
            self._require(
                row.status in allowed and (row.task_state is None or method == "reboot_server"),
                f"Cannot '{method}' instance {server_id} while it is in vm_state "
                f"{row.status.lower()} task_state {row.task_state}",
            )
            if method == "confirm_resize" and row.steps:  # one under way: Nova has none left
                raise cb.CloudBadRequest("Instance has not been resized.")
            for name, value in now_values.items():
                setattr(row, name, value)
            self._schedule(row, (duration, final))

    async def pause_server(self, server_id: str) -> None:
        await self._transition(
            "pause_server", server_id, (cb.SERVER_ACTIVE,), {"task_state": "pausing"},
            "pause", {"status": cb.SERVER_PAUSED, "task_state": None},
        )  # fmt: skip

    async def unpause_server(self, server_id: str) -> None:
        await self._transition(
            "unpause_server", server_id, (cb.SERVER_PAUSED,), {"task_state": "unpausing"},
            "unpause", {"status": cb.SERVER_ACTIVE, "task_state": None},
        )  # fmt: skip

    async def stop_server(self, server_id: str) -> None:
        await self._transition(
            "stop_server", server_id, (cb.SERVER_ACTIVE, cb.SERVER_ERROR),
            {"task_state": "powering-off"}, "stop",
            {"status": cb.SERVER_SHUTOFF, "task_state": None},
        )  # fmt: skip

    async def start_server(self, server_id: str) -> None:
        await self._transition(
            "start_server", server_id, (cb.SERVER_SHUTOFF,), {"task_state": "powering-on"},
            "start", {"status": cb.SERVER_ACTIVE, "task_state": None},
        )  # fmt: skip

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        allowed: tuple[str, ...]
        if hard:
            allowed = (cb.SERVER_ACTIVE, cb.SERVER_ERROR, cb.SERVER_SHUTOFF, cb.SERVER_PAUSED)
            now_values = {"status": cb.SERVER_HARD_REBOOT, "task_state": "rebooting_hard"}
        else:
            allowed = (cb.SERVER_ACTIVE,)
            now_values = {"status": cb.SERVER_REBOOT, "task_state": "rebooting"}
        await self._transition(
            "reboot_server", server_id, allowed, now_values,
            "hard_reboot" if hard else "reboot",
            {"status": cb.SERVER_ACTIVE, "task_state": None, "fault": None},
        )  # fmt: skip

    async def resize_server(self, server_id: str, flavor_ref: str) -> None:
        if self.faults.resize_noop:
            self.faults.resize_noop = False
            final: dict[str, Any] = {"status": cb.SERVER_ACTIVE, "task_state": None}
        else:
            final = {
                "status": cb.SERVER_VERIFY_RESIZE,
                "task_state": None,
                "flavor_ref": flavor_ref,
            }
        await self._transition(
            "resize_server", server_id, (cb.SERVER_ACTIVE,),
            {"status": cb.SERVER_RESIZE, "task_state": "resize_prep"}, "resize", final,
        )  # fmt: skip

    async def confirm_resize(self, server_id: str) -> None:
        await self._transition(
            "confirm_resize", server_id, (cb.SERVER_VERIFY_RESIZE,), {"task_state": None},
            "confirm", {"status": cb.SERVER_ACTIVE},
        )  # fmt: skip

    async def delete_server(self, server_id: str) -> None:
        self._enter("delete_server")
        async with self._sessions.begin() as session:
            row = await self._server(session, server_id)
            if row.task_state == "deleting":
                return
            row.task_state = "deleting"
            self._schedule(row, ("delete", {"deleted": True, "task_state": None}))
            attached = await session.scalars(
                select(SimVolume).where(SimVolume.server_id == server_id).with_for_update()
            )
            for volume in attached:
                _apply_due(volume, utcnow())
                if volume.status in (cb.VOLUME_IN_USE, cb.VOLUME_ATTACHING, cb.VOLUME_DETACHING):
                    volume.status = cb.VOLUME_DETACHING
                    self._schedule(
                        volume,
                        ("delete", {"status": cb.VOLUME_AVAILABLE, "server_id": None,
                                    "device": None}),
                    )  # fmt: skip

    async def list_servers(self, changes_since: datetime | None = None) -> list[cb.ServerInfo]:
        self._enter("list_servers")
        return [self._server_info(r) for r in await self._list(SimServer, changes_since)]

    # -- attachments ---------------------------------------------------------------------------

    async def attach_volume(
        self, server_id: str, volume_id: str, device: str | None = None
    ) -> cb.AttachmentInfo:
        self._enter("attach_volume")
        async with self._sessions.begin() as session:
            server = await self._server(session, server_id)
            self._require(
                server.status in (cb.SERVER_ACTIVE, cb.SERVER_PAUSED, cb.SERVER_SHUTOFF),
                f"server {server_id} is {server.status}",
            )
            volume = await self._volume(session, volume_id)
            self._require(volume.status == cb.VOLUME_AVAILABLE, f"volume is {volume.status}")
            used = set(
                await session.scalars(
                    select(SimVolume.device).where(
                        SimVolume.server_id == server_id, SimVolume.deleted.is_(False)
                    )
                )
            )
            chosen = next(
                f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz"
                if f"/dev/vd{letter}" not in used
            )  # fmt: skip
            # Like Nova with libvirt: the requested device name is only a hint.
            volume.status, volume.server_id, volume.device = cb.VOLUME_ATTACHING, server_id, chosen
            self._schedule(volume, ("attach", {"status": cb.VOLUME_IN_USE}))
            return cb.AttachmentInfo(server_id, volume_id, chosen)

    async def detach_volume(self, server_id: str, volume_id: str) -> None:
        self._enter("detach_volume")
        async with self._sessions.begin() as session:
            volume = await self._volume(session, volume_id)
            if volume.server_id != server_id:
                raise cb.CloudNotFound(f"volume {volume_id} is not attached to {server_id}")
            self._require(volume.status == cb.VOLUME_IN_USE, f"volume is {volume.status}")
            volume.status = cb.VOLUME_DETACHING
            self._schedule(
                volume, ("detach", {"status": cb.VOLUME_AVAILABLE, "server_id": None,
                                    "device": None}),
            )  # fmt: skip

    # -- catalogue -----------------------------------------------------------------------------

    async def list_flavors(self) -> list[cb.CatalogItem]:
        """The simulated cloud offers the flavors the shipped catalogue maps to."""
        return [cb.CatalogItem(name, name) for name in _default_catalog()[0]]

    async def list_images(self) -> list[cb.CatalogItem]:
        """The simulated cloud offers the images the shipped catalogue maps to."""
        return [cb.CatalogItem(name, name) for name in _default_catalog()[1]]

    # -- drift, for tests ------------------------------------------------------------------------

    async def change_behind_back(self, server_id: str, **values: Any) -> None:
        """Change a server as if someone used the cloud directly (e.g. status=SHUTOFF)."""
        async with self._sessions.begin() as session:
            row = await self._server(session, server_id)
            row.steps = []
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
