"""Typed dependencies: the session, the caller's project, the settings and the cloud."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.cloud.base import CloudBackend
from sog_api.errors import Unauthorized
from sog_api.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; routes commit with ``async with session.begin()``.

    Reads get a session that does not take SQLite's write lock (see ``db.engine.read_only``).
    """
    state = request.app.state
    factory = state.read_sessionmaker if request.method in READ_METHODS else state.sessionmaker
    async with factory() as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_cloud(request: Request) -> CloudBackend:
    return request.app.state.cloud


@dataclass(frozen=True)
class Caller:
    """Who is calling: the project every resource of the request belongs to."""

    project_id: int


async def get_caller(request: Request) -> Caller:
    """The caller's project, as the authentication middleware found it (fails closed)."""
    project_id = getattr(request.state, "project_id", None)
    if project_id is None:  # only when the auth middleware did not run: never guess a project
        raise Unauthorized("Authentication required.", headers={"WWW-Authenticate": "Token"})
    return Caller(project_id=project_id)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CloudDep = Annotated[CloudBackend, Depends(get_cloud)]
CallerDep = Annotated[Caller, Depends(get_caller)]
