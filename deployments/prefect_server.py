"""The Prefect server a crmbooks command runs its flows against, without starting one per call.

Prefect's own fallback when no API is configured is an ephemeral server started inside every
process that runs a flow: 20–40 s on a loaded machine, a timeout now and then, and a history
that is lost with the process. A command asks `api_url()` instead, which answers, in order:

1. the API the user configured: `PREFECT_API_URL` (environment, Prefect profile, or a test
   harness's settings): used as it is, nothing started;
2. the server recorded for the Prefect home (`PREFECT_HOME/server.json`), when it answers on
   `/api/health`: the one of a running `crmbooks up`, or the background server below;
3. otherwise a background server that crmbooks starts once for its Prefect home: detached
   (its own session, it outlives the command), on a free port of 127.0.0.1, with its SQLite
   database in the Prefect home and the same settings as `crmbooks up`'s (task-run recorder
   batches, flow-run retention), recorded with its pid in `server.json`. Later commands reuse
   it; one that no longer answers is stopped (when its recorded pid still runs a Prefect
   server) and replaced. A file lock keeps two commands from starting two servers at once.

`crmbooks up` stops a background server of its Prefect home before it starts its own on the
same database, and records its own in `server.json`, so two servers never share one SQLite
file and commands find `up`'s server while it runs.

The server child is started with `python -P` and its working directory in the Prefect home:
a file in the user's folder named like a standard module (`concurrent.py`) cannot shadow one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: Flow runs older than this are deleted by the server's vacuum (our own run history, in the
#: crmbooks database, is kept regardless).
DEFAULT_RETENTION_DAYS = 30
#: How long a starting server may take to answer (13–100 s measured on a loaded 2-core one).
START_TIMEOUT_S = 180.0


class ServerError(RuntimeError):
    """The background Prefect server could not be started; the message says what to do."""


def server_env(prefect_home: Path, retention_days: int) -> dict[str, str]:
    """The environment of a Prefect server child (`crmbooks up`'s or the background one).

    Analytics off; the task-run recorder writes in batches of 200 and flushes every second
    (Prefect's defaults leave its UI tens of seconds behind a run of a few thousand task runs);
    the vacuum deletes flow runs and events older than `retention_days` (kept forever by
    default).
    """
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update({
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,flow_runs",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": str(retention_days * 86400),
    })
    return env


def server_command(host: str, port: int) -> list[str]:
    """`python -P -m prefect server start …`: `-P` keeps the working directory off sys.path,
    so a `concurrent.py` (or any file named like a standard module) there shadows nothing."""
    return [sys.executable, "-P", "-m", "prefect", "server", "start", "--host", host,
            "--port", str(port)]


# ------------------------------------------------------------------------------- the record
def record_path(prefect_home: Path) -> Path:
    """Where the server serving this Prefect home is recorded (api_url, pid, owner)."""
    return prefect_home / "server.json"


def read_record(prefect_home: Path) -> dict | None:
    """The recorded server, or None (no record, or one that is unreadable)."""
    try:
        record = json.loads(record_path(prefect_home).read_text())
        return record if isinstance(record, dict) and record.get("api_url") else None
    except (OSError, ValueError):
        return None


def write_record(prefect_home: Path, *, api_url: str, pid: int | None, owner: str) -> None:
    """Record the server of this Prefect home (`owner`: "up" or "background")."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    path = record_path(prefect_home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"api_url": api_url, "pid": pid, "owner": owner,
                               "started_at": time.time()}))
    tmp.replace(path)  # a reader sees the old record or the new one, never half of one


def forget_record(prefect_home: Path, owner: str) -> None:
    """Remove the record if `owner` still holds it."""
    record = read_record(prefect_home)
    if record is not None and record.get("owner") == owner:
        record_path(prefect_home).unlink(missing_ok=True)


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when the API answers /health."""
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def is_prefect_server(pid: int | None) -> bool:
    """True when `pid` runs a Prefect server (so a recorded pid reused by another program is
    never signalled)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"prefect" in cmdline and b"server" in cmdline and b"start" in cmdline


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """Stop a server process and its group: SIGTERM, then SIGKILL after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):  # reap it when it is our own child
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def stop_background(prefect_home: Path) -> int | None:
    """Stop the background server of this Prefect home, if one runs; returns its pid.

    `crmbooks up` calls this before it starts its own server on the same database.
    """
    record = read_record(prefect_home)
    if record is None or record.get("owner") != "background":
        return None
    pid = record.get("pid")
    if is_prefect_server(pid):
        stop_pid(pid)
    forget_record(prefect_home, "background")
    return pid if pid else None


# -------------------------------------------------------------------------- the background
@contextlib.contextmanager
def _start_lock(prefect_home: Path):
    """One command at a time decides whether to start the background server."""
    import fcntl

    prefect_home.mkdir(parents=True, exist_ok=True)
    with open(prefect_home / "server.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_background(prefect_home: Path, host: str = "127.0.0.1",
                     retention_days: int = DEFAULT_RETENTION_DAYS,
                     timeout: float = START_TIMEOUT_S) -> str:
    """Start a detached Prefect server for this Prefect home and record it; returns its API.

    Detached: its own session and no parent-death signal, so it serves later commands; its
    output goes to `PREFECT_HOME/server.log`.
    """
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = _free_port(host)
    api = f"http://{host}:{port}/api"
    env = server_env(prefect_home, retention_days)
    # The UI calls the API at the server's own host and port only when told them.
    env.update({"PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port),
                # The address an alert links a run to (Prefect's `ui_url` filter).
                "PREFECT_UI_URL": f"http://{host}:{port}"})
    log_path = prefect_home / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(server_command(host, port), env=env, cwd=prefect_home,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    write_record(prefect_home, api_url=api, pid=process.pid, owner="background")
    deadline = time.monotonic() + timeout
    while not healthy(api):
        if process.poll() is not None:
            forget_record(prefect_home, "background")
            raise ServerError(f"the local Prefect server exited (code {process.returncode}); "
                              f"see {log_path}")
        if time.monotonic() > deadline:
            stop_pid(process.pid)
            forget_record(prefect_home, "background")
            raise ServerError(f"the local Prefect server did not answer within "
                              f"{timeout:.0f} s; see {log_path}, or run `crmbooks up`")
        time.sleep(0.2)
    return api


def configured_api_url() -> str | None:
    """The Prefect API the user (or a test harness) configured, or None."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect" not in sys.modules:
        return None  # a profile's setting is read below only once Prefect is loaded anyway
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def api_url(prefect_home: Path) -> tuple[str, str]:
    """(the Prefect API to use, how it was found: "configured", "up", "reused", "started").

    Never starts a second server for a Prefect home whose recorded one answers; replaces one
    that does not.
    """
    configured = configured_api_url()
    if configured:
        return configured, "configured"
    return home_server(prefect_home)


def home_server(prefect_home: Path) -> tuple[str, str]:
    """(the API of the server of this Prefect home, "up", "reused" or "started"): the
    recorded one when it answers, else a background server started now (one recorded but
    not answering is stopped first)."""
    record = read_record(prefect_home)
    if record is not None and healthy(record["api_url"]):
        return record["api_url"], "up" if record.get("owner") == "up" else "reused"
    with _start_lock(prefect_home):
        record = read_record(prefect_home)  # another command may have started one meanwhile
        if record is not None and healthy(record["api_url"]):
            return record["api_url"], "up" if record.get("owner") == "up" else "reused"
        if record is not None and record.get("owner") == "background" and \
                is_prefect_server(record.get("pid")):
            stop_pid(record["pid"])  # recorded but not answering: hung, replace it
        return start_background(prefect_home), "started"
