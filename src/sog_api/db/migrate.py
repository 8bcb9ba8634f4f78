"""Run the Alembic migrations (one linear history for SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from sog_api.settings import Settings


def migrations_dir() -> Path:
    """Where the migration scripts are: beside the source tree, or SOG_MIGRATIONS_DIR."""
    configured = os.environ.get("SOG_MIGRATIONS_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [Path(__file__).resolve().parents[3] / "migrations", Path.cwd() / "migrations"]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("migrations directory not found; set SOG_MIGRATIONS_DIR")


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (blocking: call from a thread in async code)."""
    command.upgrade(alembic_config(settings), revision)
