"""Log lines say what happened, whatever a client sends: values it controls (a path, a query, an
X-Request-ID) cannot add or change the fields of a line, in text or in JSON."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from sog_api.logs import configure_logging
from sog_api.settings import Settings
from sog_api.worker.failures import log_failure

# logfmt: key=value, where a value with spaces, "=", quotes or control characters is quoted.
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
ACCESS_FIELDS = ["method", "path", "query", "status", "ms", "request_id"]
ReadLog = Callable[[], list[str]]


def fields(message: str) -> list[tuple[str, str]]:
    """The key=value fields of a message, quoted values unquoted."""
    found = []
    for key, value in FIELD.findall(message):
        found.append((key, json.loads(value) if value.startswith('"') else value))
    return found


@pytest.fixture(params=[False, True], ids=["text", "json"])
def read_log(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> Iterator[ReadLog]:
    """Log as `sog-api serve` does (text or JSON); the function returns the messages so far."""
    json_lines = request.param
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(Settings(log_json=json_lines))

    def messages() -> list[str]:
        lines = capsys.readouterr().err.splitlines()
        if json_lines:
            return [json.loads(line)["event"] for line in lines]
        return [line.split("] ", 1)[1].rsplit(" [", 1)[0].rstrip() for line in lines]

    try:
        yield messages
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def access_lines(messages: list[str]) -> list[list[tuple[str, str]]]:
    return [fields(m) for m in messages if m.startswith("request ")]


class TestAccessLog:
    async def test_a_request_id_with_spaces_is_replaced(
        self, client: httpx.AsyncClient, read_log: ReadLog
    ) -> None:
        forged = "x project_id=2 status=200 path=/forged"
        response = await client.get("/vms/", headers={"X-Request-ID": forged})
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        assert request_id != forged and re.fullmatch(r"[0-9a-f]{32}", request_id)
        [line] = access_lines(read_log())
        assert [k for k, _ in line] == ACCESS_FIELDS
        assert dict(line)["request_id"] == request_id and dict(line)["status"] == "200"

    @pytest.mark.parametrize(
        "request_id", ["0f8fad5b-d9cb-469f-a165-70867728950e", "trace:abc.DEF_1", "A" * 64]
    )
    async def test_a_well_formed_request_id_is_kept(
        self, client: httpx.AsyncClient, read_log: ReadLog, request_id: str
    ) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id
        assert dict(access_lines(read_log())[0])["request_id"] == request_id

    @pytest.mark.parametrize(
        "request_id", [b"a" * 65, b"a b", b'a"b', b"a\\b", b"a,b", b"caf\xc3\xa9", b"a\x7fb"]
    )
    async def test_an_odd_request_id_is_replaced(
        self, client: httpx.AsyncClient, request_id: bytes
    ) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": request_id})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    @pytest.mark.parametrize(
        ("raw", "path"),
        [
            ("/vms/%20status=200%20ms=1.0%20request_id=forged",
             "/vms/ status=200 ms=1.0 request_id=forged"),
            ("/vms/%22%20status=200%20x=%22", '/vms/" status=200 x="'),
            ("/vms/%5C%22%20status=200", '/vms/\\" status=200'),
            ("/vms/%C2%A0status=200", "/vms/\u00a0status=200"),
            ("/vms/%0Astatus=200", "/vms/\nstatus=200"),
            ("/vms/a=b", "/vms/a=b"),
        ],
    )  # fmt: skip
    async def test_a_path_cannot_add_fields(
        self, client: httpx.AsyncClient, read_log: ReadLog, raw: str, path: str
    ) -> None:
        assert (await client.get(raw)).status_code == 404
        [line] = access_lines(read_log())
        assert [k for k, _ in line] == ACCESS_FIELDS
        assert dict(line)["path"] == path and dict(line)["status"] == "404"

    async def test_a_refused_request_is_logged_the_same_way(
        self, app: FastAPI, read_log: ReadLog
    ) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anonymous:
            assert (await anonymous.get("/vms/%20status=200%20ms=1.0")).status_code == 401
        [line] = access_lines(read_log())
        assert [k for k, _ in line] == ACCESS_FIELDS and dict(line)["status"] == "401"


class TestEveryLine:
    @pytest.mark.parametrize(
        "value", ["/a b=c", 'say "hi"', "", "tab\there", "back\\slash", "plain", "caf\u00e9"]
    )
    def test_text_values_of_our_lines_are_unambiguous(self, read_log: ReadLog, value: str) -> None:
        logging.getLogger("sog_api.errors").error("unhandled_error path=%s code=%d", value, 7)
        [message] = read_log()
        assert fields(message) == [("path", value), ("code", "7")]
        if value in ("plain", "caf\u00e9"):
            assert message == f"unhandled_error path={value} code=7"  # left as it was

    def test_worker_failure_lines_are_plain_fields(self, read_log: ReadLog) -> None:
        # The context went in as one argument holding spaces, so it came out quoted whole:
        # 'settle_error database_unavailable" op=abc" error=OperationalError'.
        away = OperationalError("SELECT 1", {}, ConnectionRefusedError())
        log_failure("settle_error", away, op="abc", stage="a b")
        [message] = read_log()
        assert (
            message == 'settle_error database_unavailable op=abc stage="a b" error=OperationalError'
        )

    def test_other_libraries_lines_are_left_as_they_are(self, read_log: ReadLog) -> None:
        logging.getLogger("a_library.module").warning("Running on %s (%s)", "http://x", "a b")
        assert read_log() == ["Running on http://x (a b)"]
