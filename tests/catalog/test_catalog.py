"""The catalogue file, its reload (an upsert) and the check against the cloud."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sog_api.catalog.check import missing_in_cloud
from sog_api.catalog.loader import CatalogError, load_catalog, read_catalog
from sog_api.settings import DEFAULT_CATALOG

SEED_FLAVORS = [
    {"flavor_code": "01001", "hourly": 0.014, "id": 1, "is_configurable": False, "name": "Meteor",
     "network_usage": 2000, "ram": 1, "vcpus": 1},
    {"flavor_code": "02002", "hourly": 0.031, "id": 2, "is_configurable": False, "name": "Asteroid",
     "network_usage": 3000, "ram": 2, "vcpus": 2},
]  # fmt: skip
SEED_IMAGES = [
    {"id": 1, "image_name": "Fedora 24", "os_distro": "Fedora"},
    {"id": 2, "image_name": "Ubuntu 16.04 X64", "os_distro": "Ubuntu"},
    {"id": 3, "image_name": "Ubuntu 14.04 X64", "os_distro": "Ubuntu"},
    {"id": 4, "image_name": "Ubuntu 15.10 X64", "os_distro": "Ubuntu"},
    {"id": 5, "image_name": "CentOS 7.2 X64", "os_distro": "Centos"},
]


class TestCatalogueEndpoints:
    async def test_flavors_are_the_seeds_then_more(self, client: httpx.AsyncClient) -> None:
        flavors = (await client.get("/vms/flavors/")).json()
        assert flavors[:2] == SEED_FLAVORS
        assert [f["id"] for f in flavors] == [1, 2, 3, 4, 5, 6, 7, 8]
        for flavor in flavors:
            assert flavor["flavor_code"] == f"{flavor['vcpus']:02d}{flavor['ram']:03d}"

    async def test_images(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/vms/images/")).json() == SEED_IMAGES

    async def test_payload(self, client: httpx.AsyncClient) -> None:
        payload = (await client.get("/vms/payload/")).json()
        assert list(payload) == ["flavors", "images", "volumes"]
        assert payload["volumes"][0] == {"capacity": 20, "hourly": 0.002, "id": 1, "monthly": 1}
        assert [v["capacity"] for v in payload["volumes"]] == [20, 40, 80, 120, 240, 500, 1000]
        assert [(v["hourly"], v["monthly"]) for v in payload["volumes"]] == [
            (0.002, 1), (0.0041, 2), (0.0083, 4), (0.0125, 6), (0.025, 12), (0.052, 25), (0.104, 50),
        ]  # fmt: skip


class TestCatalogueFile:
    def test_invalid_file_is_refused(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("availability_zones = []\n")
        with pytest.raises(CatalogError):
            read_catalog(bad)

    async def test_reload_is_an_upsert(
        self, app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        text = DEFAULT_CATALOG.read_text().replace('name = "Meteor"', 'name = "Tiny"')
        cut = text.index("[[flavors]]\nid = 8")
        changed = tmp_path / "catalog.toml"
        changed.write_text(text[:cut] + text[text.index("[[images]]") :])
        async with app.state.sessionmaker.begin() as session:
            await load_catalog(session, read_catalog(changed))
        flavors = (await client.get("/vms/flavors/")).json()
        assert flavors[0]["name"] == "Tiny" and [f["id"] for f in flavors][-1] == 7

    async def test_check_against_the_simulated_cloud(self, app: FastAPI) -> None:
        async with app.state.sessionmaker() as session:
            assert await missing_in_cloud(session, app.state.cloud) == []
            await session.execute(
                __import__("sqlalchemy").text(
                    "UPDATE flavors SET backend_flavor='m1.huge' WHERE id=3"
                )
            )
            problems = await missing_in_cloud(session, app.state.cloud)
        assert problems == ["flavor 3 (Comet) maps to 'm1.huge', which the cloud does not offer"]
