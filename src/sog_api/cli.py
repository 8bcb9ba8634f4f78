"""The ``sog-api`` command: serve, worker, migrate and catalogue management."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from sog_api.auth.cli import keys_app
from sog_api.projects.cli import projects_app
from sog_api.settings import Settings

app = typer.Typer(
    help="System on Grid API service.", no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")
catalog_app = typer.Typer(help="Catalogue: flavors, images, volume templates, zones.")
app.add_typer(catalog_app, name="catalog")


def _logging(settings: Settings) -> None:
    from sog_api.logs import configure_logging

    configure_logging(settings)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from sog_api.db.migrate import upgrade

    settings = Settings()
    _logging(settings)
    upgrade(settings)
    typer.echo("database schema is up to date")


@app.command()
def serve(
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate", help="Migrate first."),
) -> None:
    """Serve the API (and, unless SOG_RUN_WORKER=false, the worker) with uvicorn."""
    import uvicorn

    from sog_api.db.migrate import upgrade
    from sog_api.main import create_app

    settings = Settings()
    _logging(settings)
    if migrate_first:
        upgrade(settings)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port,
        log_level=settings.log_level.lower(), access_log=False, log_config=None,
    )  # fmt: skip


@app.command()
def worker() -> None:
    """Run a worker process only (no HTTP): claims operations and polls the cloud."""
    settings = Settings()
    _logging(settings)
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from sog_api.cloud.factory import build_cloud
    from sog_api.db.engine import create_engine, create_sessionmaker
    from sog_api.worker.runner import Worker

    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    cloud = build_cloud(settings, sessions)
    await cloud.start()
    runner = Worker(settings, sessions, cloud)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner.start()
    logging.getLogger("sog_api.worker").info("worker_started id=%s", runner.id)
    await stop.wait()
    await runner.stop()
    logging.getLogger("sog_api.worker").info("worker_stopped id=%s", runner.id)
    await cloud.close()
    await engine.dispose()


@app.command()
def openapi(path: str = typer.Argument("openapi/openapi.json", help="Where to write it")) -> None:
    """Write the OpenAPI document the app serves (sorted keys, stable diff)."""
    from pathlib import Path

    from sog_api.main import create_app, openapi_json

    Path(path).write_text(openapi_json(create_app()), encoding="utf-8")
    typer.echo(f"wrote {path}")


@catalog_app.command("load")
def catalog_load(
    path: str = typer.Argument(None, help="Catalogue file (default: SOG_CATALOG_FILE)"),
) -> None:
    """Upsert the catalogue file into the database."""
    from pathlib import Path

    settings = Settings()
    catalog_path = Path(path) if path else settings.catalog_file
    counts = asyncio.run(_load(settings, catalog_path))
    typer.echo(", ".join(f"{n} {name}" for name, n in counts.items()))


async def _load(settings: Settings, path: object) -> dict[str, int]:
    from pathlib import Path

    from sog_api.catalog.loader import load_catalog, read_catalog
    from sog_api.db.engine import create_engine, create_sessionmaker

    catalog = read_catalog(Path(str(path)))
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            return await load_catalog(session, catalog)
    finally:
        await engine.dispose()


@catalog_app.command("check")
def catalog_check() -> None:
    """Check that every catalogue flavor and image exists in the cloud.

    Exit 1 when some do not (each is named), 2 when the cloud cannot be asked.
    """
    from sog_api.cloud.base import CloudError

    settings = Settings()
    try:
        missing = asyncio.run(_check(settings))
    except CloudError as exc:  # unreachable, refused credentials, a cloud too old
        typer.echo(f"cannot check the catalogue against the cloud: {exc.message}", err=True)
        raise typer.Exit(2) from None
    for line in missing:
        typer.echo(line)
    if missing:
        raise typer.Exit(1)
    typer.echo("every catalogue flavor and image exists in the cloud")


async def _check(settings: Settings) -> list[str]:
    from sog_api.catalog.check import missing_in_cloud
    from sog_api.cloud.factory import build_cloud
    from sog_api.db.engine import create_engine, create_sessionmaker

    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    cloud = build_cloud(settings, sessions)
    try:
        await cloud.start()
        async with sessions() as session:
            return await missing_in_cloud(session, cloud)
    finally:
        await cloud.close()
        await engine.dispose()


def _setting_name(location: tuple[object, ...]) -> str:
    return "SOG_" + str(location[0]).upper() if location else "settings"


def main() -> None:
    """The console script: the commands above, with one clear line instead of a traceback for
    the failures an operator fixes (a bad setting, an unreachable database, a bad catalogue)."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from sog_api.catalog.loader import CatalogError

    try:
        app()
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"sog-api: {_setting_name(error['loc'])}: {error['msg']}", err=True)
        raise SystemExit(2) from None
    except CatalogError as exc:
        typer.echo(f"sog-api: the catalogue file is invalid: {exc}", err=True)
        raise SystemExit(2) from None
    except (OSError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"sog-api: the database cannot be used: {reason}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
