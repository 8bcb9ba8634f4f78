"""Start `sog-api` processes by forking one that has imported everything already.

Run as ``python -m tests.resilience.zygote``. It imports sog-api once (two seconds of CPU a
process, on a machine with two cores), then reads one JSON request a line from stdin:
``{"args": [...], "env": {...}, "cwd": ..., "log": ...}``. For each it forks a child that starts
a session of its own, sends its output to ``log``, takes ``env`` as its whole environment and runs
the `sog-api` command line (``sog_api.cli:main``) with ``args``, exactly as the console script
would. It answers ``{"pid": ...}``, and ``{"exited": pid, "code": ...}`` once a child has ended
(negative: killed by that signal). No thread but the main one exists when it forks.
"""

from __future__ import annotations

import json
import os
import select
import sys

import uvicorn  # noqa: F401

# what every command needs: imported once, here, before any fork
import sog_api.cli
import sog_api.cloud.openstack
import sog_api.main
import sog_api.worker.runner


def _say(message: dict[str, object]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _child(request: dict[str, object]) -> None:
    os.setsid()
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
    sys.argv = ["sog-api", *[str(a) for a in request["args"]]]  # type: ignore[attr-defined]
    code = 0
    try:
        sog_api.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def main() -> None:
    _say({"ready": True})
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.02)
        _reap()
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return  # the test process is gone: so are we (the children have their sessions)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(request)
            _say({"pid": pid})


if __name__ == "__main__":
    main()
