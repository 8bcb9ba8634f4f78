"""Service settings, read from the environment (prefix ``SOG_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOG = Path(__file__).parent / "catalog" / "default_catalog.toml"
DEV_SECRET_KEY = "dev-only-secret-key-change-me"


class Settings(BaseSettings):
    """Everything an operator can set; each field is documented in the README's table."""

    # hide_input_in_errors: an invalid setting's error never shows its value (a key, a secret,
    # a database URL's password), in a traceback or a log line
    model_config = SettingsConfigDict(
        env_prefix="SOG_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./sog.db"
    db_pool_size: int = Field(10, ge=1, le=200)
    db_pool_timeout: float = Field(5.0, gt=0)
    db_statement_timeout: float = Field(15.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = False

    cloud: Literal["simulator", "openstack"] = "simulator"
    simulator_delay_scale: float = Field(1.0, ge=0)
    catalog_file: Path = DEFAULT_CATALOG
    load_catalog_on_start: bool = True
    migrate_on_start: bool = False

    run_worker: bool = True
    worker_concurrency: int = Field(8, ge=1, le=256)
    worker_poll_interval: float = Field(1.0, gt=0)
    worker_lease_seconds: float = Field(60.0, gt=0)
    worker_step_timeout: float = Field(120.0, gt=0)
    worker_shutdown_grace: float = Field(10.0, ge=0)
    reconcile_interval: float = Field(30.0, gt=0)
    operation_deadline_seconds: float = Field(3600.0, gt=0)
    max_vm_count: int = Field(10, ge=1, le=1000)

    secret_key: str = DEV_SECRET_KEY

    # Authentication, quotas and abuse limits (see sog_api.auth and sog_api.projects.quotas).
    auth: Literal["enabled", "disabled"] = "enabled"
    bootstrap_api_key: SecretStr | None = None
    rate_limit_per_minute: int = Field(600, ge=0, le=1_000_000)
    auth_failure_limit_per_minute: int = Field(60, ge=0, le=1_000_000)
    max_body_bytes: int = Field(65536, ge=0)
    max_url_length: int = Field(16384, ge=256)
    body_timeout: float = Field(30.0, gt=0)
    default_quota_orbits: int | None = Field(None, ge=0)
    default_quota_vcpus: int | None = Field(None, ge=0)
    default_quota_ram_gb: int | None = Field(None, ge=0)
    default_quota_volume_gb: int | None = Field(None, ge=0)

    # OpenStack backend (SOG_CLOUD=openstack); credentials come from OS_CLOUD / OS_* variables.
    os_cloud: str | None = None
    os_network: str = "auto"
    os_call_timeout: float = Field(60.0, gt=0)
    os_thread_pool_size: int = Field(16, ge=1, le=256)
    os_compute_microversion: str = "2.79"
    os_volume_microversion: str = "3.42"

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB")
        return value

    @field_validator("bootstrap_api_key")
    @classmethod
    def _usable_bootstrap_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        key = value.get_secret_value()
        if not 32 <= len(key) <= 256:
            raise ValueError("SOG_BOOTSTRAP_API_KEY must be 32 to 256 characters long")
        if not all("!" <= c <= "~" for c in key):
            # "Authorization: Token <key>" carries no spaces, control characters or (as sent by
            # clients) non-ASCII text that would hash as stored: such a key could never be used
            raise ValueError(
                "SOG_BOOTSTRAP_API_KEY must be printable ASCII without spaces (no whitespace,"
                " control or non-ASCII characters)"
            )
        return value

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.env == "production":
            if self.auth == "disabled":
                raise ValueError("SOG_ENV=production refuses SOG_AUTH=disabled")
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError(
                    "SOG_ENV=production needs SOG_SECRET_KEY set to a random value of at least"
                    " 32 characters (the development default is refused)"
                )
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings()
