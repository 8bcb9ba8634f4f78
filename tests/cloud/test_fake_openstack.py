"""The fake OpenStack itself, spoken to with plain HTTP (what the SDK would not notice)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fake_openstack import FakeOpenStack

COMPUTE = "/compute/v2.1"


def _token(client: httpx.Client, fake: FakeOpenStack) -> str:
    creds = fake.credentials
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": creds.username,
                        "password": creds.password,
                        "domain": {"name": creds.domain_name},
                    }
                },
            },
            "scope": {"project": {"name": creds.project_name, "domain": {"name": "Default"}}},
        }
    }
    response = client.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201
    return response.headers["X-Subject-Token"]


@pytest.fixture
def client(fake: FakeOpenStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url) as plain:
        token = _token(plain, fake)
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}
    with httpx.Client(base_url=fake.url, headers=headers) as authed:
        yield authed


def _boot(client: httpx.Client, fake: FakeOpenStack, **extra: object) -> str:
    volume = client.post(
        f"/volume/v3/{fake.project_id}/volumes", json={"volume": {"size": 1, "name": "r"}}
    ).json()["volume"]
    fake.settle()
    server = {
        "name": "s",
        "flavorRef": "1",
        "networks": "auto",
        "block_device_mapping_v2": [
            {
                "boot_index": 0,
                "uuid": volume["id"],
                "source_type": "volume",
                "destination_type": "volume",
            }
        ],
        **extra,
    }
    response = client.post(f"{COMPUTE}/servers", json={"server": server})
    assert response.status_code == 202, response.text
    return str(response.json()["server"]["id"])


class TestDiscoveryAndAuth:
    def test_version_documents(self, fake: FakeOpenStack) -> None:
        with httpx.Client(base_url=fake.url) as plain:
            identity = plain.get("/identity")
            compute = plain.get(f"{COMPUTE}/").json()["version"]
            volume = plain.get("/volume/")
            image = plain.get("/image")
        assert identity.status_code == 300
        assert identity.json()["versions"]["values"][0]["id"].startswith("v3")
        assert (compute["min_version"], compute["version"]) == ("2.1", "2.96")
        assert volume.status_code == 300 and volume.json()["versions"][0]["version"] == "3.71"
        assert image.status_code == 300

    def test_token_and_catalog(self, fake: FakeOpenStack) -> None:
        with httpx.Client(base_url=fake.url) as plain:
            _token(plain, fake)
            response = plain.post(
                "/identity/v3/auth/tokens",
                json={
                    "auth": {
                        "identity": {
                            "methods": ["application_credential"],
                            "application_credential": {
                                "id": fake.credentials.app_cred_id,
                                "secret": fake.credentials.app_cred_secret,
                            },
                        }
                    }
                },
            )
            wrong = plain.post(
                "/identity/v3/auth/tokens",
                json={
                    "auth": {
                        "identity": {
                            "methods": ["password"],
                            "password": {"user": {"name": "x", "password": "y"}},
                        }
                    }
                },
            )
        catalog = {s["type"]: s["endpoints"][0]["url"] for s in response.json()["token"]["catalog"]}
        assert catalog["compute"] == f"{fake.url}{COMPUTE}"
        assert (
            catalog["volumev3"]
            == catalog["block-storage"]
            == f"{fake.url}/volume/v3/{fake.project_id}"
        )
        assert wrong.status_code == 401
        assert fake.auth_count == 2

    def test_service_calls_need_a_valid_token(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        assert client.get(f"{COMPUTE}/servers").status_code == 200
        fake.revoke_tokens()
        assert client.get(f"{COMPUTE}/servers").status_code == 401


class TestMicroversions:
    def test_echoes_the_requested_version(self, client: httpx.Client) -> None:
        response = client.get(
            f"{COMPUTE}/flavors", headers={"OpenStack-API-Version": "compute latest"}
        )
        assert response.headers["OpenStack-API-Version"] == "compute 2.96"
        assert response.headers["X-OpenStack-Nova-API-Version"] == "2.96"

    def test_refuses_versions_out_of_range(self, client: httpx.Client) -> None:
        response = client.get(
            f"{COMPUTE}/flavors", headers={"OpenStack-API-Version": "compute 2.200"}
        )
        assert response.status_code == 406

    def test_create_rules_follow_the_version(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        old = {"OpenStack-API-Version": "compute 2.47"}
        body = {
            "server": {
                "name": "s",
                "flavorRef": "1",
                "networks": "auto",
                "tags": ["t"],
                "imageRef": fake.images[0].id,
            }
        }
        assert client.post(f"{COMPUTE}/servers", json=body, headers=old).status_code == 400
        del body["server"]["networks"]
        assert client.post(f"{COMPUTE}/servers", json=body).status_code == 400

    def test_flavor_is_embedded_from_2_47(self, fake: FakeOpenStack, client: httpx.Client) -> None:
        server_id = _boot(client, fake)
        new = client.get(f"{COMPUTE}/servers/{server_id}").json()["server"]["flavor"]
        old = client.get(
            f"{COMPUTE}/servers/{server_id}", headers={"OpenStack-API-Version": "compute 2.46"}
        ).json()["server"]["flavor"]
        assert new["original_name"] == "m1.tiny" and "id" not in new
        assert old["id"] == "1"


class TestServers:
    def test_build_then_active_then_deleted(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        fake.delays["build"] = 1e6  # only settle() finishes it
        server_id = _boot(client, fake, tags=["op-1"], metadata={"sog_operation_id": "op-1"})
        building = client.get(f"{COMPUTE}/servers/{server_id}").json()["server"]
        assert (building["status"], building["OS-EXT-STS:task_state"]) == ("BUILD", "scheduling")
        fake.settle()
        active = client.get(f"{COMPUTE}/servers/{server_id}").json()["server"]
        assert (active["status"], active["OS-EXT-STS:vm_state"]) == ("ACTIVE", "active")
        assert active["addresses"]["private"][0]["addr"].startswith("10.20.")
        assert active["tags"] == ["op-1"]
        assert client.delete(f"{COMPUTE}/servers/{server_id}").status_code == 204
        fake.settle()
        assert client.get(f"{COMPUTE}/servers/{server_id}").status_code == 404
        assert client.get(f"{COMPUTE}/servers/detail").json()["servers"] == []
        since = client.get(
            f"{COMPUTE}/servers/detail", params={"changes-since": "2000-01-01T00:00:00Z"}
        )
        (deleted,) = since.json()["servers"]
        assert (deleted["id"], deleted["status"]) == (server_id, "DELETED")

    def test_actions_in_the_wrong_state_conflict(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        fake.delays["build"] = 1e6
        server_id = _boot(client, fake)
        action = f"{COMPUTE}/servers/{server_id}/action"
        assert client.post(action, json={"pause": None}).status_code == 409  # still building
        fake.settle()
        assert client.post(action, json={"pause": None}).status_code == 202
        assert client.post(action, json={"os-start": None}).status_code == 409
        assert client.post(action, json={"reboot": {"type": "WARM"}}).status_code == 400
        assert client.post(action, json={"frobnicate": None}).status_code == 400

    def test_limit_marker_and_links(self, fake: FakeOpenStack, client: httpx.Client) -> None:
        ids = [_boot(client, fake) for _ in range(3)]
        first = client.get(f"{COMPUTE}/servers", params={"limit": 2}).json()
        assert len(first["servers"]) == 2 and first["servers_links"][0]["rel"] == "next"
        marker = first["servers"][-1]["id"]
        rest = client.get(f"{COMPUTE}/servers", params={"limit": 2, "marker": marker}).json()
        assert len(rest["servers"]) == 1 and "servers_links" not in rest
        listed = {s["id"] for s in first["servers"] + rest["servers"]}
        assert listed == set(ids)
        assert client.get(f"{COMPUTE}/servers", params={"marker": "nope"}).status_code == 400


class TestFaultsAndJournal:
    def test_fail_counts_down_and_journal_records(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        rule = fake.faults.fail("GET", r"/flavors$", 503, times=2)
        statuses = [client.get(f"{COMPUTE}/flavors").status_code for _ in range(3)]
        assert statuses == [503, 503, 200] and rule.hits == 2
        entries = fake.requests("GET", r"/flavors$")
        assert [e.status for e in entries] == [503, 503, 200]
        assert entries[0].headers["openstack-api-version"] == "compute 2.79"

    def test_a_lost_reply_still_carries_the_request_out(
        self, fake: FakeOpenStack, client: httpx.Client
    ) -> None:
        fake.faults.lose_reply("POST", r"/volumes$")
        path = f"/volume/v3/{fake.project_id}/volumes"
        with pytest.raises(httpx.HTTPError):
            client.post(path, json={"volume": {"size": 1, "name": "lost"}})
        assert [v.name for v in fake.volumes.values()] == ["lost"]
        (entry,) = fake.requests("POST", r"/volumes$")
        assert entry.status is None
        assert client.post(path, json={"volume": {"size": 1}}).status_code == 202

    def test_behind_our_back(self, fake: FakeOpenStack, client: httpx.Client) -> None:
        server_id = _boot(client, fake)
        fake.settle()
        fake.external_error_server(server_id, "Host went away")
        server = client.get(f"{COMPUTE}/servers/{server_id}").json()["server"]
        assert (server["status"], server["fault"]["message"]) == ("ERROR", "Host went away")
        volume_id = fake.servers[server_id].bdms[0].volume_id
        fake.external_delete_volume(volume_id)
        assert client.get(f"/volume/v3/{fake.project_id}/volumes/{volume_id}").status_code == 404
        assert volume_id in fake.deleted_volumes
