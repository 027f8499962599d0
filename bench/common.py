"""What the benchmarks share: the emulator as a subprocess, its demo credentials, the machine.

The emulator always runs as its own process (`python -m emulators`, i.e. `crmbooks emulators`)
so that the server does not share the benchmark's GIL; `subprocess_emulator` always stops it,
whatever happens in between.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# The emulator's documented demo credentials (not secrets).
CLIENT_ID, CLIENT_SECRET, REFRESH = "crmbooks-demo", "crmbooks-demo-secret", "crmbooks-demo-refresh"
BOOKS_ORG = "20099001"
NO_LIMITS = {"books_rate_limit": 10**9, "books_daily_limit": 10**9, "crm_concurrency": 10**6}


def isolate(label: str) -> str:
    """Point crmbooks and Prefect at a fresh temporary home (state database, Prefect home,
    quiet logs, no analytics) before either is imported; returns the folder."""
    folder = tempfile.mkdtemp(prefix=f"crmbooks-bench-{label}-")
    os.environ["CRMBOOKS_HOME"] = os.path.join(folder, "home")
    os.environ["CRMBOOKS_DATABASE_URL"] = f"sqlite:///{os.path.join(folder, 'crmbooks.db')}"
    os.environ["PREFECT_HOME"] = os.path.join(folder, "prefect")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    return folder


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def subprocess_emulator(flags: Sequence[str], start_timeout: float = 120) -> Iterator[str]:
    """`python -m emulators FLAGS` on a free port; yields its base URL, always stops it."""
    port = free_port()
    command = [sys.executable, "-m", "emulators", "--port", str(port), *flags]
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL,
                                   env={**os.environ, "NO_COLOR": "1"})
        try:
            wait_until_up(base_url, process, log, timeout=start_timeout)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until_up(base_url: str, process: subprocess.Popen, log, timeout: float) -> None:
    """Poll the emulator's stats until it answers; SystemExit with its log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the emulator exited with {process.returncode}:\n{log.read()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/__emulator__/stats", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the emulator did not answer on {base_url} within {timeout:.0f} s")


def raise_limits(base_url: str, limits: dict | None = None) -> dict:
    """POST /__emulator__/limits (default: no Books rate or daily limit, no CRM cap)."""
    response = httpx.post(f"{base_url}/__emulator__/limits", json=limits or NO_LIMITS)
    response.raise_for_status()
    return response.json()


def machine() -> dict:
    """Date, CPU model and count, memory, OS, Python and HTTP stack versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cpus": f"{os.cpu_count()} (usable: {usable})", "memory": memory,
            "os": platform.platform(), "python": platform.python_version(),
            "httpx": httpx.__version__, "uvicorn": version_of("uvicorn"),
            "fastapi": version_of("fastapi")}


def version_of(package: str) -> str:
    """The installed version of a distribution, or '?'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def table(rows: list[dict], markdown: bool, text_columns: Sequence[str] = ()) -> str:
    """Rows as an aligned text table, or Markdown (numbers right-aligned); a column some rows
    lack (a baseline a module has not) shows "-" in them."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    rows = [{c: r.get(c, "-") for c in columns} for r in rows]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join("---" if c in text_columns else "---:" for c in columns) + "|"]
        lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
        return "\n".join(lines)
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
