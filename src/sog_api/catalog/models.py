"""Catalogue tables: flavors, images, volume templates and availability zones."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sog_api.db.base import Base


class Flavor(Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer)
    ram: Mapped[int] = mapped_column(Integer)
    hourly: Mapped[float] = mapped_column(Float)
    network_usage: Mapped[int] = mapped_column(Integer)
    is_configurable: Mapped[bool] = mapped_column(Boolean, default=False)
    backend_flavor: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def flavor_code(self) -> str:
        """Two digits of vCPUs then three of RAM in GB, as the seed's catalogue."""
        return f"{self.vcpus:02d}{self.ram:03d}"


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    image_name: Mapped[str] = mapped_column(String(255))
    os_distro: Mapped[str] = mapped_column(String(64))
    backend_image: Mapped[str] = mapped_column(String(255))
    min_disk_gb: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class VolumeTemplate(Base):
    __tablename__ = "volume_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    capacity: Mapped[int] = mapped_column(Integer, unique=True)
    hourly: Mapped[float] = mapped_column(Float)
    monthly: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AvailabilityZone(Base):
    __tablename__ = "availability_zones"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
