"""OpenStackBackend listings, shared connection, microversions and the catalogue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from sog_api.cloud import base as cb
from sog_api.cloud import openstack_runner
from sog_api.cloud.openstack import OpenStackBackend
from sog_api.settings import Settings
from tests.cloud.helpers import active_server, available_volume, make_backend, wait_for
from tests.fake_openstack import FakeOpenStack


async def _next_second() -> datetime:
    """Sleep past a whole-second boundary (Nova's changes-since is floored to seconds)."""
    await asyncio.sleep(1.02 - time.time() % 1)
    return datetime.now(UTC)


class TestListServers:
    async def test_changes_since_returns_changed_and_deleted_in_one_request(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        quiet = await active_server(backend, "op-quiet")
        paused = await active_server(backend, "op-paused")
        doomed = await active_server(backend, "op-doomed")
        since = await _next_second()
        await backend.pause_server(paused.id)
        await backend.delete_server(doomed.id)
        fake.settle()
        fake.clear_journal()

        listed = {s.id: s for s in await backend.list_servers(since)}

        assert set(listed) == {paused.id, doomed.id}
        assert listed[paused.id].status == "PAUSED"
        assert listed[doomed.id].status == cb.SERVER_DELETED
        assert quiet.id not in listed
        (request,) = fake.journal
        assert request.path == "/compute/v2.1/servers/detail"
        assert request.query["changes-since"] == [since.strftime("%Y-%m-%dT%H:%M:%SZ")]
        assert request.headers["openstack-api-version"] == "compute 2.79"

    async def test_without_changes_since_lists_live_servers(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        kept = await active_server(backend, "op-l1")
        gone = await active_server(backend, "op-l2")
        fake.external_delete_server(gone.id)
        listed = await backend.list_servers()
        assert [s.id for s in listed] == [kept.id]
        assert listed[0].ip is not None and listed[0].flavor_ref == "sog.comet"

    async def test_a_server_stopped_behind_our_back_shows_up(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-ext")
        since = await _next_second()
        fake.external_stop_server(server.id)
        (listed,) = await backend.list_servers(since)
        assert (listed.id, listed.status) == (server.id, "SHUTOFF")

    async def test_pages_with_limit_and_marker(
        self, fake: FakeOpenStack, backend: OpenStackBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for n in range(5):
            root = await backend.create_volume(name=f"r{n}", size_gb=1, tag=f"op-p{n}")
            fake.settle()
            await backend.create_server(
                cb.ServerSpec(
                    name=f"s{n}", flavor_ref="m1.tiny", boot_volume_id=root.id, tag=f"op-p{n}"
                )
            )
        fake.settle()
        monkeypatch.setattr(openstack_runner, "PAGE_SIZE", 2)
        fake.clear_journal()
        listed = await backend.list_servers()
        assert sorted(s.name for s in listed) == [f"s{n}" for n in range(5)]
        pages = fake.requests("GET", r"/servers/detail$")
        assert [p.query.get("limit") for p in pages] == [["2"], ["2"], ["2"]]
        assert "marker" not in pages[0].query
        assert pages[1].query["marker"] == [listed[1].id]


class TestListVolumes:
    async def test_changed_since_and_gone_since_last_listing(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        quiet = await available_volume(backend, "op-vq", image_ref=None)
        grown = await available_volume(backend, "op-vg", image_ref=None)
        doomed = await available_volume(backend, "op-vd", image_ref=None)
        assert {v.id for v in await backend.list_volumes()} >= {quiet.id, grown.id, doomed.id}
        since = datetime.now(UTC)
        await backend.extend_volume(grown.id, 20)
        await backend.delete_volume(doomed.id)
        fake.settle()
        fake.clear_journal()

        listed = {v.id: v for v in await backend.list_volumes(since)}

        assert set(listed) == {grown.id, doomed.id}
        assert (listed[grown.id].status, listed[grown.id].size_gb) == ("available", 20)
        assert listed[doomed.id].status == cb.VOLUME_DELETED
        assert len(fake.requests("GET", r"/volumes/detail$")) == 1
        assert await backend.list_volumes(since) == [listed[grown.id]]  # reported gone once

    async def test_a_volume_deleted_before_any_listing_is_reported_gone(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        volume = await available_volume(backend, "op-vx", image_ref=None)
        await backend.delete_volume(volume.id)
        fake.settle()
        (listed,) = await backend.list_volumes(datetime.now(UTC))
        assert (listed.id, listed.status) == (volume.id, cb.VOLUME_DELETED)


class TestSharedConnection:
    async def test_one_keystone_auth_and_discovery_for_50_concurrent_calls(
        self, fake: FakeOpenStack
    ) -> None:
        cloud = make_backend(fake, pool_size=8)
        await cloud.start()
        try:
            server = await active_server(cloud, "op-many")
            volume_id = fake.servers[server.id].bdms[0].volume_id
            calls = [
                cloud.get_server(server.id)
                if n % 3 == 0
                else cloud.get_volume(volume_id)
                if n % 3 == 1
                else cloud.list_servers()
                for n in range(50)
            ]
            results = await asyncio.gather(*calls)
        finally:
            await cloud.close()
        assert len(results) == 50
        assert fake.auth_count == 1
        assert len(fake.requests("POST", r"/identity/v3/auth/tokens$")) == 1
        for discovery in (r"^/compute/v2\.1/?$", r"^/volume/v3/?$", r"^/image/?$"):
            assert len(fake.requests("GET", discovery)) == 1, discovery

    async def test_microversion_headers_on_every_compute_and_volume_call(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-mv")
        await backend.pause_server(server.id)
        await backend.list_volumes()
        await backend.find_volume_by_tag("op-mv")
        compute = fake.requests(None, r"^/compute/v2\.1/.+")
        volume = fake.requests(None, r"^/volume/v3/[^/]+/.+")
        assert compute and volume
        for entry in compute:
            assert entry.headers["openstack-api-version"] == "compute 2.79", entry.path
            assert entry.headers["x-openstack-nova-api-version"] == "2.79", entry.path
        for entry in volume:
            assert entry.headers["openstack-api-version"] == "volume 3.42", entry.path

    async def test_configured_microversions_are_used(self, fake: FakeOpenStack) -> None:
        cloud = make_backend(fake, compute_microversion="2.96", volume_microversion="3.60")
        await cloud.start()
        try:
            await cloud.list_servers()
            await cloud.list_volumes()
        finally:
            await cloud.close()
        (servers,) = fake.requests("GET", r"/servers/detail$")
        (volumes,) = fake.requests("GET", r"/volumes/detail$")
        assert servers.headers["openstack-api-version"] == "compute 2.96"
        assert volumes.headers["openstack-api-version"] == "volume 3.60"

    async def test_a_nova_too_old_for_tags_fails_at_start(self) -> None:
        with FakeOpenStack(compute_max_microversion="2.40") as old:
            cloud = make_backend(old)
            with pytest.raises(cb.CloudError, match=r"2\.52"):
                await cloud.start()
            await cloud.close()

    async def test_calls_before_start_are_refused(self, fake: FakeOpenStack) -> None:
        with pytest.raises(RuntimeError):
            await make_backend(fake).list_servers()


class TestCatalogue:
    async def test_lists_flavors_and_images(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        flavors = await backend.list_flavors()
        images = await backend.list_images()
        assert {f.name for f in flavors} == {f.name for f in fake.flavors}
        assert {(i.id, i.name) for i in images} == {(i.id, i.name) for i in fake.images}
        assert any(f.name == "sog.meteor" for f in flavors)


async def test_wait_for_reports_the_last_value() -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(AssertionError, match="last value: 1"):
        await wait_for(fetch, lambda v: v == 2, timeout=0.05)


class TestFromSettings:
    async def test_reads_the_standard_os_environment(
        self, fake: FakeOpenStack, os_environ: dict[str, str]
    ) -> None:
        settings = Settings(_env_file=None, cloud="openstack", os_network="none")  # type: ignore[call-arg]
        cloud = OpenStackBackend.from_settings(settings)
        await cloud.start()
        try:
            assert await cloud.list_servers() == []
        finally:
            await cloud.close()
        assert fake.auth_count == 1
        (listing,) = fake.requests("GET", r"/servers/detail$")
        assert (
            listing.headers["openstack-api-version"]
            == f"compute {settings.os_compute_microversion}"
        )
