"""Kill points: a process is SIGKILLed the moment the fake cloud has handled a given sequence of
requests, before the answer to the last one leaves (so the cloud did it, the process never knew).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tests.fake_openstack import FakeOpenStack, JournalEntry
from tests.resilience.harness import Proc

Match = Callable[[JournalEntry], bool]


def request(
    method: str, path: str, *, query: str | None = None, no_query: str | None = None
) -> Match:
    """Match a request by method, path regex, and a query parameter present (or absent)."""
    pattern = re.compile(path)

    def match(entry: JournalEntry) -> bool:
        return (
            entry.method == method
            and pattern.search(entry.path) is not None
            and (query is None or query in entry.query)
            and (no_query is None or no_query not in entry.query)
        )

    return match


VOLUME_POST = request("POST", r"/volumes$")
VOLUME_LISTING = request("GET", r"/volumes/detail$", no_query="metadata")
VOLUME_LOOKUP = request("GET", r"/volumes/detail$", query="metadata")
SERVER_LOOKUP = request("GET", r"/servers/detail$", query="tags")
SERVER_POST = request("POST", r"/servers$")
SERVER_LISTING = request("GET", r"/servers/detail$", no_query="tags")
SERVER_DELETE = request("DELETE", r"/servers/[^/]+$")
VOLUME_DELETE = request("DELETE", r"/volumes/[^/]+$")
ATTACH_POST = request("POST", r"/os-volume_attachments$")


def action(collection: str, name: str) -> Match:
    """Match an action POST (``pause``, ``resize``, ``os-extend``...) on a server or volume."""
    path = request("POST", rf"/{collection}/[^/]+/action$")
    return lambda entry: path(entry) and name in (entry.json or {})


@dataclass(frozen=True)
class KillPoint:
    """Kill once ``sequence`` has been seen in this order (other requests may come between)."""

    name: str
    sequence: tuple[Match, ...]


class Killer:
    """Arms a kill point against one process; ``fired`` is set once it killed."""

    def __init__(self, fake: FakeOpenStack, proc: Proc, point: KillPoint) -> None:
        self.point = point
        self.fired = threading.Event()
        self._proc = proc
        self._next = 0
        self._lock = threading.Lock()
        self._remove = fake.on_request(self._see)

    def _see(self, entry: JournalEntry) -> None:
        with self._lock:
            if self.fired.is_set() or not self.point.sequence[self._next](entry):
                return
            self._next += 1
            if self._next < len(self.point.sequence):
                return
            self._proc.kill()  # SIGKILL, and wait for it, before this answer is sent
            self.fired.set()

    def disarm(self) -> None:
        self._remove()
