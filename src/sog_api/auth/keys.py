"""API keys: random, shown once, stored only as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.db.base import utcnow
from sog_api.projects.models import ApiKey, Project

log = logging.getLogger("sog_api.auth")

KEY_PREFIX = "sog_"
SHOWN_PREFIX_LENGTH = 12  # "sog_" and 8 random characters: enough to tell keys apart
MAX_KEY_LENGTH = 256


def generate_key() -> str:
    """A new key: ``sog_`` and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key.

    A plain SHA-256 suffices: the keys carry at least 128 random bits, so neither a salt nor a
    slow hash is needed against guessing, and keys survive a change of SOG_SECRET_KEY.
    """
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only moment its clear text exists on our side."""

    id: int
    project_id: int
    prefix: str
    key: str


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as (``key_id`` is None when authentication is disabled)."""

    key_id: int | None
    project_id: int


@dataclass(frozen=True)
class KeyListing:
    id: int
    prefix: str
    project: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


async def create_key(
    session: AsyncSession, project_id: int, *, key: str | None = None, label: str | None = None
) -> NewKey:
    """Store a key (a new random one unless ``key`` is given) for the project."""
    key = key or generate_key()
    row = ApiKey(
        project_id=project_id, prefix=key[:SHOWN_PREFIX_LENGTH], key_hash=hash_key(key),
        label=label,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    return NewKey(id=row.id, project_id=project_id, prefix=row.prefix, key=key)


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """The principal of an active key, or None. The digests are compared in constant time."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(presented)
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.project_id, ApiKey.key_hash).where(
                ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(key_id=row.id, project_id=row.project_id)


async def list_keys(session: AsyncSession, project: str | None = None) -> list[KeyListing]:
    """Every key (never its clear text), oldest first, optionally of one project."""
    query = select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id)
    if project is not None:
        query = query.where(Project.name == project)
    rows = await session.execute(query.order_by(ApiKey.id))
    return [
        KeyListing(
            id=key.id,
            prefix=key.prefix,
            project=name,
            label=key.label,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        for key, name in rows
    ]


async def revoke_key(session: AsyncSession, key_id: int) -> tuple[ApiKey, bool] | None:
    """Revoke a key at once (the row stays for the record): the key and whether it was active."""
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update())
    if key is None:
        return None
    if key.revoked_at is not None:
        return key, False
    key.revoked_at = utcnow()
    await session.flush()
    log.info("api_key_revoked key_id=%s project_id=%s", key.id, key.project_id)
    return key, True


async def has_active_key(session: AsyncSession, project_id: int) -> bool:
    found = await session.scalar(
        select(ApiKey.id)
        .where(ApiKey.project_id == project_id, ApiKey.revoked_at.is_(None))
        .limit(1)
    )
    return found is not None


async def ensure_key(session: AsyncSession, project_id: int, key: str, label: str) -> bool:
    """Make sure ``key`` is stored; True when it was added now. A revoked key stays revoked."""
    existing = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if existing is None:
        await create_key(session, project_id, key=key, label=label)
        return True
    if existing.revoked_at is not None:
        log.warning(
            "bootstrap_api_key_revoked key_id=%s: it stays revoked; set another"
            " SOG_BOOTSTRAP_API_KEY",
            existing.id,
        )
    return False
