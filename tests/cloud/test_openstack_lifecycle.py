"""OpenStackBackend against the fake cloud: volumes, servers, actions, attachments, deletes."""

from __future__ import annotations

import base64

import pytest

from sog_api.cloud import base as cb
from sog_api.cloud.openstack import OpenStackBackend
from tests.cloud.helpers import active_server, available_volume, make_backend, wait_for
from tests.fake_openstack import FakeOpenStack

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd2x3Z0ZXN0a2V5 alice@example"


def _image_id(fake: FakeOpenStack, name: str) -> str:
    return next(i.id for i in fake.images if i.name == name)


class TestVolumes:
    async def test_create_from_image_becomes_available(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        created = await backend.create_volume(
            name="root-1", size_gb=10, tag="op-v1", image_ref="fedora-24", availability_zone="nova"
        )
        assert (created.status, created.tag, created.size_gb) == ("creating", "op-v1", 10)
        ready = await wait_for(
            lambda: backend.get_volume(created.id), lambda v: v.status == "available"
        )
        assert ready.bootable and ready.image_ref == _image_id(fake, "fedora-24")
        assert ready.name == "root-1" and ready.updated_at is not None
        (post,) = fake.requests("POST", r"/volumes$")
        assert post.json["volume"]["imageRef"] == "fedora-24"
        assert post.json["volume"]["metadata"] == {"sog_operation_id": "op-v1"}

    async def test_failed_create_ends_in_error(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        fake.faults.fail_next_volume()
        created = await backend.create_volume(name="v", size_gb=1, tag="op-err")
        failed = await wait_for(
            lambda: backend.get_volume(created.id), lambda v: v.status != "creating"
        )
        assert failed.status == cb.VOLUME_ERROR

    async def test_extend_in_use_volume_asks_for_microversion_342(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-ext")
        data = await available_volume(backend, "op-ext-data", image_ref=None, size_gb=5)
        await backend.attach_volume(server.id, data.id)
        await wait_for(lambda: backend.get_volume(data.id), lambda v: v.status == "in-use")
        await backend.extend_volume(data.id, 8)
        grown = await wait_for(lambda: backend.get_volume(data.id), lambda v: v.size_gb == 8)
        assert grown.status == "in-use"
        (action,) = fake.requests("POST", rf"/volumes/{data.id}/action$")
        assert action.json == {"os-extend": {"new_size": 8}}
        assert action.headers["openstack-api-version"] == "volume 3.42"

    async def test_extend_in_use_fails_visibly_on_an_old_cinder(self) -> None:
        with FakeOpenStack(delay_scale=0.01, volume_max_microversion="3.40") as old:
            cloud = make_backend(old)
            await cloud.start()
            try:
                server = await active_server(cloud, "op-old")
                data = await available_volume(cloud, "op-old-data", image_ref=None, size_gb=5)
                await cloud.attach_volume(server.id, data.id)
                await wait_for(lambda: cloud.get_volume(data.id), lambda v: v.status == "in-use")
                with pytest.raises(cb.CloudBadRequest):
                    await cloud.extend_volume(data.id, 8)
                kept = await cloud.get_volume(data.id)
                assert (kept.status, kept.size_gb) == ("in-use", 5)
            finally:
                await cloud.close()

    async def test_delete_then_not_found(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        volume = await available_volume(backend, "op-del", image_ref=None)
        fake.delays["volume_delete"] = 50.0  # 0.5 s at this scale
        await backend.delete_volume(volume.id)
        await backend.delete_volume(volume.id)  # still deleting: counts as done
        first = fake.requests("DELETE", rf"/volumes/{volume.id}$")[0]
        assert first.query == {"cascade": ["False"], "force": ["False"]}
        await wait_for(lambda: _volume_gone(backend, volume.id), bool)
        with pytest.raises(cb.CloudNotFound):
            await backend.delete_volume(volume.id)


async def _volume_gone(cloud: OpenStackBackend, volume_id: str) -> bool:
    try:
        await cloud.get_volume(volume_id)
    except cb.CloudNotFound:
        return True
    return False


async def _server_gone(cloud: OpenStackBackend, server_id: str) -> bool:
    try:
        await cloud.get_server(server_id)
    except cb.CloudNotFound:
        return True
    return False


class TestCreateServer:
    async def test_boots_from_volume_to_active_with_ip(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        root = await available_volume(backend, "op-s1")
        spec = cb.ServerSpec(
            name="orbit-1",
            flavor_ref="sog.comet",
            boot_volume_id=root.id,
            tag="op-s1",
            availability_zone="nova",
            key_value=KEY,
            admin_pass="Secr3t!pass",
            metadata={"orbit_id": "42"},
        )
        created = await backend.create_server(spec)
        assert (created.status, created.tag, created.flavor_ref) == ("BUILD", "op-s1", "sog.comet")
        active = await wait_for(
            lambda: backend.get_server(created.id), lambda s: s.status == "ACTIVE"
        )
        assert active.ip is not None and active.ip.startswith("10.20.")
        assert (active.name, active.flavor_ref, active.tag, active.task_state) == (
            "orbit-1",
            "sog.comet",
            "op-s1",
            None,
        )
        root_now = await backend.get_volume(root.id)
        assert root_now.status == "in-use"
        assert root_now.attachments == (cb.AttachmentInfo(created.id, root.id, "/dev/vda"),)

    async def test_sends_boot_from_volume_request(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        root = await available_volume(backend, "op-s2")
        spec = cb.ServerSpec(
            name="orbit-2",
            flavor_ref="sog.meteor",
            boot_volume_id=root.id,
            tag="op-s2",
            key_value=KEY,
            admin_pass="pw-123456",
        )
        await backend.create_server(spec)
        (post,) = fake.requests("POST", r"/compute/v2\.1/servers$")
        body = post.json["server"]
        flavor = next(f for f in fake.flavors if f.name == "sog.meteor")
        assert body["flavorRef"] == flavor.id
        assert body["block_device_mapping_v2"] == [
            {
                "boot_index": 0,
                "uuid": root.id,
                "source_type": "volume",
                "destination_type": "volume",
                "delete_on_termination": False,
            }
        ]
        assert body["networks"] == "auto"
        assert body["metadata"] == {"sog_operation_id": "op-s2"}
        assert body["tags"] == ["op-s2"]
        assert body["adminPass"] == "pw-123456"
        assert "imageRef" not in body and "key_name" not in body
        user_data = base64.b64decode(body["user_data"]).decode()
        assert user_data.startswith("#cloud-config\n") and KEY in user_data
        assert post.headers["openstack-api-version"] == "compute 2.79"

    async def test_network_setting_is_sent(self, fake: FakeOpenStack) -> None:
        cloud = make_backend(fake, network="none")
        await cloud.start()
        try:
            server = await active_server(cloud, "op-nonet")
            assert server.ip is None
            (post,) = fake.requests("POST", r"/compute/v2\.1/servers$")
            assert post.json["server"]["networks"] == "none"
        finally:
            await cloud.close()

    async def test_build_failure_reports_fault(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        fake.faults.fail_next_server(
            "No valid host was found. There are not enough hosts available."
        )
        root = await available_volume(backend, "op-s3")
        created = await backend.create_server(
            cb.ServerSpec(
                name="doomed", flavor_ref="sog.comet", boot_volume_id=root.id, tag="op-s3"
            )
        )
        failed = await wait_for(
            lambda: backend.get_server(created.id), lambda s: s.status != "BUILD"
        )
        assert failed.status == cb.SERVER_ERROR
        assert failed.fault is not None and failed.fault.startswith("No valid host was found.")

    async def test_unknown_flavor_is_a_bad_request(self, backend: OpenStackBackend) -> None:
        root = await available_volume(backend, "op-s4")
        spec = cb.ServerSpec(name="x", flavor_ref="no.such", boot_volume_id=root.id, tag="op-s4")
        with pytest.raises(cb.CloudBadRequest):
            await backend.create_server(spec)

    async def test_flavor_id_is_accepted_and_reported_back_as_given(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        flavor = next(f for f in fake.flavors if f.name == "sog.nova")
        server = await active_server(backend, "op-s5", flavor_ref=flavor.id)
        assert server.flavor_ref == flavor.id


class TestFindByTag:
    async def test_a_restarted_worker_finds_what_a_crashed_attempt_made(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-crash")
        restarted = make_backend(fake)
        await restarted.start()
        try:
            fake.clear_journal()
            volume = await restarted.find_volume_by_tag("op-crash")
            found = await restarted.find_server_by_tag("op-crash")
            assert volume is not None and volume.tag == "op-crash" and volume.status == "in-use"
            assert found is not None and (found.id, found.tag) == (server.id, "op-crash")
            assert await restarted.find_server_by_tag("op-other") is None
            assert await restarted.find_volume_by_tag("op-other") is None
        finally:
            await restarted.close()
        (volume_list, *_) = fake.requests("GET", r"/volumes/detail$")
        assert volume_list.query["metadata"] == ["{'sog_operation_id': 'op-crash'}"]
        (server_list, *_) = fake.requests("GET", r"/servers/detail$")
        assert server_list.query["tags"] == ["op-crash"]

    async def test_a_deleted_server_is_not_found(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-gone")
        fake.external_delete_server(server.id)
        assert await backend.find_server_by_tag("op-gone") is None

    async def test_a_tag_nova_would_refuse_is_a_bad_request(
        self, backend: OpenStackBackend
    ) -> None:
        with pytest.raises(cb.CloudBadRequest):
            await backend.find_server_by_tag("a/b")


class TestServerActions:
    async def test_pause_unpause_stop_start(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-a1")

        async def settle(status: str) -> None:
            await wait_for(
                lambda: backend.get_server(server.id),
                lambda s: s.status == status and s.task_state is None,
            )

        await backend.pause_server(server.id)
        await settle("PAUSED")
        with pytest.raises(cb.CloudConflict):
            await backend.pause_server(server.id)
        await backend.unpause_server(server.id)
        await settle("ACTIVE")
        await backend.stop_server(server.id)
        await settle("SHUTOFF")
        await backend.start_server(server.id)
        await settle("ACTIVE")
        actions = [e.json for e in fake.requests("POST", rf"/servers/{server.id}/action$")]
        assert actions == [
            {"pause": None},
            {"pause": None},
            {"unpause": None},
            {"os-stop": None},
            {"os-start": None},
        ]

    @pytest.mark.parametrize(
        ("hard", "kind", "busy"), [(False, "SOFT", "REBOOT"), (True, "HARD", "HARD_REBOOT")]
    )
    async def test_reboot(
        self, fake: FakeOpenStack, backend: OpenStackBackend, hard: bool, kind: str, busy: str
    ) -> None:
        server = await active_server(backend, f"op-r-{kind}")
        await backend.reboot_server(server.id, hard=hard)
        rebooting = await backend.get_server(server.id)
        assert rebooting.status in (busy, "ACTIVE")
        await wait_for(lambda: backend.get_server(server.id), lambda s: s.status == "ACTIVE")
        (action,) = fake.requests("POST", rf"/servers/{server.id}/action$")
        assert action.json == {"reboot": {"type": kind}}

    async def test_resize_and_confirm(self, fake: FakeOpenStack, backend: OpenStackBackend) -> None:
        server = await active_server(backend, "op-rs", flavor_ref="sog.comet")
        await backend.resize_server(server.id, "sog.nova")
        verify = await wait_for(
            lambda: backend.get_server(server.id), lambda s: s.status == "VERIFY_RESIZE"
        )
        assert verify.flavor_ref == "sog.nova"
        await backend.confirm_resize(server.id)
        done = await wait_for(lambda: backend.get_server(server.id), lambda s: s.status == "ACTIVE")
        assert done.flavor_ref == "sog.nova"
        nova = next(f for f in fake.flavors if f.name == "sog.nova")
        bodies = [e.json for e in fake.requests("POST", rf"/servers/{server.id}/action$")]
        assert bodies == [{"resize": {"flavorRef": nova.id}}, {"confirmResize": None}]

    async def test_resize_that_silently_fails_keeps_old_flavor(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-rs2", flavor_ref="sog.comet")
        fake.faults.skip_next_resize()
        await backend.resize_server(server.id, "sog.nova")
        after = await wait_for(
            lambda: backend.get_server(server.id), lambda s: s.task_state is None
        )
        assert (after.status, after.flavor_ref, after.fault) == ("ACTIVE", "sog.comet", None)
        with pytest.raises(cb.CloudConflict):
            await backend.confirm_resize(server.id)

    async def test_rename(self, fake: FakeOpenStack, backend: OpenStackBackend) -> None:
        server = await active_server(backend, "op-rn")
        await backend.rename_server(server.id, "renamed")
        assert (await backend.get_server(server.id)).name == "renamed"
        (put,) = fake.requests("PUT", rf"/servers/{server.id}$")
        assert put.json == {"server": {"name": "renamed"}}

    async def test_delete_then_not_found(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-del")
        root_id = fake.servers[server.id].bdms[0].volume_id
        await backend.delete_server(server.id)
        await wait_for(lambda: _server_gone(backend, server.id), bool)
        with pytest.raises(cb.CloudNotFound):
            await backend.delete_server(server.id)
        with pytest.raises(cb.CloudNotFound):
            await backend.pause_server(server.id)
        root = await backend.get_volume(root_id)  # delete_on_termination false: it survives
        assert (root.status, root.attachments) == ("available", ())


class TestAttachments:
    async def test_attach_and_detach_report_the_cloud_device(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-at")
        data = await available_volume(backend, "op-at-data", image_ref=None, size_gb=3)
        attached = await backend.attach_volume(server.id, data.id, device="/dev/vdq")
        assert attached == cb.AttachmentInfo(server.id, data.id, "/dev/vdb")
        in_use = await wait_for(lambda: backend.get_volume(data.id), lambda v: v.status == "in-use")
        assert in_use.attachments == (cb.AttachmentInfo(server.id, data.id, "/dev/vdb"),)
        (post,) = fake.requests("POST", r"/os-volume_attachments$")
        assert post.json == {"volumeAttachment": {"volumeId": data.id, "device": "/dev/vdq"}}
        before = len(fake.journal)
        await backend.detach_volume(server.id, data.id)
        assert [(e.method, e.path) for e in fake.journal[before:]] == [
            ("DELETE", f"/compute/v2.1/servers/{server.id}/os-volume_attachments/{data.id}")
        ]  # no look-up of the server first
        free = await wait_for(
            lambda: backend.get_volume(data.id), lambda v: v.status == "available"
        )
        assert free.attachments == ()
        with pytest.raises(cb.CloudNotFound):
            await backend.detach_volume(server.id, data.id)

    async def test_attach_a_volume_in_use_is_refused(self, backend: OpenStackBackend) -> None:
        server = await active_server(backend, "op-at2")
        other = await active_server(backend, "op-at3")
        data = await available_volume(backend, "op-at2-data", image_ref=None, size_gb=3)
        await backend.attach_volume(server.id, data.id)
        with pytest.raises(cb.CloudBadRequest):
            await backend.attach_volume(other.id, data.id)
