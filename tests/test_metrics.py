"""/metrics: request counts by route template, and queue and resource gauges from the database."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import create_orbit


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition text, or None when it is absent."""
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")) == labels:
            return float(match.group(2))
    return None


@pytest.mark.parametrize("settings_overrides", [{"run_worker": False}])  # operations stay queued
class TestMetrics:
    async def test_requests_are_counted_by_route_template(self, client: httpx.AsyncClient) -> None:
        orbit = await create_orbit(client)
        for path in (f"/vms/vm_details/{orbit['id']}/", f"/vms/vm_details/{orbit['id']}"):
            assert (await client.get(path)).status_code == 200
        await client.get("/vms/vm_details/99999/")
        await client.get("/no/such/path/12345")
        text = (await client.get("/metrics")).text
        detail = {"method": "GET", "route": "/vms/vm_details/{pk}"}
        assert sample(text, "sog_http_requests_total", **detail, status="200") == 2
        assert sample(text, "sog_http_requests_total", **detail, status="404") == 1
        assert sample(text, "sog_http_requests_total", method="POST", route="/vms/create",
                      status="201") == 1  # fmt: skip
        assert sample(text, "sog_http_requests_total", method="GET", route="unmatched",
                      status="404") == 1  # fmt: skip
        labels = " ".join(re.findall(r'="([^"]*)"', text))
        assert "12345" not in labels and "99999" not in labels  # raw paths never become labels

    async def test_queue_and_resources_come_from_the_database(
        self, client: httpx.AsyncClient
    ) -> None:
        await create_orbit(client, vm_count=3)
        response = await client.get("/metrics/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert sample(response.text, "sog_orbits", status="CREATING") == 3
        assert sample(response.text, "sog_volumes", status="CREATING") == 3
        assert sample(response.text, "sog_operations_open", state="queued") == 3
        assert sample(response.text, "sog_operations_open", state="running") == 0
        assert (sample(response.text, "sog_operation_oldest_open_seconds") or -1) >= 0
