"""Fault injection for the fake cloud and the journal of the requests it received."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fake_openstack.model import FakeCloud

DEFAULT_MESSAGES = {
    400: "Invalid input for field/attribute (injected).",
    401: "The request you have made requires authentication.",
    403: "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances",
    404: "The resource could not be found.",
    409: "Cannot complete the request while the resource is busy (injected).",
    413: "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
    "gigabytes quota. Requested 20G, quota is 100G and 90G has been consumed.",
    429: "Rate limit exceeded, retry later.",
    500: "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/",
    502: "Bad Gateway",
    503: "The server is currently unavailable. Please try again at a later time.",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class JournalEntry:
    """One request the fake received (``status`` is what it answered, None if dropped)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    json: Any
    time: float
    status: int | None


@dataclass
class Rule:
    """A fault rule: requests matching ``method`` and the ``path`` regex get ``action``."""

    method: str
    path: re.Pattern[str]
    action: str  # "fail", "latency", "drop" or "lose"
    times: int | None  # None: forever
    status: int = 503
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.path.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class Faults:
    """What the next requests (or the next resources) should suffer."""

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        message: str | None = None,
        retry_after: float | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Rule:
        """Answer the next ``times`` matching requests with ``status`` and an OpenStack error body.

        ``path`` is a regular expression searched in the URL path (e.g. ``r"/servers/detail$"``);
        ``method`` is an HTTP method or ``"*"``.
        """
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        return self._add(
            Rule(
                method.upper(),
                re.compile(path),
                "fail",
                times,
                status,
                message or DEFAULT_MESSAGES.get(status, "Injected fault"),
                extra,
            )
        )

    def latency(self, method: str, path: str, seconds: float, *, times: int | None = None) -> Rule:
        """Delay matching requests by ``seconds`` before answering them normally."""
        return self._add(Rule(method.upper(), re.compile(path), "latency", times, seconds=seconds))

    def drop(self, method: str, path: str, *, times: int | None = 1) -> Rule:
        """Send the status line and headers, then close the connection mid-body."""
        return self._add(Rule(method.upper(), re.compile(path), "drop", times))

    def lose_reply(self, method: str, path: str, *, times: int | None = 1) -> Rule:
        """Carry the request out, then lose the answer (closed mid-body, as ``drop``).

        The client cannot tell whether anything happened: a create reached the cloud, but the
        caller never learns the new resource's id.
        """
        return self._add(Rule(method.upper(), re.compile(path), "lose", times))

    def fail_next_server(self, message: str = "No valid host was found. ", times: int = 1) -> None:
        """Make the next ``times`` created servers end in ERROR with this fault message."""
        with self._cloud.lock:
            self._cloud.pending_server_errors.extend([message] * times)

    def fail_next_volume(self, times: int = 1) -> None:
        """Make the next ``times`` created volumes end in status ``error``."""
        with self._cloud.lock:
            self._cloud.pending_volume_errors.extend(["error"] * times)

    def skip_next_resize(self, times: int = 1) -> None:
        """Make the next resizes settle back on the old flavor, ACTIVE, with no fault."""
        with self._cloud.lock:
            self._cloud.pending_resize_noops += times

    def clear(self) -> None:
        """Forget every pending rule and resource fault."""
        with self._lock:
            self._rules.clear()
        with self._cloud.lock:
            self._cloud.pending_server_errors.clear()
            self._cloud.pending_volume_errors.clear()
            self._cloud.pending_resize_noops = 0

    def take(self, method: str, path: str) -> tuple[float, Rule | None]:
        """Consume the rules matching a request: total latency and the fail/drop rule, if any."""
        delay, outcome = 0.0, None
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path):
                    continue
                if rule.action == "latency":
                    rule.hits += 1
                    delay += rule.seconds
                elif outcome is None:
                    rule.hits += 1
                    outcome = rule
            self._rules = [r for r in self._rules if not r.exhausted]
        return delay, outcome

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule
