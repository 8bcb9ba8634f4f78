"""Property-based fuzzing of every operation in the OpenAPI document, with schemathesis.

Schemathesis turns the document into Hypothesis strategies; each generated request goes to the
app in-process (the authenticated ``client`` fixture), and the answer must be no 5xx and match
the document: status code, content type, headers and body. Negative generation (values that
break the document) must be refused with a 4xx. A third pass pins the ids and references to
resources that exist, so that fuzzed text gets past the lookups, is written to the database and
must come back exactly as sent.

Hypothesis runs in a worker thread; every request is handed to the test's event loop, where the
app, its worker and the database connections live. ``SOG_FUZZ_EXAMPLES`` raises the number of
examples per operation for a deeper run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, reject
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.conftest import SSH_KEY
from tests.helpers import attached_volume, available_volume, running_orbit, wait_status

EXAMPLES = int(os.environ.get("SOG_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
# A refusal is any 4xx: 413/414 for oversized requests as well as 422 for malformed values.
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": ["4xx"]}}}
# Text the API stores: (operation, parameter, response field).
STORED_TEXT = {
    "POST /vms/create/": ("vm_name", "description"),
    "PUT /vms/vm_details/{pk}/": ("vm_name", "description"),
    "PATCH /vms/vm_details/{pk}/": ("vm_name", "description"),
    "POST /volume/create/": ("nickname",),
    "PUT /volume/{volume_id}/update/": ("nickname",),
    "PATCH /volume/{volume_id}/update/": ("nickname",),
}


@dataclass
class Tally:
    """What one run sent, and what broke."""

    cases: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # problem: first example

    def count(self, label: str, status: int) -> None:
        self.cases[label] = self.cases.get(label, 0) + 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


@dataclass
class Seeded:
    """Resources that exist before fuzzing starts, to aim the anchored pass at."""

    orbit_ids: list[int]
    volume_ids: list[int]
    operation_id: str


async def seed(client: httpx.AsyncClient, app: FastAPI) -> Seeded:
    """Two running orbits (one paused), an attached and a loose volume, made through the API."""
    orbit = await running_orbit(client)
    other = await running_orbit(client, vm_name="other")
    attached = await attached_volume(client, other["id"])
    loose = await available_volume(client)
    await client.post("/vms/action/", params={"action": "pause", "orbit_id": other["id"]})
    await wait_status(client, other["id"], "PAUSED")
    await app.state.worker.stop()  # from here on, states change only by request
    return Seeded(
        orbit_ids=[orbit["id"], other["id"]],
        volume_ids=[attached["id"], loose["id"], orbit["volume_model"][0]["id"]],
        operation_id=orbit["operation_id"],
    )


def anchors(seeded: Seeded) -> dict[str, st.SearchStrategy[Any]]:
    """Values that name existing things, by parameter name."""
    orbit = st.sampled_from(seeded.orbit_ids)
    return {
        "pk": orbit,
        "orbit_id": orbit,
        "attach_to": orbit,
        "volume_id": st.sampled_from(seeded.volume_ids),
        "operation_id": st.just(seeded.operation_id),
        "flavor": st.sampled_from([1, 2, 3]),
        "flavor_id": st.sampled_from([3, 4, 5]),
        "booting_image": st.sampled_from([1, 2, 3, 4, 5]),
        "root_size": st.integers(20, 100),
        "ssh_key_value": st.just(SSH_KEY),
        "availability_zone": st.just("nova"),
        "capacity": st.sampled_from([20, 40, 80]),
        "template_id": st.sampled_from([2, 3, 4]),
        "vm_count": st.integers(1, 3),
    }


def anchored_strategy(operation: Any, seeded: Seeded) -> st.SearchStrategy[schemathesis.Case]:
    """Cases whose ids and references exist; the free text stays generated."""
    names = {(p.location.value, p.name) for p in operation.iter_parameters()}
    pinned = anchors(seeded)

    @st.composite
    def build(draw: Callable[[st.SearchStrategy[Any]], Any]) -> schemathesis.Case:
        path = {n: draw(pinned[n]) for (where, n) in names if where == "path" and n in pinned}
        query = {n: draw(pinned[n]) for (where, n) in names if where == "query" and n in pinned}
        if "booting_volume" in {n for _, n in names}:
            query.setdefault("booting_image", 3)
        return draw(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path, query=query)
        )

    return build()


def stored_as_sent(label: str, request: httpx.Request, response: httpx.Response) -> str | None:
    """A 2xx that stored text must return it exactly as it went on the wire."""
    if label not in STORED_TEXT or not 200 <= response.status_code < 300:
        return None
    body = response.json()
    documents = body if isinstance(body, list) else [body]
    sent = request.url.params
    for name in STORED_TEXT[label]:
        if name not in sent:
            continue
        for document in documents:
            got = document[name]
            if name == "vm_name" and len(documents) > 1:
                got = got.rsplit("-", 1)[0]
            if got != sent[name]:
                return f"{label}: {name} sent {sent[name]!r}, returned {got!r}"
    return None


def run_operation(
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    operation: Any,
    strategy: st.SearchStrategy[schemathesis.Case],
    tally: Tally,
) -> None:
    """Send ``EXAMPLES`` generated cases of one operation; record every failed check."""
    label = operation.label

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: schemathesis.Case) -> None:
        request = case.as_transport_kwargs(base_url=str(client.base_url))
        headers = {
            k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "authorization"
        }
        try:
            built = client.build_request(
                request["method"], request["url"], params=request.get("params"), headers=headers
            )
        except httpx.InvalidURL:  # longer than httpx itself will send
            reject()
        response = asyncio.run_coroutine_threadsafe(client.send(built), loop).result(60)
        tally.count(label, response.status_code)
        problems = []
        try:
            case.validate_response(
                response, checks=[*CHECKS, openapi_checks.negative_data_rejection]
            )
        except BaseException as exc:  # schemathesis raises a group of failed checks
            problems = [str(e).splitlines()[0] for e in getattr(exc, "exceptions", [exc])]
        if (stored := stored_as_sent(label, built, response)) is not None:
            problems.append(stored)
        for problem in problems:
            tally.failures.setdefault(
                f"{label}: {problem}",
                f"{response.status_code} {response.text[:200]}\n"
                f"        {built.method} {str(built.url)[:300]}",
            )

    one()


def operations(document: dict[str, Any], *, with_parameters: bool) -> list[Any]:
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(CONFIG))
    found = [result.ok() for result in schema.get_all_operations()]
    if not with_parameters:
        return found
    return [op for op in found if list(op.path_parameters) or list(op.query)]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative", "anchored"])
async def test_every_operation_matches_the_document(
    app: FastAPI, client: httpx.AsyncClient, mode: str
) -> None:
    seeded = await seed(client, app)
    document = app.openapi()
    chosen = operations(document, with_parameters=mode == "negative")
    tally = Tally()
    loop = asyncio.get_running_loop()
    for operation in chosen:
        if mode == "anchored":
            strategy = anchored_strategy(operation, seeded)
        else:
            strategy = operation.as_strategy(GenerationMode(mode))
        await asyncio.to_thread(run_operation, loop, client, operation, strategy, tally)
    every = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    expected = every if mode != "negative" else {op.label for op in chosen}
    assert set(tally.cases) == expected, "every operation was exercised"
    print(f"fuzz {mode}: {sum(tally.cases.values())} cases, {len(tally.cases)} operations,"
          f" statuses {dict(sorted(tally.statuses.items()))}")  # fmt: skip
    report = [f"{problem}\n    e.g. {example}" for problem, example in tally.failures.items()]
    assert not report, "\n".join(sorted(report))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


class TestFoundByFuzzing:
    """What the fuzzer found, each pinned down by a plain test."""

    async def test_a_too_long_url_is_a_documented_414(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        response = await client.patch("/vms/vm_details/1/", params={"description": "é" * 6000})
        assert problem(response, 414)["code"] == "uri_too_long"
        for item in app.openapi()["paths"].values():
            for operation in item.values():
                for status in ("413", "414"):
                    content = operation["responses"][status]["content"]
                    assert list(content) == ["application/problem+json"]

    async def test_every_422_is_documented_as_the_problem_it_is(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        body = problem(await client.get("/operations/" + "x" * 65), 422)
        assert body["errors"][0]["loc"] == ["path", "operation_id"]
        document = app.openapi()
        assert "HTTPValidationError" not in document["components"]["schemas"]
        for item in document["paths"].values():
            for operation in item.values():
                for status, declared in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        assert declared["content"] == {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        }

    async def test_nul_in_a_filter_or_an_id_is_a_422(self, client: httpx.AsyncClient) -> None:
        # PostgreSQL refuses NUL in text: this was a 500 there.
        body = problem(await client.get("/vms/?vm_name=a%00b"), 422)
        assert ["query", "vm_name"] in [e["loc"] for e in body["errors"]]
        body = problem(await client.get("/operations/a%00b"), 422)
        assert ["path", "operation_id"] in [e["loc"] for e in body["errors"]]

    async def test_a_path_ending_in_a_line_feed_matches_no_route(
        self, client: httpx.AsyncClient
    ) -> None:
        orbit = await running_orbit(client)
        # "/volume/%0A" listed the volumes, and "/vms/vm_details/1/%0A" showed orbit 1.
        for path in ("/volume/%0A", f"/vms/vm_details/{orbit['id']}/%0A", "/vms/%0A"):
            assert problem(await client.get(path), 404)["code"] == "not_found"

    async def test_replays_and_quota_refusals_are_documented(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        create = paths["/vms/create/"]["post"]["responses"]
        action = paths["/vms/action/"]["post"]["responses"]
        assert "OrbitDetail" in json.dumps(create["200"]["content"]["application/json"])
        assert action["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/OrbitDetail"
        }
        assert "403" in create and "403" in paths["/vms/{orbit_id}/resize/"]["post"]["responses"]
