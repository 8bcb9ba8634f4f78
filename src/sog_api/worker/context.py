"""What an action handler gets: the operation, the cloud, settings and read access to rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sog_api.cloud.base import CloudBackend
from sog_api.operations.models import Operation
from sog_api.secrets import SecretBox
from sog_api.settings import Settings

T = TypeVar("T")


@dataclass
class ActionContext:
    op: Operation
    cloud: CloudBackend
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]

    async def load(self, model: type[T], ident: Any) -> T | None:
        """Read a row in a short transaction of its own (never held across a cloud call)."""
        async with self.sessions() as session:
            return await session.get(model, ident)

    def open_secret(self) -> str | None:
        if self.op.secret is None:
            return None
        return SecretBox(self.settings.secret_key).open(self.op.secret)
