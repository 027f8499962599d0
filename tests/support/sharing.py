"""Processes that use one connection at once, for the shared token and rate budget tests.

Each child builds its runtime exactly as a flow run does (`get_runtime`, from the state
database and the secrets in its environment), says "ready", waits for "go END" on its stdin
so that all of them start together, does its role's Books and CRM reads until END (seconds
since the epoch), and prints one JSON line: the tokens it minted and the requests it sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys, threading, time
import crmbooks.runtime

role, per_minute = sys.argv[1], float(sys.argv[2])
built = crmbooks.runtime.config_from_store
crmbooks.runtime.config_from_store = lambda *a, **k: built(*a, **k).model_copy(
    update={"books_requests_per_minute": per_minute})
runtime = crmbooks.runtime.get_runtime()
print("ready", flush=True)
end = float(sys.stdin.readline().split()[1])

def pages(resource, per_page):
    # A run's reads: page after page, again from the first once the list is done.
    while time.time() < end:
        for _ in runtime.books.iter_pages(resource, per_page=per_page):
            if time.time() >= end:
                return

if role == "token":
    runtime.crm.org()
    runtime.books.organization()
elif role == "customers":
    pages("contacts", 3)
elif role == "items":
    pages("items", 1)
elif role == "transactions":
    # A burst of events: several threads each reading one record after another.
    threads = [threading.Thread(target=pages, args=("estimates", 1)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
auth = [runtime.crm.http.auth, runtime.books.http.auth]
print(json.dumps({"role": role, "minted": sum(a.refreshes for a in auth),
                  "books": runtime.api_calls()["books"]}), flush=True)
"""


def start_children(roles: list[str], books_per_minute: float) -> list[subprocess.Popen]:
    """Start one child per role in this test's crmbooks environment; return once all of
    them are ready (imported and connected)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING",
           "DO_NOT_TRACK": "1"}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, role, str(books_per_minute)],
                                 cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for role in roles]
    for child in children:
        line = child.stdout.readline()
        assert line.strip() == "ready", f"a child did not start: {line!r}"
    return children


def go(children: list[subprocess.Popen], seconds: float, timeout: float = 120) -> list[dict]:
    """Let the children work for `seconds` from now; their JSON reports."""
    end = time.time() + seconds
    for child in children:
        child.stdin.write(f"go {end}\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=timeout)
        assert child.returncode == 0, f"a child failed (exit {child.returncode})"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def emulator_stats(server) -> dict:
    """The emulator's request counters."""
    return httpx.get(f"{server.base_url}/__emulator__/stats").json()


def set_limits(server, **limits) -> None:
    """Set emulator limits through its control."""
    httpx.post(f"{server.base_url}/__emulator__/limits", json=limits).raise_for_status()
