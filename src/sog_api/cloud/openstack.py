"""The OpenStack backend: Nova, Cinder, Glance and Keystone through openstacksdk.

Blocking SDK calls run through ``openstack_runner.SdkRunner`` (bounded pool, one warmed
Connection, a 401 retried once, errors mapped by ``openstack_errors``); JSON bodies become our
types in ``openstack_convert``. Nothing else is retried here: the worker retries transient errors.

Choices:

- Microversions are pinned per service: compute to ``os_compute_microversion`` (at least 2.52:
  tags at create; 2.47 embeds the flavor; 2.37 wants ``networks``), volume to
  ``os_volume_microversion`` lowered to what Cinder offers. ``extend_volume`` asks for 3.42 when
  Cinder has it, so in-use volumes grow; otherwise Cinder refuses them (CloudBadRequest).
- A server carries its operation tag twice: as a Nova tag, which ``GET /servers/detail?tags=``
  finds after a crash, and as metadata ``sog_operation_id`` (ServerInfo.tag). A volume carries it
  as metadata, which Cinder's ``metadata`` filter finds.
- The SSH key goes into cloud-init user data: no keypair to name, share, or leak.
- ``flavor_ref``: a flavor name or id on the way in (Nova wants the id); on the way out the name
  Nova embeds (``original_name``), or the exact ref the caller used for that flavor before.
- ``image_ref``: passed to Cinder's ``imageRef``, which takes an image id or a unique name;
  reported back as the Glance image id from the volume's image metadata.
- Listings and look-ups read raw JSON with limit/marker paging (one request in the common
  case); building SDK resources costs ~4 ms of CPU each. Mutations go through the SDK proxies.
- Cinder lists neither changes since a time nor deleted volumes: ``list_volumes`` lists the
  project, keeps what changed since ``changes_since``, and reports as ``deleted`` the volumes an
  earlier listing by this instance saw (or that it deleted) and that are gone now.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import openstack
from openstack import exceptions as sdk_exc
from openstack.compute.v2.server import Server
from openstack.connection import Connection

from sog_api.cloud import base as cb
from sog_api.cloud.openstack_convert import (
    TAG_KEY,
    cloud_init_user_data,
    format_since,
    server_info,
    volume_info,
)
from sog_api.cloud.openstack_runner import SdkRunner, get_json, list_all
from sog_api.settings import Settings


def _networks(setting: str) -> str | list[dict[str, str]]:
    """``auto``, ``none`` or comma-separated network ids, as Nova's ``networks`` wants them."""
    if setting in ("auto", "none"):
        return setting
    return [{"uuid": net.strip()} for net in setting.split(",") if net.strip()]


def _check_tag(tag: str) -> None:
    if not tag or len(tag) > 60 or "/" in tag or "," in tag:
        raise cb.CloudBadRequest(f"Nova refuses the tag {tag!r} (1-60 characters, no '/' or ',').")


class OpenStackBackend:
    """CloudBackend on an OpenStack cloud (see the module docstring for the choices made)."""

    name = "openstack"

    def __init__(
        self,
        connect: Callable[[], Connection] | Mapping[str, Any],
        *,
        network: str = "auto",
        call_timeout: float = 60.0,
        pool_size: int = 16,
        compute_microversion: str = "2.79",
        volume_microversion: str = "3.42",
    ) -> None:
        """``connect`` is a Connection factory or keyword arguments for ``openstack.connect``."""
        if isinstance(connect, Mapping):
            connect = functools.partial(openstack.connect, **connect)
        self._sdk = SdkRunner(
            connect,
            call_timeout=call_timeout,
            pool_size=pool_size,
            compute_microversion=compute_microversion,
            volume_microversion=volume_microversion,
        )
        self._run = self._sdk.run
        self._networks = _networks(network)
        self._flavor_names: dict[str, str] = {}  # id -> name
        self._flavor_aliases: dict[str, str] = {}  # name -> the ref the caller used
        self._volumes_lock = threading.Lock()
        self._known_volumes: dict[str, cb.VolumeInfo] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenStackBackend:
        """Connect with ``clouds.yaml`` / ``OS_*`` variables (``SOG_OS_CLOUD`` names the cloud)."""
        return cls(
            functools.partial(openstack.connect, cloud=settings.os_cloud),
            network=settings.os_network,
            call_timeout=settings.os_call_timeout,
            pool_size=settings.os_thread_pool_size,
            compute_microversion=settings.os_compute_microversion,
            volume_microversion=settings.os_volume_microversion,
        )

    async def start(self) -> None:
        """Start the thread pool and warm the connection (one Keystone auth, one discovery)."""
        await self._sdk.start()

    async def close(self) -> None:
        """Wait for calls in flight, then release the pool and the connection."""
        await self._sdk.close()

    # flavors

    def _load_flavors(self, conn: Connection) -> dict[str, str]:
        bodies = list_all(conn.compute, "/flavors", "flavors", {})
        self._flavor_names = {str(b["id"]): str(b.get("name") or b["id"]) for b in bodies}
        return self._flavor_names

    def _flavor_id(self, conn: Connection, ref: str) -> str:
        """Resolve a flavor id or name to the id Nova wants (re-reading flavors on a miss)."""
        names = self._flavor_names or self._load_flavors(conn)
        for attempt in range(2):
            if attempt:
                names = self._load_flavors(conn)
            if ref in names:
                self._flavor_aliases[names[ref]] = ref
                return ref
            ids = [flavor_id for flavor_id, name in names.items() if name == ref]
            if len(ids) == 1:
                self._flavor_aliases[ref] = ref
                return ids[0]
        raise cb.CloudBadRequest(f"The cloud has no flavor {ref!r}.")

    def _server(self, body: Mapping[str, Any]) -> cb.ServerInfo:
        info = server_info(body, self._flavor_names)
        alias = self._flavor_aliases.get(info.flavor_ref)
        return dataclasses.replace(info, flavor_ref=alias) if alias else info

    # volumes

    async def create_volume(
        self,
        *,
        name: str,
        size_gb: int,
        tag: str,
        image_ref: str | None = None,
        availability_zone: str | None = None,
    ) -> cb.VolumeInfo:
        """Create a volume (from an image when ``image_ref`` is given), tagged in metadata."""
        attrs: dict[str, Any] = {"name": name, "size": size_gb, "metadata": {TAG_KEY: tag}}
        if image_ref:
            attrs["image_id"] = image_ref
        if availability_zone:
            attrs["availability_zone"] = availability_zone

        def call(conn: Connection) -> cb.VolumeInfo:
            created = conn.block_storage.create_volume(**attrs)
            return volume_info(created.to_dict(original_names=True, computed=False, headers=False))

        return await self._run(call)

    async def find_volume_by_tag(self, tag: str) -> cb.VolumeInfo | None:
        """Find the newest volume whose metadata carries this operation tag."""
        query = {"metadata": repr({TAG_KEY: tag})}  # Cinder literal_evals this filter

        def call(conn: Connection) -> cb.VolumeInfo | None:
            bodies = list_all(conn.block_storage, "/volumes/detail", "volumes", query)
            found = [volume_info(b) for b in bodies]
            return next((v for v in found if v.tag == tag), None)

        return await self._run(call)

    async def get_volume(self, volume_id: str) -> cb.VolumeInfo:
        """Fetch one volume."""
        return await self._run(
            lambda conn: volume_info(
                get_json(conn.block_storage, f"/volumes/{volume_id}")["volume"]
            )
        )

    async def extend_volume(self, volume_id: str, size_gb: int) -> None:
        """Grow a volume; microversion 3.42 lets Cinder grow it while in use."""
        body = {"os-extend": {"new_size": size_gb}}

        def call(conn: Connection) -> None:
            response = conn.block_storage.post(
                f"/volumes/{volume_id}/action",
                json=body,
                microversion=self._sdk.extend_microversion,
            )
            sdk_exc.raise_from_response(response)

        await self._run(call)

    async def delete_volume(self, volume_id: str) -> None:
        """Delete a volume; one already being deleted counts as done, a gone one is NotFound."""

        def call(conn: Connection) -> None:
            try:
                conn.block_storage.delete_volume(volume_id, ignore_missing=False)
            except sdk_exc.BadRequestException:
                current = get_json(conn.block_storage, f"/volumes/{volume_id}")["volume"]
                if current.get("status") != cb.VOLUME_DELETING:
                    raise
            with self._volumes_lock:
                self._known_volumes.setdefault(volume_id, _placeholder(volume_id))

        await self._run(call)

    async def list_volumes(self, changes_since: datetime | None = None) -> list[cb.VolumeInfo]:
        """List the project's volumes changed since then, plus those gone since last time."""

        def call(conn: Connection) -> list[cb.VolumeInfo]:
            bodies = list_all(conn.block_storage, "/volumes/detail", "volumes", {})
            current = {v.id: v for v in map(volume_info, bodies)}
            with self._volumes_lock:
                gone = [v for vid, v in self._known_volumes.items() if vid not in current]
                self._known_volumes = current
            changed = [v for v in current.values() if _changed(v.updated_at, changes_since)]
            deleted = [
                dataclasses.replace(v, status=cb.VOLUME_DELETED, attachments=()) for v in gone
            ]
            return changed + deleted

        return await self._run(call)

    # servers

    async def create_server(self, spec: cb.ServerSpec) -> cb.ServerInfo:
        """Boot a server from ``spec.boot_volume_id``, tagged with ``spec.tag``."""
        _check_tag(spec.tag)
        attrs: dict[str, Any] = {
            "name": spec.name,
            "block_device_mapping": [
                {
                    "boot_index": 0,
                    "uuid": spec.boot_volume_id,
                    "source_type": "volume",
                    "destination_type": "volume",
                    "delete_on_termination": False,
                }
            ],
            "networks": self._networks,
            "metadata": {**spec.metadata, TAG_KEY: spec.tag},
            "tags": [spec.tag],
        }
        if spec.availability_zone:
            attrs["availability_zone"] = spec.availability_zone
        if spec.key_value:
            attrs["user_data"] = cloud_init_user_data(spec.key_value)
        if spec.admin_pass:
            attrs["admin_password"] = spec.admin_pass

        def call(conn: Connection) -> cb.ServerInfo:
            created = conn.compute.create_server(
                flavor_id=self._flavor_id(conn, spec.flavor_ref), **attrs
            )
            return cb.ServerInfo(
                id=created.id,
                name=spec.name,
                status=cb.SERVER_BUILD,
                flavor_ref=spec.flavor_ref,
                tag=spec.tag,
            )

        return await self._run(call)

    async def find_server_by_tag(self, tag: str) -> cb.ServerInfo | None:
        """Find the newest live server tagged with this operation tag."""
        _check_tag(tag)

        def call(conn: Connection) -> cb.ServerInfo | None:
            bodies = list_all(conn.compute, "/servers/detail", "servers", {"tags": tag})
            found = [self._server(b) for b in bodies]
            return next((s for s in found if s.tag == tag), None)

        return await self._run(call)

    async def get_server(self, server_id: str) -> cb.ServerInfo:
        """Fetch one server (a deleted one is CloudNotFound)."""
        return await self._run(
            lambda conn: self._server(get_json(conn.compute, f"/servers/{server_id}")["server"])
        )

    async def rename_server(self, server_id: str, name: str) -> None:
        await self._run(lambda conn: conn.compute.update_server(server_id, name=name))

    async def pause_server(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.pause_server(server_id))

    async def unpause_server(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.unpause_server(server_id))

    async def start_server(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.start_server(server_id))

    async def stop_server(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.stop_server(server_id))

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        kind = "HARD" if hard else "SOFT"
        await self._run(lambda conn: conn.compute.reboot_server(server_id, kind))

    async def resize_server(self, server_id: str, flavor_ref: str) -> None:
        await self._run(
            lambda conn: conn.compute.resize_server(server_id, self._flavor_id(conn, flavor_ref))
        )

    async def confirm_resize(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.confirm_server_resize(server_id))

    async def delete_server(self, server_id: str) -> None:
        await self._run(lambda conn: conn.compute.delete_server(server_id, ignore_missing=False))

    async def list_servers(self, changes_since: datetime | None = None) -> list[cb.ServerInfo]:
        """List servers changed since then (deleted ones come back as DELETED), in one call."""
        query = {"changes-since": format_since(changes_since)} if changes_since else {}

        def call(conn: Connection) -> list[cb.ServerInfo]:
            bodies = list_all(conn.compute, "/servers/detail", "servers", query)
            return _unique(self._server(b) for b in bodies)

        return await self._run(call)

    # attachments

    async def attach_volume(
        self, server_id: str, volume_id: str, device: str | None = None
    ) -> cb.AttachmentInfo:
        """Attach a volume; the device is the one Nova reports (it may ignore the request)."""
        attrs = {"device": device} if device else {}

        def call(conn: Connection) -> cb.AttachmentInfo:
            made = conn.compute.create_volume_attachment(Server(id=server_id), volume_id, **attrs)
            return cb.AttachmentInfo(server_id=server_id, volume_id=volume_id, device=made.device)

        return await self._run(call)

    async def detach_volume(self, server_id: str, volume_id: str) -> None:
        await self._run(
            lambda conn: conn.compute.delete_volume_attachment(
                Server(id=server_id), volume_id, ignore_missing=False
            )
        )

    # catalogue

    async def list_flavors(self) -> list[cb.CatalogItem]:
        names = await self._run(self._load_flavors)
        return [cb.CatalogItem(id=i, name=n) for i, n in names.items()]

    async def list_images(self) -> list[cb.CatalogItem]:
        return await self._run(
            lambda conn: [cb.CatalogItem(id=i.id, name=i.name or "") for i in conn.image.images()]
        )


def _changed(updated_at: datetime | None, since: datetime | None) -> bool:
    if since is None or updated_at is None:
        return True
    if since.tzinfo is None:
        return updated_at.replace(tzinfo=None) >= since
    return updated_at >= since


def _unique(infos: Iterable[cb.ServerInfo]) -> list[cb.ServerInfo]:
    """Drop repeats a page boundary may produce while servers change under the listing."""
    seen: dict[str, cb.ServerInfo] = {}
    for info in infos:
        seen.setdefault(info.id, info)
    return list(seen.values())


def _placeholder(volume_id: str) -> cb.VolumeInfo:
    return cb.VolumeInfo(id=volume_id, name="", status=cb.VOLUME_DELETING, size_gb=0)
