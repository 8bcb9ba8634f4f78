"""Every table, imported in one place so Alembic and tests see the whole schema."""

from sog_api.catalog.models import AvailabilityZone, Flavor, Image, VolumeTemplate
from sog_api.cloud.simulator_models import SimServer, SimVolume
from sog_api.db.base import Base
from sog_api.operations.models import IdempotencyKey, Operation
from sog_api.orbits.models import Orbit
from sog_api.projects.models import ApiKey, Project
from sog_api.volumes.models import Volume

__all__ = [
    "ApiKey", "AvailabilityZone", "Base", "Flavor", "IdempotencyKey", "Image", "Operation", "Orbit",
    "Project", "SimServer", "SimVolume", "Volume", "VolumeTemplate",
]  # fmt: skip
