"""Nudge the in-process worker after a commit, so new operations start without a poll delay."""

from __future__ import annotations

import asyncio

from fastapi import Request


def wake_worker(request: Request) -> None:
    event: asyncio.Event | None = getattr(request.app.state, "wake", None)
    if event is not None:
        event.set()
