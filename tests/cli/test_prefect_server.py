"""No Prefect server started per command: `crmbooks sync`, in a process of its own with no
Prefect API configured, starts a background server for the Prefect home that later commands
reuse; one that died is replaced; and a file in the working folder named like a standard
module (`concurrent.py`) breaks nothing.

One test, in order, because each step needs the server the step before left, and with one
server start (the cost: about 7 s on an idle machine): the first command finds the record of
a server that died and replaces it, so "replaced" and "started" are the same start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from crmbooks.connect import connect_to_emulator
from crmbooks.runtime import open_store, reset_runtime_cache
from deployments.prefect_server import (
    healthy,
    home_server,
    is_prefect_server,
    read_record,
    stop_background,
    write_record,
)

SHADOW = 'raise SystemExit("the concurrent.py of the working folder was imported")\n'


def crmbooks(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """The `crmbooks` command as a user runs it (the console script), in `cwd`."""
    script = Path(sys.executable).parent / "crmbooks"
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def servers_in(prefect_home: Path) -> list[int]:
    """The pids of the Prefect servers running in this Prefect home (their working folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "cwd") == str(prefect_home) and \
                        is_prefect_server(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def unused_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_dead_server_is_replaced_and_the_new_one_shared_by_later_commands(home, emu_reset,
                                                                            tmp_path):
    connect_to_emulator(emu_reset)
    reset_runtime_cache()
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "concurrent.py").write_text(SHADOW)
    prefect_home = tmp_path / "prefect"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update({"CRMBOOKS_HOME": os.environ["CRMBOOKS_HOME"], "PREFECT_HOME": str(prefect_home),
                "COLUMNS": "100"})
    # A server that died: its record left behind, its pid gone, its port answering nothing.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_record(prefect_home, api_url=f"http://127.0.0.1:{unused_port()}/api", pid=dead.pid,
                 owner="background")
    try:
        # The first command replaces it, from a folder holding concurrent.py.
        first = crmbooks("sync", "vendors", cwd=folder, env=env)
        output = first.stdout + first.stderr
        assert first.returncode == 0, output
        assert "Started a local Prefect server" in output and "Traceback" not in output
        record = read_record(prefect_home)
        assert record is not None and record["owner"] == "background"
        pid = record["pid"]
        assert pid != dead.pid and healthy(record["api_url"])
        assert servers_in(prefect_home) == [pid]

        # The next command reuses it: no new process. (Asked in this process, as a command
        # asks: a second command process would cost seconds and show nothing more.)
        assert home_server(prefect_home) == (record["api_url"], "reused")
        assert servers_in(prefect_home) == [pid]

        # The run is in the state database and on that server.
        [run] = open_store().list_runs("vendors", limit=5)
        assert run.state == "completed"
        answer = httpx.get(f"{record['api_url']}/flow_runs/{run.flow_run_id}")
        assert answer.status_code == 200 and answer.json()["state_type"] == "COMPLETED"
    finally:
        stop_background(prefect_home)
    assert servers_in(prefect_home) == []
