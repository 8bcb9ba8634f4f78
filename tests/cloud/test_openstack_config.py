"""Pointing the service at an OpenStack cloud: clouds.yaml, OS_* variables, `catalog check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from sog_api.cli import app as cli
from sog_api.main import create_app
from tests.cloud.conftest import OPENSTACK_FAST
from tests.conftest import TEST_API_KEY, make_settings
from tests.fake_openstack import FakeOpenStack
from tests.fake_openstack.model import default_images
from tests.helpers import available_volume

runner = CliRunner()


def _password_auth(fake: FakeOpenStack) -> dict[str, Any]:
    creds = fake.credentials
    return {
        "auth": {
            "auth_url": fake.auth_url,
            "username": creds.username,
            "password": creds.password,
            "project_name": creds.project_name,
            "user_domain_name": creds.domain_name,
            "project_domain_name": creds.domain_name,
        },
        "region_name": fake.region_name,
        "identity_api_version": 3,
    }


def _app_credential_auth(fake: FakeOpenStack) -> dict[str, Any]:
    creds = fake.credentials
    return {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": fake.auth_url,
            "application_credential_id": creds.app_cred_id,
            "application_credential_secret": creds.app_cred_secret,
        },
        "region_name": fake.region_name,
    }


async def _serve_and_make_a_volume(database_url: str, fake: FakeOpenStack, **settings: Any) -> None:
    application = create_app(make_settings(database_url, **{**OPENSTACK_FAST, **settings}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        headers = {"Authorization": f"Token {TEST_API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            await available_volume(client)
    assert len(fake.volumes) == 1


@pytest.fixture(params=["password", "application_credential"])
def clouds_yaml_method(
    request: pytest.FixtureRequest, fake: FakeOpenStack, isolated_os_config: Path
) -> str:
    """Write a clouds.yaml entry ``sog-test`` for the fake; return its Keystone auth method."""
    entry = _password_auth(fake) if request.param == "password" else _app_credential_auth(fake)
    isolated_os_config.write_text(yaml.safe_dump({"clouds": {"sog-test": entry}}))
    return str(request.param)


class TestCredentials:
    async def test_a_clouds_yaml_entry_named_by_sog_os_cloud(
        self, database_url: str, fake: FakeOpenStack, clouds_yaml_method: str
    ) -> None:
        await _serve_and_make_a_volume(database_url, fake, os_cloud="sog-test")
        (token,) = fake.requests("POST", r"/identity/v3/auth/tokens$")
        assert token.json["auth"]["identity"]["methods"] == [clouds_yaml_method]
        assert fake.auth_count == 1

    async def test_application_credential_in_os_variables(
        self,
        database_url: str,
        fake: FakeOpenStack,
        isolated_os_config: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        creds = fake.credentials
        for name, value in {
            "OS_AUTH_TYPE": "v3applicationcredential",
            "OS_AUTH_URL": fake.auth_url,
            "OS_APPLICATION_CREDENTIAL_ID": creds.app_cred_id,
            "OS_APPLICATION_CREDENTIAL_SECRET": creds.app_cred_secret,
            "OS_REGION_NAME": fake.region_name,
        }.items():
            monkeypatch.setenv(name, value)
        await _serve_and_make_a_volume(database_url, fake)
        (token,) = fake.requests("POST", r"/identity/v3/auth/tokens$")
        assert token.json["auth"]["identity"]["methods"] == ["application_credential"]


def _check(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SOG_DATABASE_URL", database_url)
    monkeypatch.setenv("SOG_CLOUD", "openstack")
    monkeypatch.delenv("SOG_OS_CLOUD", raising=False)
    return runner.invoke(cli, ["catalog", "check"])


class TestCatalogCheck:
    def test_every_flavor_and_image_exists(
        self, database_url: str, os_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _load_catalogue(database_url, monkeypatch)
        result = _check(database_url, monkeypatch)
        assert result.exit_code == 0, result.output
        assert "every catalogue flavor and image exists in the cloud" in result.output

    @pytest.mark.parametrize(
        "fake_options",
        [{"images": [i for i in default_images() if i.name != "centos-7.2-x64"]}],
    )
    def test_a_missing_image_is_named(
        self, database_url: str, os_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _load_catalogue(database_url, monkeypatch)
        result = _check(database_url, monkeypatch)
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == [
            "image 5 (CentOS 7.2 X64) maps to 'centos-7.2-x64', which the cloud does not offer"
        ]

    def test_an_unreachable_cloud_is_said_plainly(
        self,
        database_url: str,
        fake: FakeOpenStack,
        os_environ: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _load_catalogue(database_url, monkeypatch)
        fake.stop()
        result = _check(database_url, monkeypatch)
        assert result.exit_code == 2, result.output
        assert "cannot check the catalogue against the cloud" in result.output
        assert "Connection refused" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def _load_catalogue(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOG_DATABASE_URL", database_url)
    result = runner.invoke(cli, ["catalog", "load"])
    assert result.exit_code == 0, result.output
