"""Keystone v3 of the fake: discovery, password and application-credential tokens, catalog.

(``keystoneauth1.fixture`` would build the body but needs the ``fixtures`` package.)
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.fake_openstack.model import ApiError
from tests.fake_openstack.routing import Ctx, Reply
from tests.fake_openstack.views import PROJECT_ID, USER_ID

REGION = "RegionOne"


def _keystone_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Credentials:
    username: str = "demo"
    password: str = "secret"
    project_name: str = "demo"
    domain_name: str = "Default"
    app_cred_id: str = "f3b9d1c0a1a34c3c9b1e2d7a5c6e8f01"
    app_cred_secret: str = "app-secret"


class Identity:
    """Issues and checks tokens; counts successful authentications."""

    def __init__(self, credentials: Credentials, token_ttl: float) -> None:
        self.credentials = credentials
        self.token_ttl = token_ttl
        self.auth_count = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def valid(self, token: str | None) -> bool:
        with self._lock:
            expires = self._tokens.get(token or "")
        return expires is not None and expires > time.time()

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _version(self, ctx: Ctx) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{ctx.origin}/identity/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def versions(self, ctx: Ctx) -> Reply:
        return 300, {"versions": {"values": [self._version(ctx)]}}

    def version(self, ctx: Ctx) -> Reply:
        return 200, {"version": self._version(ctx)}

    def issue(self, ctx: Ctx) -> tuple[int, Any, dict[str, str]]:
        """POST /identity/v3/auth/tokens."""
        auth = ctx.body.get("auth") if isinstance(ctx.body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        if not isinstance(identity, dict):
            raise ApiError(400, "Expecting to find identity in auth.")
        methods = identity.get("methods") or []
        if "password" in methods:
            self._check_password(identity.get("password") or {}, auth.get("scope"))
        elif "application_credential" in methods:
            self._check_app_cred(identity.get("application_credential") or {})
        else:
            raise ApiError(401, "The request you have made requires authentication.")
        token_id = uuid.uuid4().hex
        expires = time.time() + self.token_ttl
        with self._lock:
            self._tokens[token_id] = expires
            self.auth_count += 1
        body = self._token_body(ctx, methods, expires)
        return 201, body, {"X-Subject-Token": token_id}

    def _check_password(self, password: dict[str, Any], scope: Any) -> None:
        user = password.get("user") or {}
        creds = self.credentials
        if user.get("name") != creds.username or user.get("password") != creds.password:
            raise ApiError(401, "The request you have made requires authentication.")
        project = scope.get("project") if isinstance(scope, dict) else None
        if not isinstance(project, dict):
            raise ApiError(401, "The request you have made requires authentication.")
        if (
            project.get("id", PROJECT_ID) != PROJECT_ID
            or project.get("name", creds.project_name) != creds.project_name
        ):
            raise ApiError(401, "The request you have made requires authentication.")

    def _check_app_cred(self, cred: dict[str, Any]) -> None:
        creds = self.credentials
        if cred.get("id") != creds.app_cred_id or cred.get("secret") != creds.app_cred_secret:
            raise ApiError(401, "The request you have made requires authentication.")

    def _token_body(self, ctx: Ctx, methods: list[str], expires: float) -> dict[str, Any]:
        """A token body shaped like Keystone's POST /v3/auth/tokens sample."""
        creds = self.credentials
        domain = {"id": "default", "name": creds.domain_name}
        catalog = []
        origin = ctx.origin
        for service_type, name, url in (
            ("identity", "keystone", f"{origin}/identity"),
            ("compute", "nova", f"{origin}/compute/v2.1"),
            ("volumev3", "cinderv3", f"{origin}/volume/v3/{PROJECT_ID}"),
            ("block-storage", "cinder", f"{origin}/volume/v3/{PROJECT_ID}"),
            ("image", "glance", f"{origin}/image"),
        ):
            endpoints = [
                {
                    "id": uuid.uuid4().hex,
                    "interface": interface,
                    "region": REGION,
                    "region_id": REGION,
                    "url": url,
                }
                for interface in ("public", "internal")
            ]
            catalog.append(
                {"endpoints": endpoints, "id": uuid.uuid4().hex, "type": service_type, "name": name}
            )
        return {
            "token": {
                "methods": methods,
                "user": {
                    "id": USER_ID,
                    "name": creds.username,
                    "domain": domain,
                    "password_expires_at": None,
                },
                "audit_ids": [uuid.uuid4().hex[:22]],
                "issued_at": _keystone_time(time.time()),
                "expires_at": _keystone_time(expires),
                "project": {"id": PROJECT_ID, "name": creds.project_name, "domain": domain},
                "is_domain": False,
                "roles": [{"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member"}],
                "catalog": catalog,
            }
        }

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/identity/?", self.versions),
            ("GET", r"/identity/v3/?", self.version),
            ("POST", r"/identity/v3/auth/tokens", self.issue),
        ]
