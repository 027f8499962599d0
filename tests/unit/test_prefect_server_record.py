"""The record of a Prefect home's server, as `crmbooks up` and the commands use it: `up`
stops the background server it records (never another program that got its pid), and the
record goes with it. The processes here are sleepers named like a server: what is tested is
which process gets signalled, not a server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from deployments.prefect_server import (
    is_prefect_server,
    read_record,
    stop_background,
    write_record,
)

SLEEP = "import time; time.sleep(120)"


def sleeper(*argv: str) -> subprocess.Popen:
    """A process of its own session that sleeps, with `argv` in its command line, returned
    once it runs that command line (until its exec, /proc shows the parent's)."""
    process = subprocess.Popen([sys.executable, "-c", SLEEP, *argv], start_new_session=True)
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 30
    while SLEEP.encode() not in cmdline.read_bytes():
        assert time.monotonic() < deadline, "the sleeper never started"
        time.sleep(0.01)
    return process


def test_up_stops_the_recorded_background_server_and_its_record_goes(tmp_path):
    server = sleeper("prefect", "server", "start")
    try:
        write_record(tmp_path, api_url="http://127.0.0.1:1/api", pid=server.pid,
                     owner="background")
        assert is_prefect_server(server.pid)
        assert stop_background(tmp_path) == server.pid
        assert server.wait(timeout=30) is not None
        assert read_record(tmp_path) is None
    finally:
        server.kill()


def test_a_recorded_pid_that_runs_something_else_is_left_alone(tmp_path):
    other = sleeper()
    try:
        write_record(tmp_path, api_url="http://127.0.0.1:1/api", pid=other.pid,
                     owner="background")
        assert not is_prefect_server(other.pid)
        stop_background(tmp_path)
        assert other.poll() is None and read_record(tmp_path) is None
    finally:
        other.kill()
        other.wait(timeout=30)


def test_ups_own_record_is_not_the_background_ones(tmp_path):
    write_record(tmp_path, api_url="http://127.0.0.1:1/api", pid=None, owner="up")
    assert stop_background(tmp_path) is None
    assert read_record(tmp_path)["owner"] == "up"


def test_an_unreadable_record_is_no_record(tmp_path):
    (tmp_path / "server.json").write_text("{not json")
    assert read_record(tmp_path) is None
