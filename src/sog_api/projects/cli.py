"""``sog-api projects``: list projects and set their quotas."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.projects import service
from sog_api.projects.models import Project
from sog_api.settings import Settings

T = TypeVar("T")

projects_app = typer.Typer(help="Projects and their quotas.", no_args_is_help=True)


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction against the configured database."""
    from sog_api.db.engine import create_engine, create_sessionmaker

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _limit(value: str | None) -> int | None:
    if value is None or value.lower() in ("unlimited", "none", "null"):
        return None
    if not value.isdigit():
        raise typer.BadParameter("a whole number, or 'unlimited'")
    return int(value)


def _quota_text(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _describe(project: Project) -> str:
    quotas = ", ".join(
        f"{column.removeprefix('quota_')}={_quota_text(getattr(project, column))}"
        for column in service.QUOTA_COLUMNS
    )
    return f"{project.id}\t{project.name}\t{quotas}"


@projects_app.command("create")
def create_project(name: str = typer.Argument(..., help="Project name")) -> None:
    """Create a project with the default quotas (SOG_DEFAULT_QUOTA_*)."""
    settings = Settings()

    async def work(session: AsyncSession) -> tuple[Project, bool]:
        return await service.get_or_create_project(session, settings, name)

    try:
        project, created = in_transaction(settings, work)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(("created " if created else "exists  ") + _describe(project))


@projects_app.command("list")
def list_projects() -> None:
    """List the projects with their quotas."""
    for project in in_transaction(Settings(), service.list_projects):
        typer.echo(_describe(project))


QUOTA_HELP = "a whole number, or 'unlimited'"


@projects_app.command("set-quota")
def set_quota(
    name: str = typer.Argument(..., help="Project name"),
    orbits: str | None = typer.Option(None, help=f"Orbits: {QUOTA_HELP}"),
    vcpus: str | None = typer.Option(None, help=f"vCPUs: {QUOTA_HELP}"),
    ram_gb: str | None = typer.Option(None, "--ram-gb", help=f"RAM in GB: {QUOTA_HELP}"),
    volume_gb: str | None = typer.Option(None, "--volume-gb", help=f"Volume GB: {QUOTA_HELP}"),
) -> None:
    """Set some quotas of a project (options not given keep their value)."""
    given = {"quota_orbits": orbits, "quota_vcpus": vcpus, "quota_ram_gb": ram_gb,
             "quota_volume_gb": volume_gb}  # fmt: skip
    quotas = {column: _limit(value) for column, value in given.items() if value is not None}

    async def work(session: AsyncSession) -> Project | None:
        project = await service.get_project(session, name)
        if project is not None:
            await service.set_quotas(session, project, quotas)
        return project

    project = in_transaction(Settings(), work)
    if project is None:
        raise fail(f"no project named {name!r}")
    typer.echo(_describe(project))
