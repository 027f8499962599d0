"""No Prefect server started per command: `crmbooks sync`, in a process of its own with no
Prefect API configured, starts a background server for the Prefect home that later commands
reuse; one that died is replaced; and a file in the working folder named like a standard
module (`concurrent.py`) breaks nothing.

One test, in order, because each step needs the server the step before left (and starting
one is the cost: about 7 s on an idle machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def gone(pid: int, timeout: float = 30.0) -> bool:
    """Wait until `pid` no longer runs a Prefect server."""
    deadline = time.monotonic() + timeout
    while is_prefect_server(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_commands_share_one_background_server_and_a_dead_one_is_replaced(home, emu_reset,
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
    try:
        # The first command starts the server, from a folder holding concurrent.py.
        first = crmbooks("sync", "vendors", cwd=folder, env=env)
        output = first.stdout + first.stderr
        assert first.returncode == 0, output
        assert "Started a local Prefect server" in output and "Traceback" not in output
        record = read_record(prefect_home)
        assert record is not None and record["owner"] == "background"
        pid = record["pid"]
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

        # A server that died is replaced by the next command.
        os.killpg(pid, signal.SIGKILL)
        assert gone(pid)
        url, how = home_server(prefect_home)
        assert how == "started" and healthy(url)
        replaced = read_record(prefect_home)["pid"]
        assert replaced != pid and servers_in(prefect_home) == [replaced]
    finally:
        stop_background(prefect_home)
    assert servers_in(prefect_home) == []
