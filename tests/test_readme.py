"""The README's walk-through runs as written against `sog-api serve`, pasted whole into bash.

Only the key and the address are put in; the simulated cloud runs fast. Every call must succeed:
no problem document (4xx/5xx) may appear in the output, and each wait must end in its status.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.resilience.harness import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
DEFAULT_API = "http://127.0.0.1:8001"
PROBLEM = re.compile(r'"status":\s*[45]\d\d')

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("ssh-keygen")),
    reason="the walk-through needs curl and ssh-keygen",
)


def walk_through() -> str:
    """The first shell block of the README's "First requests" section."""
    text = README.read_text()
    section = text[text.index("## First requests") :]
    return section[section.index("```sh\n") + 6 : section.index("```\n", 6)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "SOG_PORT": str(port),
        "SOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/readme.db",
        "SOG_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "SOG_SIMULATOR_DELAY_SCALE": "0.02",
        "SOG_WORKER_POLL_INTERVAL": "0.1",
    }
    command = [str(Path(sys.executable).parent / "sog-api"), "serve"]
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sog-api serve did not answer"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_first_requests_run_as_written(server: str, tmp_path: Path) -> None:
    script = walk_through()
    assert script.startswith("KEY=sog_...") and DEFAULT_API in script
    script = script.replace("KEY=sog_...", f"KEY={TEST_API_KEY}", 1).replace(DEFAULT_API, server)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    out = done.stdout
    assert done.returncode == 0 and not done.stderr, done.stderr + out[-3000:]
    # the last line is the orbit being deleted, or its 404; everything before it succeeded
    *steps, last = out.strip().splitlines()
    assert not [line for line in steps if PROBLEM.search(line)], out
    assert '"status":"DELETING"' in last or '"status":404' in last, last
    for line in (": RUNNING", ": PAUSED", ": AVAILABLE"):
        assert line in out
    assert '"kind":"orbit.delete"' in out
