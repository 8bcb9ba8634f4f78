"""Helpers for the OpenStack backend tests: a backend on the fake, polling, ready resources."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sog_api.cloud import base as cb
from sog_api.cloud.openstack import OpenStackBackend
from tests.fake_openstack import FakeOpenStack

T = TypeVar("T")


def make_backend(fake: FakeOpenStack, **kwargs: object) -> OpenStackBackend:
    options: dict[str, object] = {"call_timeout": 5.0, "pool_size": 16}
    options.update(kwargs)
    return OpenStackBackend(fake.connect_kwargs(), **options)  # type: ignore[arg-type]


async def wait_for(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``fetch`` until ``done`` holds for its result; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; last value: {value!r}")
        await asyncio.sleep(0.01)


async def available_volume(
    cloud: OpenStackBackend, tag: str, *, image_ref: str | None = "fedora-24", size_gb: int = 10
) -> cb.VolumeInfo:
    created = await cloud.create_volume(
        name=f"vol-{tag}", size_gb=size_gb, tag=tag, image_ref=image_ref
    )
    return await wait_for(lambda: cloud.get_volume(created.id), lambda v: v.status == "available")


async def active_server(
    cloud: OpenStackBackend, tag: str, flavor_ref: str = "sog.comet", **spec: object
) -> cb.ServerInfo:
    root = await available_volume(cloud, tag)
    created = await cloud.create_server(
        cb.ServerSpec(
            name=f"vm-{tag}", flavor_ref=flavor_ref, boot_volume_id=root.id, tag=tag, **spec
        )  # type: ignore[arg-type]
    )
    return await wait_for(lambda: cloud.get_server(created.id), lambda s: s.status == "ACTIVE")
