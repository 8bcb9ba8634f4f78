"""Oversized and hostile values for every parameter of every route.

Each value goes in exactly as a client could put it on the wire (percent-encoded by hand, so
invalid UTF-8 and lone surrogates reach the app). The answer is a 422 problem document naming
the parameter, or the value is accepted and, where the API stores it, returned exactly as
given; never a 5xx, and a refused create leaves nothing behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import httpx
import pytest
from fastapi import FastAPI

from sog_api.main import create_app
from sog_api.orbits.models import ORBIT_STATUSES
from sog_api.volumes.models import VOLUME_STATUSES
from tests.conftest import SSH_KEY, db_rows
from tests.volumes.test_rules import make_orbit, make_volume

MAX_DB_INT = 2_147_483_647
# Raw query-string values (already percent-encoded).
NUMBERS = [
    "0", "-1", "-0", "2147483648", "4294967296", "9223372036854775808", "1" + "0" * 40,
    "9" * 5000, "1.0", "1.5", "1e3", "1E3", "", "%20", " 1", "1%20", "1%0A", "%0A1", "+1", "1_0",
    "0x1", "0b1", "%D9%A1", "%EF%BC%91", "NaN", "inf", "-inf", "1%00", "%00", "%FF",
    "1%20OR%201%3D1", "1%3B%20DROP%20TABLE%20orbits", "%3Cscript%3E1",
]  # fmt: skip
TEXTS = [
    "b" * 64, "a" * 65, "b" * 255, "a" * 256, "b" * 4096, "a" * 4097, "%C3%A9" * 255, "%C3%A9" * 256, "%F0%9F%9A%80" * 64, "%00", "a%00b", "%01",
    "a%0Ab", "%0D%0A", "%09", "%7F", "%C2%85", "%FF", "%C3%28", "%C0%AF", "%ED%A0%80",
    "%ED%B0%80x", "%F4%90%80%80", "x%27)%3B%20DROP%20TABLE%20orbits%3B%20--",
    "1%27%20OR%20%271%27%3D%271", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "%E2%80%AEevil",
    "%EF%BF%BD", "%F0%9F%9A%80", "%25", "%2B", "+", "%5C%22", "", "%20", "%20%20%20",
    # Not printable though not controls: zero-width space and joiner, bidi isolates, line and
    # paragraph separators, a byte order mark, a tag character, spaces other than ASCII's,
    # private-use and unassigned code points; then printable ones: a combining accent, CJK.
    "%E2%80%8B", "a%E2%80%8Db", "%E2%81%A6x%E2%81%A9", "a%E2%80%A8b", "%E2%80%A9",
    "%EF%BB%BFweb", "%F3%A0%80%81", "a%C2%A0b", "%E3%80%80", "%EE%80%80", "%CD%B8", "e%CC%81",
    "%E4%B8%AD%E6%96%87", "a%09b", "a%0D%0Ab", "%0B", "%0C",
]  # fmt: skip
WORDS = ["null", "None", "true", "%2A", "RUNNING%00", "running", "Running%20"]


def decoded(raw: str) -> str | None:
    """What a raw query value means as text, or None when it is not valid UTF-8."""
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class Number:
    """An integer parameter: decimal digits only, within [lo, hi]."""

    lo: int = 1
    hi: int = MAX_DB_INT

    def accepts(self, raw: str) -> bool:
        text = decoded(raw)
        if text is None or not re.fullmatch(r"-?[0-9]+", text) or len(text) > 30:
            return False
        return self.lo <= int(text) <= self.hi


@dataclass(frozen=True)
class Text:
    """A text parameter: UTF-8, no NUL, at most ``max_length``. "printable" (a name) also
    refuses what ``str.isprintable`` refuses and blank values; "lines" (free text) is printable
    but for tabs and line breaks, and may be blank."""

    max_length: int
    printable: bool = True
    lines: bool = False
    min_length: int = 1
    stored: str | None = None  # the response field that must return it unchanged

    def accepts(self, raw: str) -> bool:
        text = decoded(raw)
        if text is None or "\x00" in text:
            return False
        if not self.min_length <= len(text) <= self.max_length:
            return False
        if self.lines:
            return all(c.isprintable() or c in "\t\n\r" for c in text)
        return not self.printable or (text.isprintable() and bool(text.strip()))


@dataclass(frozen=True)
class Choice:
    """A parameter with a fixed set of values (an enum, a zone, a device, a key, a bool)."""

    valid: frozenset[str] = frozenset()
    any_case: bool = False

    def accepts(self, raw: str) -> bool:
        return (raw.upper() if self.any_case else raw) in self.valid


Kind = Number | Text | Choice


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {orbit}, {volume}, {operation} are filled in; {name:kind} is fuzzed
    params: dict[str, Kind] = field(default_factory=dict)
    baseline: dict[str, str] = field(default_factory=dict)
    path_params: dict[str, Kind] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ID = Number()
BOOL = Choice(frozenset({"true", "false", "1", "0", "yes", "no"}))
CHOICE = Choice()
ORBIT_STATUS = Choice(frozenset(ORBIT_STATUSES), any_case=True)
VOLUME_STATUS = Choice(frozenset(VOLUME_STATUSES), any_case=True)
CREATE = {
    "vm_name": "web", "vm_count": "1", "flavor": "2", "root_size": "20",
    "availability_zone": "nova", "ssh_key_value": quote(SSH_KEY), "admin_pwd": "pw",
    "booting_image": "3",
}  # fmt: skip
ROUTES = [
    Route("GET", "/vms/", {"status": ORBIT_STATUS, "vm_name": Text(255, printable=False, min_length=0),
                           "limit": Number(1, 1000), "offset": Number(0)}),
    Route("GET", "/vms/vm_details/{pk}/", path_params={"pk": ID}),
    Route("PUT", "/vms/vm_details/{pk}/",
          {"vm_name": Text(255, stored="vm_name"),
           "description": Text(4096, lines=True, min_length=0, stored="description"),
           "delete_root": BOOL}, {"vm_name": "web"}, {"pk": ID}),
    Route("PATCH", "/vms/vm_details/{pk}/",
          {"vm_name": Text(255, stored="vm_name"),
           "description": Text(4096, lines=True, min_length=0, stored="description"),
           "delete_root": BOOL}, {}, {"pk": ID}),
    Route("POST", "/vms/create/",
          {"vm_name": Text(255, stored="vm_name"), "vm_count": Number(1, 10),
           "flavor": ID, "root_size": Number(20, 65536), "availability_zone": CHOICE,
           "ssh_key_value": CHOICE, "admin_pwd": Text(255, printable=False),
           "transaction_id": Text(64), "delete_root": BOOL, "booting_image": ID,
           "booting_volume": ID,
           "description": Text(4096, lines=True, min_length=0, stored="description")},
          CREATE),
    Route("POST", "/vms/{orbit_id}/delete/", path_params={"orbit_id": ID}),
    Route("GET", "/vms/{orbit_id}/resize", path_params={"orbit_id": ID}),
    Route("POST", "/vms/{orbit_id}/resize/", {"flavor_id": ID}, {"flavor_id": "5"},
          {"orbit_id": ID}),
    Route("POST", "/vms/action/", {"action": CHOICE, "orbit_id": ID, "transaction_id": Text(64)},
          {"action": "reboot", "orbit_id": "{orbit}"}),
    Route("GET", "/volume/", {"status": VOLUME_STATUS, "limit": Number(1, 1000), "offset": Number(0)}),
    Route("POST", "/volume/create/",
          {"nickname": Text(255, stored="nickname"), "capacity": CHOICE, "attach_to": ID,
           "partition": CHOICE, "transaction_id": Text(64)}, {"nickname": "data", "capacity": "20"}),
    Route("GET", "/volume/{volume_id}", path_params={"volume_id": ID}),
    Route("GET", "/volume/{volume_id}/update/", path_params={"volume_id": ID}),
    Route("PUT", "/volume/{volume_id}/update/", {"nickname": Text(255, stored="nickname")},
          {"nickname": "data"}, {"volume_id": ID}),
    Route("PATCH", "/volume/{volume_id}/update/", {"nickname": Text(255, stored="nickname")},
          {}, {"volume_id": ID}),
    Route("POST", "/volume/{volume_id}/attach/{orbit_id}/",
          path_params={"volume_id": ID, "orbit_id": ID}),
    Route("POST", "/volume/{volume_id}/detach/", path_params={"volume_id": ID}),
    Route("GET", "/volume/{volume_id}/resize/", path_params={"volume_id": ID}),
    Route("POST", "/volume/{volume_id}/resize/", {"template_id": ID}, {"template_id": "2"},
          {"volume_id": ID}),
    Route("POST", "/volume/{volume_id}/delete/", path_params={"volume_id": ID}),
    Route("GET", "/operations/{operation_id}", path_params={"operation_id": Text(64, printable=False)}),
]  # fmt: skip


def hostile_values(kind: Kind) -> list[str]:
    if isinstance(kind, Number):
        return NUMBERS
    return TEXTS + (WORDS + NUMBERS if isinstance(kind, Choice) else [])


@dataclass
class Findings:
    sent: int = 0
    accepted: int = 0
    created: int = 0
    wrong: list[str] = field(default_factory=list)


def check_refusal(found: Findings, what: str, response: httpx.Response, where: str, name: str):
    if response.status_code != 422:
        found.wrong.append(
            f"{what}: expected 422, got {response.status_code} {response.text[:150]}"
        )
        return
    if not response.headers["content-type"].startswith("application/problem+json"):
        found.wrong.append(f"{what}: 422 is not a problem document")
        return
    body = response.json()
    if body.get("code") != "invalid_parameter" or [where, name] not in [
        e["loc"][:2] for e in body.get("errors") or []
    ]:
        found.wrong.append(f"{what}: the 422 does not name {where} {name}: {body}")


async def check_acceptance(
    found: Findings, what: str, response: httpx.Response, client: httpx.AsyncClient,
    kind: Kind, raw: str,
) -> None:  # fmt: skip
    found.accepted += 1
    if response.status_code >= 500 or response.status_code == 422:
        found.wrong.append(f"{what}: accepted value answered {response.status_code}"
                           f" {response.text[:150]}")  # fmt: skip
        return
    stored = kind.stored if isinstance(kind, Text) else None
    if stored is None or response.status_code >= 300:
        return
    body = response.json()
    if body[stored] != decoded(raw):
        found.wrong.append(f"{what}: {stored} came back as {body[stored]!r}")
        return
    again = (await client.get(detail_path(body))).json()
    if again[stored] != decoded(raw):
        found.wrong.append(f"{what}: {stored} was stored as {again[stored]!r}")


def detail_path(body: dict[str, Any]) -> str:
    if "vm_name" in body:
        return f"/vms/vm_details/{body['id']}/"
    return f"/volume/{body['id']}"


def url_for(route: Route, ids: dict[str, str], path_values: dict[str, str]) -> str:
    path = route.path
    for name in route.path_params:
        value = path_values.get(name, ids["volume" if name == "volume_id" else "orbit"])
        if name == "operation_id":
            value = path_values.get(name, ids["operation"])
        path = path.replace("{" + name + "}", value)
    return path


def query_string(route: Route, ids: dict[str, str], **replace: list[str]) -> str:
    pairs = [(k, v.replace("{orbit}", ids["orbit"])) for k, v in route.baseline.items()]
    pairs = [(k, v) for k, v in pairs if k not in replace]
    pairs += [(k, v) for k, values in replace.items() for v in values]
    return "&".join(f"{k}={v}" for k, v in pairs)


async def send(client: httpx.AsyncClient, method: str, path: str, query: str) -> httpx.Response:
    return await client.request(method, f"{path}?{query}" if query else path)


async def seed(app: FastAPI) -> dict[str, str]:
    orbit = await make_orbit(app, vm_name="target")
    volume = await make_volume(app, nickname="target")
    async with app.state.sessionmaker.begin() as session:
        from sog_api.operations.service import new_operation

        op = new_operation(
            session, app.state.settings, project_id=1, kind="orbit.rename", stage="rename",
            orbit_id=orbit, params={"vm_name": "target"},
        )  # fmt: skip
        op.state = "succeeded"
    return {"orbit": str(orbit), "volume": str(volume), "operation": op.id}


async def attack(client: httpx.AsyncClient, route: Route, ids: dict[str, str]) -> Findings:
    """Send every hostile value to every parameter of one route; collect what went wrong."""
    found = Findings()
    unique = iter(range(10**6))
    for name, kind in {**route.path_params, **route.params}.items():
        where = "path" if name in route.path_params else "query"
        for raw in hostile_values(kind):
            if where == "path" and raw in ("", "%20", "+"):
                continue  # an empty segment is another path, not this parameter
            extra = {} if name == "transaction_id" or "transaction_id" not in route.params else {
                "transaction_id": [f"tx-{next(unique)}"]
            }  # fmt: skip
            if where == "path":
                path, query = url_for(route, ids, {name: raw}), query_string(route, ids, **extra)
            else:
                path = url_for(route, ids, {})
                query = query_string(route, ids, **{name: [raw]}, **extra)
            response = await send(client, route.method, path, query)
            found.sent += 1
            found.created += response.status_code == 201
            what = f"{route.label} {where} {name}={raw[:40]!r}"
            if response.status_code >= 500:
                found.wrong.append(f"{what}: {response.status_code} {response.text[:150]}")
            elif kind.accepts(raw):
                await check_acceptance(found, what, response, client, kind, raw)
            elif isinstance(kind, Text) and name == "operation_id" and response.status_code == 404:
                pass  # text that is no operation's id: not found is right
            elif path.endswith("\n") or unquote_to_bytes(path).endswith(b"\n"):
                if response.status_code != 404:  # no route ends in a line feed
                    found.wrong.append(f"{what}: expected 404, got {response.status_code}")
            else:
                check_refusal(found, what, response, where, name)
            secret = decoded(raw) if name == "admin_pwd" else None
            if secret and len(secret) >= 8 and secret in response.text:
                found.wrong.append(f"{what}: the password was echoed")
            if response.status_code >= 400 and not response.headers.get(
                "content-type", ""
            ).startswith("application/problem+json"):
                found.wrong.append(f"{what}: {response.status_code} is not a problem document")
    return found


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"run_worker": False}  # nothing here needs an operation carried out


async def live_rows(app: FastAPI) -> dict[str, int]:
    counts = {}
    for table in ("orbits", "volumes", "operations", "idempotency_keys"):
        counts[table] = len(await db_rows(app, f"SELECT id FROM {table}"))
    return counts


@pytest.mark.parametrize("route", ROUTES, ids=[r.label for r in ROUTES])
async def test_hostile_values_are_refused_or_kept(
    client: httpx.AsyncClient, app: FastAPI, route: Route
) -> None:
    ids = await seed(app)
    before = await live_rows(app)
    found = await attack(client, route, ids)
    assert found.sent > 0
    assert not found.wrong, f"{len(found.wrong)} of {found.sent}:\n" + "\n".join(found.wrong)
    after = await live_rows(app)
    made = {table: after[table] - before[table] for table in after}
    count = found.created
    if route.path == "/vms/create/":  # each: an orbit, its root volume, an operation, a key
        assert count > 0 and made == dict.fromkeys(made, count), made
    elif route.path == "/volume/create/":
        # a key for each create that gave a transaction_id (the baseline gives none)
        keys = made["idempotency_keys"]
        expected = {"orbits": 0, "volumes": count, "operations": count, "idempotency_keys": keys}
        assert count > 0 and made == expected and keys <= count, made
    else:
        assert made["orbits"] == made["volumes"] == 0, made


def test_every_route_is_attacked() -> None:
    """The table above covers every documented operation and every one of its parameters."""
    document = create_app().openapi()
    documented = {
        f"{method.upper()} {path}": {p["name"] for p in operation.get("parameters", [])}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("parameters")
    }
    covered = {r.label: set(r.params) | set(r.path_params) for r in ROUTES}
    assert covered == documented


def names(response: httpx.Response, where: str, name: str) -> str:
    """The message of the 422 that names the parameter (fails when there is none)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    messages = [e["msg"] for e in body["errors"] if e["loc"][:2] == [where, name]]
    assert messages, body
    return messages[0]


def create_url(**replace: str) -> str:
    """POST /vms/create/ with valid parameters, some replaced by raw values."""
    values = {**CREATE, "transaction_id": "t", **replace}
    return "/vms/create/?" + "&".join(f"{k}={v}" for k, v in values.items())


class TestOneRuleForEachKind:
    """The rules behind the table above, each with values that used to get through."""

    async def test_integers_are_plain_decimal_digits(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await make_orbit(app)
        assert orbit == 1
        # "1.0" showed orbit 1, "+1" paused it, and vm_count "1_0" made ten orbits.
        for raw in ("1.0", "%201", "1%20", "+1", "1_0", "01.0"):
            names(await client.get(f"/vms/vm_details/{raw}/"), "path", "pk")
            names(
                await client.post(f"/vms/action/?action=pause&orbit_id={raw}"), "query", "orbit_id"
            )
            names(await client.post(create_url(vm_count=raw)), "query", "vm_count")
        assert await db_rows(app, "SELECT id FROM operations") == []
        assert len(await db_rows(app, "SELECT id FROM orbits")) == 1

    async def test_invalid_utf8_is_refused_not_replaced(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await make_orbit(app, description="before")
        for raw in ("%FF", "caf%E9", "%ED%A0%80"):  # a stray byte, Latin-1, a lone surrogate
            response = await client.patch(f"/vms/vm_details/{orbit}/?description={raw}")
            assert "UTF-8" in names(response, "query", "description")
        body = (await client.get(f"/vms/vm_details/{orbit}/")).json()
        assert body["description"] == "before"  # it used to become "\ufffd"

    async def test_a_parameter_given_twice_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        first, second = await make_orbit(app), await make_orbit(app, vm_name="second")
        # The last one used to win: orbit_id=1&orbit_id=2 paused orbit 2.
        response = await client.post(
            f"/vms/action/?action=pause&orbit_id={first}&orbit_id={second}"
        )
        assert names(response, "query", "orbit_id") == "Value error, must be given once"
        response = await client.patch(f"/vms/vm_details/{first}/?vm_name=a&vm_name=b")
        names(response, "query", "vm_name")
        assert await db_rows(app, "SELECT id FROM operations") == []
        response = await client.patch(f"/vms/vm_details/{first}/?vm_name=a&utm=1&utm=2")
        assert response.status_code == 200  # unknown parameters are still ignored

    async def test_names_refuse_every_control_character(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        volume = await make_volume(app, nickname="before")
        for raw in ("a%C2%85b", "%C2%9B31m", "%7F"):  # NEL and CSI (C1 controls), DEL
            response = await client.patch(f"/volume/{volume}/update/?nickname={raw}")
            names(response, "query", "nickname")
        assert (await client.get(f"/volume/{volume}")).json()["nickname"] == "before"

    async def test_names_refuse_every_character_that_is_not_printable(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # These were stored: zero-width space, right-to-left override (shows "exe.png"), line
        # separator, bidi isolates, byte order mark; then a no-break space and a private-use one.
        orbit = await make_orbit(app, vm_name="before")
        volume = await make_volume(app, nickname="before")
        for char in ("\u200b", "\u202e", "\u2028", "\u2066", "\u2069", "\ufeff", "\xa0", "\ue000"):
            raw, code = quote(f"web{char}"), f"U+{ord(char):04X}"
            message = names(await client.patch(f"/vms/vm_details/{orbit}/?vm_name={raw}"),
                            "query", "vm_name")  # fmt: skip
            assert message == f"Value error, must hold only printable characters, and {code} is not"
            names(await client.put(f"/volume/{volume}/update/?nickname={raw}"), "query", "nickname")
            names(await client.post(create_url(vm_name=raw)), "query", "vm_name")
            names(await client.post(create_url(transaction_id=raw)), "query", "transaction_id")
            response = await client.post(f"/volume/create/?nickname={raw}&capacity=20")
            names(response, "query", "nickname")
        assert (await client.get(f"/vms/vm_details/{orbit}/")).json()["vm_name"] == "before"
        assert (await client.get(f"/volume/{volume}")).json()["nickname"] == "before"
        assert await db_rows(app, "SELECT id FROM operations") == []
        # Printable text of any script is a name: accents, combining marks, CJK, an emoji.
        for name in ("Café e\u0301 中文 🚀", "a b"):
            response = await client.patch(f"/vms/vm_details/{orbit}/?vm_name={quote(name)}")
            assert response.status_code == 200, response.text
            assert response.json()["vm_name"] == name

    async def test_descriptions_keep_lines_and_refuse_other_invisible_characters(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        orbit = await make_orbit(app, description="before")
        for char in ("\u202e", "\u200b", "\u2028", "\x1b", "\x85", "\ufeff"):
            response = await client.patch(f"/vms/vm_details/{orbit}/?description={quote(char)}x")
            names(response, "query", "description")
            response = await client.post(create_url(description=quote(char)))
            names(response, "query", "description")
        assert (await client.get(f"/vms/vm_details/{orbit}/")).json()["description"] == "before"
        text = "Line one\r\n\tline two\n"
        response = await client.patch(f"/vms/vm_details/{orbit}/?description={quote(text)}")
        assert response.status_code == 200, response.text
        assert (await client.get(f"/vms/vm_details/{orbit}/")).json()["description"] == text

    async def test_a_key_line_is_printable_and_loses_only_ascii_whitespace_around_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # .strip() used to drop U+0085 and U+2028 too, and the comment took C1 controls.
        bad_keys = (
            SSH_KEY + "\n\x85", "\u2028" + SSH_KEY, SSH_KEY + "\x9b31m", SSH_KEY + " \u202eevil",
            SSH_KEY + "\x0b", SSH_KEY + "\nssh-rsa AAAA",
        )  # fmt: skip
        for bad in bad_keys:
            response = await client.post(create_url(ssh_key_value=quote(bad)))
            names(response, "query", "ssh_key_value")
        assert await db_rows(app, "SELECT id FROM orbits") == []
        # A key read whole from a .pub file (its newline) is the key line without it.
        response = await client.post(create_url(ssh_key_value=quote(f" {SSH_KEY}\r\n")))
        assert response.status_code == 201, response.text
        assert response.json()["ssh_key_value"] == SSH_KEY
        assert await db_rows(app, "SELECT ssh_key_value FROM orbits") == [
            {"ssh_key_value": SSH_KEY}
        ]

    async def test_booleans_are_not_trimmed(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        orbit = await make_orbit(app)
        for raw in ("true%20", "%20yes", "1%0A"):
            response = await client.patch(f"/vms/vm_details/{orbit}/?delete_root={raw}")
            names(response, "query", "delete_root")

    async def test_the_longest_name_still_makes_its_root_volume(
        self, client: httpx.AsyncClient
    ) -> None:
        # The root volume was called "<vm_name>-root": 260 characters, a 500 on PostgreSQL.
        response = await client.post(create_url(vm_name="n" * 255))
        assert response.status_code == 201, response.text
        assert response.json()["vm_name"] == "n" * 255
        (root,) = response.json()["volume_model"]
        assert root["nickname"] == "n" * 250 + "-root"
