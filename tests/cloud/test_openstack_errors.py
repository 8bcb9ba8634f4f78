"""OpenStackBackend maps cloud failures to base.py's errors and retries only a 401, once."""

from __future__ import annotations

import email.utils
import socket
import time

import pytest

from sog_api.cloud import base as cb
from sog_api.cloud.openstack import OpenStackBackend
from tests.cloud.helpers import active_server, make_backend
from tests.fake_openstack import FakeOpenStack

SERVER = r"^/compute/v2\.1/servers/[^/]+$"


class TestStatusMapping:
    @pytest.mark.parametrize(
        ("status", "message", "error"),
        [
            (404, None, cb.CloudNotFound),
            (409, None, cb.CloudConflict),
            (403, None, cb.CloudQuotaExceeded),  # Nova's "Quota exceeded for instances"
            (403, "Policy doesn't allow os_compute_api:servers:show", cb.CloudError),
            (413, None, cb.CloudQuotaExceeded),  # Cinder's gigabytes quota
            (400, None, cb.CloudBadRequest),
            (500, None, cb.CloudUnavailable),
            (502, None, cb.CloudUnavailable),
            (503, None, cb.CloudUnavailable),
            (504, None, cb.CloudUnavailable),
        ],
    )
    async def test_injected_status(
        self,
        fake: FakeOpenStack,
        backend: OpenStackBackend,
        status: int,
        message: str | None,
        error: type[cb.CloudError],
    ) -> None:
        fake.faults.fail("GET", SERVER, status, message=message)
        with pytest.raises(cb.CloudError) as caught:
            await backend.get_server("6e7a0f2c-0000-4000-8000-000000000001")
        assert type(caught.value) is error
        assert str(status) in caught.value.message
        assert len(fake.requests("GET", SERVER)) == 1  # no retry inside the backend

    async def test_quota_on_volume_create(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        fake.faults.fail("POST", r"/volumes$", 413)
        with pytest.raises(cb.CloudQuotaExceeded, match="gigabytes quota"):
            await backend.create_volume(name="big", size_gb=5000, tag="op-q")

    async def test_real_quota_on_server_create(self) -> None:
        with FakeOpenStack(quotas={"instances": 1}) as small:
            cloud = make_backend(small)
            await cloud.start()
            try:
                await active_server(cloud, "op-q1")
                with pytest.raises(cb.CloudQuotaExceeded, match="instances"):
                    await active_server(cloud, "op-q2")
            finally:
                await cloud.close()

    async def test_429_carries_retry_after_seconds(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        fake.faults.fail("GET", r"/servers/detail$", 429, retry_after=7)
        with pytest.raises(cb.CloudUnavailable) as caught:
            await backend.list_servers()
        assert caught.value.retry_after == 7.0
        assert caught.value.transient

    async def test_503_carries_retry_after_date(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        fake.faults.fail("GET", r"/volumes/detail$", 503, retry_after=when)
        with pytest.raises(cb.CloudUnavailable) as caught:
            await backend.list_volumes()
        assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 31

    async def test_wrong_state_is_a_conflict(self, backend: OpenStackBackend) -> None:
        server = await active_server(backend, "op-c")
        with pytest.raises(cb.CloudConflict):
            await backend.unpause_server(server.id)
        with pytest.raises(cb.CloudConflict):
            await backend.confirm_resize(server.id)


class TestTransport:
    async def test_connection_refused_is_unavailable(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cloud = OpenStackBackend(
            {
                "auth_url": f"http://127.0.0.1:{port}/identity",
                "username": "u",
                "password": "p",
                "project_name": "p",
                "user_domain_name": "Default",
                "project_domain_name": "Default",
                "load_envvars": False,
                "load_yaml_config": False,
            },
            call_timeout=2,
        )
        await cloud.start()  # logs and carries on: the cloud may come back
        try:
            with pytest.raises(cb.CloudUnavailable):
                await cloud.list_servers()
        finally:
            await cloud.close()

    async def test_cloud_that_went_away_is_unavailable(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        await backend.list_servers()
        fake.stop()
        with pytest.raises(cb.CloudUnavailable):
            await backend.list_servers()

    async def test_dropped_connection_is_unavailable(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        fake.faults.drop("GET", r"/servers/detail$")
        with pytest.raises(cb.CloudUnavailable):
            await backend.list_servers()
        assert await backend.list_servers() == []

    async def test_slow_answer_times_out_as_unavailable(self, fake: FakeOpenStack) -> None:
        cloud = make_backend(fake, call_timeout=0.3)
        await cloud.start()
        try:
            fake.faults.latency("GET", r"/servers/detail$", 1.0, times=1)
            started = time.monotonic()
            with pytest.raises(cb.CloudUnavailable):
                await cloud.list_servers()
            assert time.monotonic() - started < 0.9
        finally:
            await cloud.close()


class TestUnauthorized:
    async def test_a_revoked_token_is_renewed(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        await backend.list_servers()
        fake.revoke_tokens()
        assert await backend.list_servers() == []
        assert fake.auth_count == 2

    async def test_a_401_that_survives_keystoneauth_is_retried_once_here(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        server = await active_server(backend, "op-401")
        fake.clear_journal()
        fake.faults.fail("GET", SERVER, 401, times=2)  # keystoneauth re-auths once, then gives up
        assert (await backend.get_server(server.id)).id == server.id
        assert len(fake.requests("GET", SERVER)) == 3

    async def test_a_persistent_401_is_unavailable_after_one_retry(
        self, fake: FakeOpenStack, backend: OpenStackBackend
    ) -> None:
        await backend.list_servers()
        fake.clear_journal()
        fake.faults.fail("GET", r"/servers/detail$", 401, times=None)
        with pytest.raises(cb.CloudUnavailable):
            await backend.list_servers()
        assert len(fake.requests("GET", r"/servers/detail$")) == 4  # 2 attempts x keystoneauth's 2
