"""Build the cloud backend the settings ask for."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud.base import CloudBackend
from sog_api.settings import Settings


def build_cloud(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CloudBackend:
    if settings.cloud == "openstack":
        from sog_api.cloud.openstack import OpenStackBackend

        return OpenStackBackend.from_settings(settings)
    from sog_api.cloud.simulator import SimulatorBackend

    return SimulatorBackend(sessions, settings.simulator_delay_scale)
