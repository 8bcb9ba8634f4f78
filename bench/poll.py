"""One batched listing against one GET per server, for the poller's view of N servers."""

from __future__ import annotations

import asyncio
import statistics
import time
import warnings
from datetime import UTC, datetime, timedelta

from tests.fake_openstack import FakeOpenStack

from sog_api.cloud import base as cb
from sog_api.cloud.openstack import OpenStackBackend

SIZES = (10, 50, 200)
ROUNDS = 5


async def _boot(cloud: OpenStackBackend, count: int) -> list[str]:
    ids = []
    for n in range(count):
        volume = await cloud.create_volume(name=f"b{n}", size_gb=10, tag=f"bench-{n}")
        server = await cloud.create_server(
            cb.ServerSpec(
                name=f"b{n}", flavor_ref="sog.meteor", boot_volume_id=volume.id, tag=f"bench-{n}"
            )
        )
        ids.append(server.id)
    return ids


async def _seconds(call: object) -> float:
    started = time.perf_counter()
    await call  # type: ignore[misc]
    return time.perf_counter() - started


async def _measure(fake: FakeOpenStack, count: int) -> tuple[float, float]:
    cloud = OpenStackBackend(fake.connect_kwargs(), call_timeout=30.0, pool_size=16)
    await cloud.start()
    try:
        ids = await _boot(cloud, count)
        fake.settle()
        since = datetime.now(UTC) - timedelta(minutes=5)
        batched, single = [], []
        for _ in range(ROUNDS):
            batched.append(await _seconds(cloud.list_servers(since)))
            single.append(await _seconds(asyncio.gather(*(cloud.get_server(i) for i in ids))))
        return statistics.median(batched), statistics.median(single)
    finally:
        await cloud.close()


def main() -> None:
    warnings.simplefilter("ignore")  # the SDK's own deprecation chatter
    print("poll: one servers/detail listing vs one GET per server (median of 5, loopback HTTP)")
    print(f"  {'servers':>7}  {'listing ms':>10}  {'GETs ms':>9}  {'GETs / listing':>14}")
    for count in SIZES:
        with FakeOpenStack(delay_scale=0.0) as fake:
            batched, single = asyncio.run(_measure(fake, count))
        print(
            f"  {count:>7}  {batched * 1000:>10.1f}  {single * 1000:>9.1f}"
            f"  {single / batched:>13.1f}x"
        )
