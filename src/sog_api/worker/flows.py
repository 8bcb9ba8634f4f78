"""How an operation kind is carried out: a small state machine of stages.

An operation is always in one stage. A stage is either an *action* (the runner calls the cloud,
then records the result) or a *wait* (the poller watches one batched cloud listing until the
server or volume reaches the state the stage waits for). Handlers return a :class:`Step`:

- ``Step.wait(stage)``: the cloud is working; the poller watches ``stage`` next.
- ``Step.next(stage)``: run the action ``stage`` next (queued at once).
- ``Step.done()``: finished; ``Step.fail(message)``: finished with an error.
- ``Step.retry(message, delay)``: try the same action again later (transient trouble).

Every handler may attach ``apply``: database changes made in the same transaction that records
the step, so the operation and the resource it changes never disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from sog_api.cloud.base import ServerInfo, VolumeInfo

if TYPE_CHECKING:
    from sog_api.worker.context import ActionContext

from sog_api.operations.models import Operation

Apply = Callable[[AsyncSession], Awaitable[None]]


@dataclass
class Step:
    outcome: Literal["wait", "next", "done", "fail", "retry"]
    stage: str | None = None
    message: str | None = None
    delay: float | None = None
    apply: Apply | None = None

    @classmethod
    def wait(cls, stage: str, apply: Apply | None = None) -> Step:
        return cls("wait", stage, apply=apply)

    @classmethod
    def next(cls, stage: str, apply: Apply | None = None) -> Step:
        return cls("next", stage, apply=apply)

    @classmethod
    def done(cls, apply: Apply | None = None) -> Step:
        return cls("done", apply=apply)

    @classmethod
    def fail(cls, message: str, apply: Apply | None = None) -> Step:
        return cls("fail", message=message, apply=apply)

    @classmethod
    def retry(cls, message: str, delay: float | None = None) -> Step:
        return cls("retry", message=message, delay=delay)


@dataclass
class Snapshot:
    """One poll cycle's view of the cloud: what the batched listings returned, by id."""

    servers: dict[str, ServerInfo] = field(default_factory=dict)
    volumes: dict[str, VolumeInfo] = field(default_factory=dict)
    servers_listed: bool = False
    volumes_listed: bool = False


Action = Callable[["ActionContext"], Awaitable[Step]]
Check = Callable[[AsyncSession, Operation, Snapshot], Awaitable[Step | None]]
OnFail = Callable[[AsyncSession, Operation, str], Awaitable[None]]
Watch = Literal["server", "volume"]


@dataclass(frozen=True)
class Band:
    """The progress range a stage covers and how long it usually takes (simulator seconds)."""

    low: int
    high: int
    duration: str | None = None  # a key of the simulator's DURATIONS


@dataclass
class Flow:
    kind: str
    actions: dict[str, Action]
    checks: dict[str, tuple[Watch, Check]]
    bands: dict[str, Band]
    on_fail: OnFail
    # The cloud ids (servers or volumes) the operation's current wait stage watches; the poller
    # fetches them one by one when its listings have not shown them for a while.
    watch_ids: Callable[[AsyncSession, Operation], Awaitable[list[str]]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


FLOWS: dict[str, Flow] = {}


def register(flow: Flow) -> Flow:
    FLOWS[flow.kind] = flow
    return flow


async def locked(session: AsyncSession, model: type[Any], ident: Any) -> Any:
    """Load a row for update inside the recording transaction."""
    return await session.get(model, ident, with_for_update=True, populate_existing=True)
