"""Benchmarks, each printing ratios measured side by side in one run: ``python -m bench``.

- ``poll``: what one poll cycle costs when it asks the cloud about N servers in one listing
  (``servers/detail?changes-since``, as the poller does) against one GET per server, over real
  HTTP to the fake OpenStack on loopback, through the openstacksdk backend.
- ``api``: requests per second of the main reads and of create, in process, on SQLite and (when
  ``SOG_BENCH_DATABASE_URL`` or the local PostgreSQL answers) on PostgreSQL.

``python -m bench poll`` or ``python -m bench api`` runs one of them.
"""

from __future__ import annotations

import sys

from bench import api, poll

BENCHMARKS = {"poll": poll.main, "api": api.main}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    for name in chosen:
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
