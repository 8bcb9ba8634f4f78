"""Fixtures: a fake OpenStack on loopback, an OpenStackBackend connected to it, and the app.

The root conftest's ``app`` and ``client`` fixtures build the app from ``settings``; here
``settings`` selects ``cloud="openstack"`` and the ``OS_*`` environment points at ``fake`` (and at
nothing else: the developer's own ``OS_*`` variables and ``clouds.yaml`` are hidden).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sog_api.cloud.openstack import OpenStackBackend
from sog_api.settings import Settings
from tests.cloud.helpers import make_backend
from tests.conftest import make_settings
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
def fake_options() -> dict[str, Any]:
    """Override (or parametrize) to start the fake with other options."""
    return {}


@pytest.fixture
def fake(fake_options: dict[str, Any]) -> Iterator[FakeOpenStack]:
    with FakeOpenStack(**{"delay_scale": 0.01, **fake_options}) as cloud:
        yield cloud


@pytest.fixture
def isolated_os_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hide the developer's OS_* variables and clouds.yaml; return the clouds.yaml in use."""
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    clouds, secure = tmp_path / "clouds.yaml", tmp_path / "secure.yaml"
    clouds.write_text("clouds: {}\n")
    secure.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(secure))
    return clouds


@pytest.fixture
def os_environ(
    fake: FakeOpenStack, isolated_os_config: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The standard OS_* variables, pointing at the fake, as an operator would export them."""
    values = fake.os_environ()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


# Fast worker cycles; no drift pass after the first one, so listings count poll cycles only.
OPENSTACK_FAST = {
    "cloud": "openstack",
    "worker_poll_interval": 0.05,
    "reconcile_interval": 3600.0,
    "os_call_timeout": 10.0,
}


@pytest.fixture
def settings(
    database_url: str, settings_overrides: dict[str, Any], os_environ: dict[str, str]
) -> Settings:
    """The app's settings: SOG_CLOUD=openstack, credentials from the OS_* environment."""
    return make_settings(database_url, **{**OPENSTACK_FAST, **settings_overrides})


@pytest.fixture
async def backend(fake: FakeOpenStack) -> AsyncIterator[OpenStackBackend]:
    cloud = make_backend(fake)
    await cloud.start()
    yield cloud
    await cloud.close()
