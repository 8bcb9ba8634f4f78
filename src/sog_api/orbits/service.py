"""The orbit rules of the contract: the only place that changes an orbit's status on request.

Every change loads the orbit row under a lock (``FOR UPDATE`` on PostgreSQL; SQLite transactions
start with ``BEGIN IMMEDIATE``), checks the rule, changes the status and adds the operation that
carries it out, all in the caller's one transaction, so two racing requests cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog import repository as catalog
from sog_api.catalog.models import Flavor, Image
from sog_api.errors import Conflict, InvalidParameter, NotFound
from sog_api.operations.models import OPEN_STATES, IdempotencyKey, Operation
from sog_api.operations.service import claim_key, new_operation, remembered_response, request_hash
from sog_api.orbits import models as m
from sog_api.orbits.models import Orbit
from sog_api.orbits.schemas import (
    OrbitActionQuery,
    OrbitCreateQuery,
    OrbitListQuery,
    OrbitPatchQuery,
    OrbitPutQuery,
)
from sog_api.projects.quotas import check_quota, quota_reserve
from sog_api.secrets import SecretBox
from sog_api.settings import Settings
from sog_api.volumes import models as vm
from sog_api.volumes.models import Volume


@dataclass
class Outcome:
    """What a mutating request produced: the orbits, their operation, and whether it is a replay.

    ``key`` is the idempotency key a fresh request claimed (keep the answer with it);
    ``response`` is the first request's answer when this is a replay of it.
    """

    orbits: list[Orbit]
    operation_id: str | None
    replay: bool = False
    key: IdempotencyKey | None = None
    response: Any = None


def busy_message(status: str) -> str:
    return f"Virtual Machine is in {status.lower()} status, please wait until it finish."


async def list_orbits(
    session: AsyncSession, project_id: int, query: OrbitListQuery
) -> tuple[list[Orbit], int]:
    """One page of the project's live orbits, and how many match in all."""
    where = [Orbit.project_id == project_id, Orbit.deleted_at.is_(None)]
    if query.status:
        where.append(Orbit.status == query.status)
    if query.vm_name is not None:
        where.append(Orbit.vm_name == query.vm_name)
    total = await session.scalar(select(func.count()).select_from(Orbit).where(*where))
    rows = await session.scalars(
        select(Orbit).where(*where).order_by(Orbit.id).limit(query.limit).offset(query.offset)
    )
    return list(rows), int(total or 0)


async def get_orbit(
    session: AsyncSession, project_id: int, orbit_id: int, *, lock: bool = False
) -> Orbit:
    """The project's live orbit, or 404 (another project's orbit is a 404 too)."""
    query = select(Orbit).where(
        Orbit.id == orbit_id, Orbit.project_id == project_id, Orbit.deleted_at.is_(None)
    )
    if lock:
        query = query.with_for_update()
    orbit = await session.scalar(query.execution_options(populate_existing=True))
    if orbit is None:
        raise NotFound(f"Orbit {orbit_id} not found")
    return orbit


def _refuse_if_busy(orbit: Orbit) -> None:
    if orbit.status in m.TRANSITIONAL:
        raise Conflict(busy_message(orbit.status), code="orbit_busy")


async def _refuse_if_volume_busy(session: AsyncSession, orbit: Orbit) -> None:
    """A volume being made for, attached to, detached from or grown on the orbit holds back
    every change of the orbit (an attached volume grows only while its orbit stays PAUSED).

    Those volume changes lock the orbit's row too, so whichever of the two commits first wins.
    """
    volume = await session.scalar(
        select(Volume)
        .join(Operation, Operation.volume_id == Volume.id)
        .where(
            Operation.orbit_id == orbit.id,
            Operation.kind.startswith("volume."),
            Operation.state.in_(OPEN_STATES),
        )
        .limit(1)
    )
    if volume is not None:
        raise Conflict(vm.busy_message(volume.status), code="volume_busy")


def _start(
    session: AsyncSession, settings: Settings, orbit: Orbit, status: str, kind: str,
    stage: str, params: dict[str, Any] | None = None,
) -> Operation:  # fmt: skip
    operation = new_operation(
        session, settings, project_id=orbit.project_id, kind=kind, stage=stage,
        orbit_id=orbit.id, params=params,
    )  # fmt: skip
    orbit.status = status
    orbit.progress = 0
    orbit.fault = None
    orbit.operation_id = operation.id
    return operation


# -- create ------------------------------------------------------------------------------------


async def _resolve_boot_source(
    session: AsyncSession, project_id: int, query: OrbitCreateQuery
) -> tuple[Image | None, Volume | None]:
    if (query.booting_image is None) == (query.booting_volume is None):
        raise InvalidParameter(
            "booting_image", "give exactly one of booting_image or booting_volume"
        )
    if query.booting_image is not None:
        image = await catalog.get_image(session, query.booting_image)
        if image is None:
            raise InvalidParameter("booting_image", f"unknown image {query.booting_image}")
        if query.root_size < image.min_disk_gb:
            raise InvalidParameter(
                "root_size", f"must be at least {image.min_disk_gb} GB for {image.image_name}"
            )
        return image, None
    volume = await session.scalar(
        select(Volume)
        .where(
            Volume.id == query.booting_volume,
            Volume.project_id == project_id,
            Volume.deleted_at.is_(None),
        )
        .with_for_update()
    )
    if volume is None:
        raise NotFound.referenced("booting_volume", "Volume", query.booting_volume)
    if volume.orbit_id is not None or volume.status != vm.V_AVAILABLE:
        raise InvalidParameter("booting_volume", "the volume must be detached and AVAILABLE")
    if not volume.is_bootable:
        raise InvalidParameter("booting_volume", "the volume is not bootable")
    if query.root_size < volume.size_gb:
        raise InvalidParameter(
            "root_size", f"must be at least the boot volume's size ({volume.size_gb} GB)"
        )
    if query.vm_count != 1:
        raise InvalidParameter("vm_count", "must be 1 when booting from a volume")
    return None, volume


async def _check_create(
    session: AsyncSession, settings: Settings, query: OrbitCreateQuery
) -> Flavor:
    if query.vm_count > settings.max_vm_count:
        raise InvalidParameter("vm_count", f"must be at most {settings.max_vm_count}")
    flavor = await catalog.get_flavor(session, query.flavor)
    if flavor is None:
        raise InvalidParameter("flavor", f"unknown flavor {query.flavor}")
    zones = await catalog.zone_names(session)
    if query.availability_zone is not None and query.availability_zone not in zones:
        raise InvalidParameter("availability_zone", f"must be one of: {', '.join(zones)}")
    if query.vm_count > 1 and len(query.vm_name) + len(f"-{query.vm_count}") > 255:
        raise InvalidParameter("vm_name", "too long for the -N suffix of vm_count > 1")
    return flavor


def _create_params(query: OrbitCreateQuery) -> dict[str, Any]:
    params = query.model_dump(exclude={"admin_pwd"})
    params["admin_pwd"] = query.admin_pwd.get_secret_value()
    return params


async def create_orbits(
    session: AsyncSession, settings: Settings, project_id: int, query: OrbitCreateQuery
) -> Outcome:
    """Record the orbits and their create operations, or replay an earlier identical request."""
    digest = request_hash(settings, _create_params(query))
    key, fresh = await claim_key(
        session, project_id=project_id, scope="create",
        transaction_id=query.transaction_id, digest=digest,
    )  # fmt: skip
    if not fresh:
        return await _replay(session, key)
    flavor = await _check_create(session, settings, query)
    image, boot_volume = await _resolve_boot_source(session, project_id, query)
    count = query.vm_count
    growth = max(0, query.root_size - boot_volume.size_gb) if boot_volume else 0
    await check_quota(
        session, project_id, orbits=count, vcpus=flavor.vcpus * count, ram=flavor.ram * count,
        volume_gb=growth if boot_volume else query.root_size * count,
    )  # fmt: skip
    box = SecretBox(settings.secret_key)
    names = (
        [query.vm_name]
        if query.vm_count == 1
        else [f"{query.vm_name}-{n}" for n in range(1, query.vm_count + 1)]
    )
    orbits, first_op = [], None
    for name in names:
        orbit = Orbit(
            project_id=project_id, vm_name=name, description=query.description,
            status=m.CREATING, progress=0, availability_zone=query.availability_zone,
            delete_root=query.delete_root, flavor_id=flavor.id,
            image_id=image.id if image else boot_volume.source_image_id if boot_volume else None,
            ssh_key_value=query.ssh_key_value,
        )  # fmt: skip
        session.add(orbit)
        await session.flush()
        root = _root_volume(orbit, query, image, boot_volume, project_id)
        session.add(root)
        await session.flush()
        operation = _start(
            session, settings, orbit, m.CREATING, "orbit.create", "volume",
            {"root_volume_id": root.id, "root_size": query.root_size,
             **quota_reserve(volume_gb=growth)},
        )  # fmt: skip
        operation.secret = box.seal(query.admin_pwd.get_secret_value())
        root.operation_id = operation.id
        orbits.append(orbit)
        first_op = first_op or operation.id
    key.result = {"orbit_ids": [o.id for o in orbits], "operation_id": first_op}
    await session.flush()
    return Outcome(orbits, first_op, key=key)


async def _replay(session: AsyncSession, key: IdempotencyKey) -> Outcome:
    """The first answer to this key; for keys kept before answers were, what it made."""
    operation_id = key.result.get("operation_id")
    response = remembered_response(key)
    if response is not None:
        return Outcome([], operation_id, replay=True, response=response)
    ids = key.result.get("orbit_ids", [])
    orbits = await session.scalars(select(Orbit).where(Orbit.id.in_(ids)).order_by(Orbit.id))
    return Outcome(list(orbits), operation_id, replay=True)


def root_nickname(vm_name: str) -> str:
    """The root volume's name: the orbit's, cut so that it fits the column with "-root"."""
    suffix = "-root"
    return vm_name[: vm.NICKNAME_LENGTH - len(suffix)] + suffix


def _root_volume(
    orbit: Orbit, query: OrbitCreateQuery, image: Image | None, boot_volume: Volume | None,
    project_id: int,
) -> Volume:  # fmt: skip
    if boot_volume is not None:
        boot_volume.orbit_id = orbit.id
        boot_volume.is_root = True
        boot_volume.status = vm.V_ATTACHING
        return boot_volume
    assert image is not None
    return Volume(
        project_id=project_id, nickname=root_nickname(orbit.vm_name), size_gb=query.root_size,
        status=vm.V_CREATING, is_root=True, is_bootable=True, source_image_id=image.id,
        orbit_id=orbit.id, availability_zone=query.availability_zone,
    )  # fmt: skip


# -- edit --------------------------------------------------------------------------------------


async def update_orbit(
    session: AsyncSession,
    settings: Settings,
    project_id: int,
    orbit_id: int,
    query: OrbitPutQuery | OrbitPatchQuery,
) -> Orbit:
    """PUT replaces the editable fields; PATCH changes only those given."""
    orbit = await get_orbit(session, project_id, orbit_id, lock=True)
    if orbit.status == m.DELETING:
        raise Conflict(busy_message(orbit.status), code="orbit_busy")
    changes = query.model_dump(exclude_unset=isinstance(query, OrbitPatchQuery))
    new_name = changes.pop("vm_name", None)
    for name, value in changes.items():
        if value is not None or name == "description":
            setattr(orbit, name, value)
    if new_name is not None and new_name != orbit.vm_name:
        orbit.vm_name = new_name
        new_operation(
            session, settings, project_id=project_id, kind="orbit.rename", stage="rename",
            orbit_id=orbit.id, params={"vm_name": new_name},
        )  # fmt: skip
    await session.flush()
    return orbit


# -- delete, resize, actions -------------------------------------------------------------------


async def delete_orbit(
    session: AsyncSession, settings: Settings, project_id: int, orbit_id: int
) -> Outcome:
    """Start deleting a settled orbit (ERROR included) that no volume change is waiting on."""
    orbit = await get_orbit(session, project_id, orbit_id, lock=True)
    _refuse_if_busy(orbit)
    await _refuse_if_volume_busy(session, orbit)
    operation = _start(session, settings, orbit, m.DELETING, "orbit.delete", "delete_server")
    await session.flush()
    return Outcome([orbit], operation.id)


async def resize_options(session: AsyncSession, orbit: Orbit) -> list[Flavor]:
    """Every other flavor with at least the orbit's vCPUs and RAM, cheapest first."""
    current = await session.get(Flavor, orbit.flavor_id)
    assert current is not None
    return [
        flavor
        for flavor in await catalog.active_flavors(session)
        if flavor.id != current.id and flavor.vcpus >= current.vcpus and flavor.ram >= current.ram
    ]


async def resize_orbit(
    session: AsyncSession, settings: Settings, project_id: int, orbit_id: int, flavor_id: int
) -> Outcome:
    """Start growing a RUNNING orbit to a larger flavor."""
    orbit = await get_orbit(session, project_id, orbit_id, lock=True)
    _refuse_if_busy(orbit)
    await _refuse_if_volume_busy(session, orbit)
    if orbit.status != m.RUNNING:
        raise Conflict(
            "Please boot up the Virtual Machine before resizing", code="orbit_not_running"
        )
    target = next((f for f in await resize_options(session, orbit) if f.id == flavor_id), None)
    if target is None:
        raise InvalidParameter("flavor_id", f"flavor {flavor_id} is not among the resize options")
    current = await session.get(Flavor, orbit.flavor_id)
    assert current is not None
    growth = {"vcpus": target.vcpus - current.vcpus, "ram": target.ram - current.ram}
    await check_quota(session, project_id, **growth)
    operation = _start(
        session, settings, orbit, m.RESIZING, "orbit.resize", "resize",
        {"flavor_id": flavor_id, "old_flavor_id": orbit.flavor_id, **quota_reserve(**growth)},
    )  # fmt: skip
    await session.flush()
    return Outcome([orbit], operation.id)


_ACTIONS: dict[str, tuple[frozenset[str], str, str]] = {
    # action: (statuses it applies to, transitional status, operation kind)
    "pause": (frozenset({m.RUNNING}), m.PAUSING, "orbit.pause"),
    "start": (frozenset({m.PAUSED, m.STOPPED}), m.BOOTING, "orbit.start"),
    "reboot": (frozenset({m.RUNNING, m.ERROR}), m.REBOOTING, "orbit.reboot"),
}


def _inapplicable(action: str, status: str) -> str:
    if status == m.ERROR:
        return "Virtual Machine is in error status; only reboot or delete can recover it."
    if action == "pause":
        return (
            "Virtual Machine is already paused."
            if status == m.PAUSED
            else f"Virtual Machine is {status.lower()}; only a running one can be paused."
        )
    if action == "start":
        return "Virtual Machine is already running."
    return f"Virtual Machine is {status.lower()}; start it before rebooting."


async def act_on_orbit(
    session: AsyncSession, settings: Settings, project_id: int, query: OrbitActionQuery
) -> Outcome:
    """Pause, start or reboot an orbit, once per transaction_id when one is given."""
    key = None
    if query.transaction_id is not None:
        digest = request_hash(settings, {"action": query.action, "orbit_id": query.orbit_id})
        key, fresh = await claim_key(
            session, project_id=project_id, scope="action",
            transaction_id=query.transaction_id, digest=digest,
        )  # fmt: skip
        if not fresh:
            return await _replay(session, key)
    orbit = await get_orbit(session, project_id, query.orbit_id, lock=True)
    _refuse_if_busy(orbit)
    await _refuse_if_volume_busy(session, orbit)
    allowed, transitional, kind = _ACTIONS[query.action]
    if orbit.status not in allowed:
        raise Conflict(_inapplicable(query.action, orbit.status), code="action_not_applicable")
    params = {"from_status": orbit.status}
    operation = _start(session, settings, orbit, transitional, kind, "act", params)
    if key is not None:
        key.result = {"operation_id": operation.id, "orbit_ids": [orbit.id]}
    await session.flush()
    return Outcome([orbit], operation.id, key=key)
