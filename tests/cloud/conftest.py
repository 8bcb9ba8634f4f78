"""Fixtures: a fake OpenStack on loopback and an OpenStackBackend connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sog_api.cloud.openstack import OpenStackBackend
from tests.cloud.helpers import make_backend
from tests.fake_openstack import FakeOpenStack

HERE = Path(__file__).parent

# openstacksdk 4.22 warns from its own code on every connect (InfluxDB) and resource
# (_compute_attributes): PendingDeprecationWarnings, silent outside -W error.
SDK_WARNINGS = (
    "ignore::openstack.warnings.OpenStackWarning",
    "ignore::openstack.warnings.RemovedInSDK50Warning",
    "ignore::openstack.warnings.RemovedInSDK60Warning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            for spec in SDK_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def fake() -> Iterator[FakeOpenStack]:
    with FakeOpenStack(delay_scale=0.01) as cloud:
        yield cloud


@pytest.fixture
async def backend(fake: FakeOpenStack) -> AsyncIterator[OpenStackBackend]:
    cloud = make_backend(fake)
    await cloud.start()
    yield cloud
    await cloud.close()
