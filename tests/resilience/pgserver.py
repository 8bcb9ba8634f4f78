"""A private PostgreSQL server for tests that stop and start the database (never the shared one).

initdb refuses to run as root, so as root every command runs as the ``postgres`` user
(``runuser``) in a directory that user owns; as anybody else, as that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.resilience.harness import free_port

BIN = Path(os.environ.get("SOG_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresUnavailable(Exception):
    """This machine cannot run a private PostgreSQL server (the reason is the message)."""


class PrivatePostgres:
    """``initdb`` in a temporary directory, served on a free loopback port, trust auth."""

    def __init__(self) -> None:
        if not (BIN / "initdb").exists() or not (BIN / "pg_ctl").exists():
            raise PostgresUnavailable(f"no initdb/pg_ctl in {BIN} (set SOG_TEST_PG_BIN)")
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root without runuser to become postgres")
        self.directory = Path(tempfile.mkdtemp(prefix="sog-pg-"))
        if self.as_root:
            shutil.chown(self.directory, user="postgres")
        self.data = self.directory / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")  # fmt: skip

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(BIN / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed: {done.stderr.strip() or done.stdout}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        """Stop the server: ``fast`` ends every session at once (a restart); ``immediate`` is a
        crash; ``smart`` refuses new connections and waits for the sessions there are."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w" if wait else "-W", "-t", "30",
                  "stop")  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(PostgresUnavailable):  # not running
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
