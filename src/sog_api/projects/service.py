"""Projects: find or make one by name, list them, set their quotas."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.projects.models import Project
from sog_api.settings import Settings

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
QUOTA_COLUMNS = ("quota_orbits", "quota_vcpus", "quota_ram_gb", "quota_volume_gb")


def check_project_name(name: str) -> str:
    if not PROJECT_NAME.match(name):
        raise ValueError(
            "a project name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter"
            " or digit"
        )
    return name


async def get_project(session: AsyncSession, name: str) -> Project | None:
    return await session.scalar(select(Project).where(Project.name == name))


async def get_or_create_project(
    session: AsyncSession, settings: Settings, name: str
) -> tuple[Project, bool]:
    """The project called ``name``, made with the default quotas when missing (and True)."""
    check_project_name(name)
    project = await get_project(session, name)
    if project is not None:
        return project, False
    project = Project(
        name=name,
        quota_orbits=settings.default_quota_orbits,
        quota_vcpus=settings.default_quota_vcpus,
        quota_ram_gb=settings.default_quota_ram_gb,
        quota_volume_gb=settings.default_quota_volume_gb,
    )
    try:
        async with session.begin_nested():
            session.add(project)
    except IntegrityError:  # made by someone else meanwhile
        existing = await get_project(session, name)
        assert existing is not None
        return existing, False
    return project, True


async def list_projects(session: AsyncSession) -> list[Project]:
    return list(await session.scalars(select(Project).order_by(Project.id)))


async def set_quotas(
    session: AsyncSession, project: Project, quotas: dict[str, int | None]
) -> None:
    """Set the given ``quota_*`` columns (None: unlimited); other columns keep their value."""
    for column, value in quotas.items():
        if column not in QUOTA_COLUMNS:
            raise ValueError(f"unknown quota {column}")
        if value is not None and value < 0:
            raise ValueError(f"{column} must be at least 0")
        setattr(project, column, value)
    await session.flush()
