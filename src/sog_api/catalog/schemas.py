"""Response shapes of the catalogue endpoints (the seed's field names, alphabetical)."""

from __future__ import annotations

from pydantic import BaseModel


class FlavorRead(BaseModel):
    flavor_code: str
    hourly: float
    id: int
    is_configurable: bool
    name: str
    network_usage: int
    ram: int
    vcpus: int


class ImageRead(BaseModel):
    id: int
    image_name: str
    os_distro: str


class VolumeTemplateRead(BaseModel):
    capacity: int
    hourly: float
    id: int
    monthly: float


class PayloadRead(BaseModel):
    flavors: list[FlavorRead]
    images: list[ImageRead]
    volumes: list[VolumeTemplateRead]


def flavor_read(flavor: object) -> FlavorRead:
    return FlavorRead.model_validate(flavor, from_attributes=True)
