"""``sog-api keys``: create (shown once), list and revoke API keys."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.auth import keys
from sog_api.http import format_timestamp
from sog_api.projects import service
from sog_api.projects.cli import fail, in_transaction
from sog_api.projects.models import DEFAULT_PROJECT_NAME
from sog_api.settings import Settings

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


@keys_app.command("create")
def create_key(
    project: str = typer.Option(
        DEFAULT_PROJECT_NAME, "--project", "-p", help="Project of the key (made when missing)"
    ),
    label: str | None = typer.Option(None, "--label", help="A note to recognise the key by"),
) -> None:
    """Create an API key and print it once: only its hash is stored.

    The key alone goes to standard output (KEY=$(sog-api keys create --project acme)).
    """
    settings = Settings()

    async def work(session: AsyncSession) -> tuple[keys.NewKey, bool]:
        owner, created = await service.get_or_create_project(session, settings, project)
        await session.flush()
        return await keys.create_key(session, owner.id, label=label), created

    try:
        new, created = in_transaction(settings, work)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if created:
        typer.echo(f"created project {project!r}", err=True)
    typer.echo(
        f"created API key id={new.id} prefix={new.prefix} project={project!r};"
        " it is shown only this once:",
        err=True,
    )
    typer.echo(new.key)


@keys_app.command("list")
def list_keys(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project's keys"),
) -> None:
    """List the keys: id, prefix, project, created, revoked, label (never the key itself)."""

    async def work(session: AsyncSession) -> list[keys.KeyListing]:
        return await keys.list_keys(session, project)

    listing = in_transaction(Settings(), work)
    typer.echo("ID\tPREFIX\tPROJECT\tCREATED\tREVOKED\tLABEL")
    for key in listing:
        revoked = format_timestamp(key.revoked_at) if key.revoked_at else "-"
        typer.echo(
            f"{key.id}\t{key.prefix}\t{key.project}\t{format_timestamp(key.created_at)}"
            f"\t{revoked}\t{key.label or ''}"
        )


@keys_app.command("revoke")
def revoke_key(key_id: int = typer.Argument(..., help="The key's id (see keys list)")) -> None:
    """Revoke a key: requests with it are refused from now on."""

    async def work(session: AsyncSession) -> tuple[str, bool] | None:
        outcome = await keys.revoke_key(session, key_id)
        return None if outcome is None else (outcome[0].prefix, outcome[1])

    outcome = in_transaction(Settings(), work)
    if outcome is None:
        raise fail(f"no API key with id {key_id}")
    prefix, now = outcome
    typer.echo(f"{'revoked' if now else 'already revoked:'} API key id={key_id} prefix={prefix}")
