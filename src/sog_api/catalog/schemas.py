"""Response shapes of the catalogue endpoints (the seed's field names, alphabetical)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, PlainSerializer, WithJsonSchema


def _whole_as_int(value: float) -> float | int:
    """1.0 is written 1, as the seed shows monthly prices; 1.5 stays 1.5."""
    return int(value) if value.is_integer() else value


Price = Annotated[
    float,
    PlainSerializer(_whole_as_int, return_type=float | int),
    WithJsonSchema({"type": "number"}),
]


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
    monthly: Price


class PayloadRead(BaseModel):
    flavors: list[FlavorRead]
    images: list[ImageRead]
    volumes: list[VolumeTemplateRead]


def flavor_read(flavor: object) -> FlavorRead:
    return FlavorRead.model_validate(flavor, from_attributes=True)
