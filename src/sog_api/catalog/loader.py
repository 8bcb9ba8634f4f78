"""Load the catalogue file (TOML) and upsert it into the database."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.catalog.models import AvailabilityZone, Flavor, Image, VolumeTemplate


class FlavorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=64)
    vcpus: int = Field(ge=1, le=99)
    ram: int = Field(ge=1, le=999)
    hourly: float = Field(ge=0)
    network_usage: int = Field(ge=0)
    is_configurable: bool = False
    backend_flavor: str = Field(min_length=1)


class ImageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=1)
    image_name: str = Field(min_length=1)
    os_distro: str = Field(min_length=1)
    backend_image: str = Field(min_length=1)
    min_disk_gb: int = Field(1, ge=1)


class TemplateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=1)
    capacity: int = Field(ge=1)
    hourly: float = Field(ge=0)
    monthly: float = Field(ge=0)


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability_zones: list[str] = Field(min_length=1)
    flavors: list[FlavorEntry] = Field(min_length=1)
    images: list[ImageEntry] = Field(min_length=1)
    volume_templates: list[TemplateEntry] = Field(min_length=1)


class CatalogError(Exception):
    """The catalogue file cannot be read or is invalid."""


def read_catalog(path: Path) -> CatalogFile:
    """Parse and validate a catalogue file."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        catalog = CatalogFile.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    for section in ("flavors", "images", "volume_templates"):
        ids = [entry.id for entry in getattr(catalog, section)]
        if len(ids) != len(set(ids)):
            raise CatalogError(f"{path}: duplicate id in {section}")
    return catalog


async def load_catalog(session: AsyncSession, catalog: CatalogFile) -> dict[str, int]:
    """Upsert the catalogue; entries missing from the file are kept but marked inactive."""
    counts: dict[str, int] = {}
    sections: list[tuple[Any, list[dict[str, Any]]]] = [
        (Flavor, [f.model_dump() for f in catalog.flavors]),
        (Image, [i.model_dump() for i in catalog.images]),
        (VolumeTemplate, [t.model_dump() for t in catalog.volume_templates]),
        (AvailabilityZone, [{"name": z} for z in catalog.availability_zones]),
    ]
    for model, rows in sections:
        await session.execute(update(model).values(active=False))
        for row in rows:
            await session.merge(model(**row, active=True))
        counts[model.__tablename__] = len(rows)
    await session.flush()
    return counts
