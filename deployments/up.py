"""`crmbooks up`: everything on one machine, in one command, stopped cleanly by Ctrl-C.

1. A Prefect server: reused when one already answers on --host/--port, otherwise started as a
   child process (`python -m prefect server start`) with its SQLite database under
   CRMBOOKS_HOME/prefect and the settings it needs (task-run recorder batches, analytics off,
   flow-run retention), then waited for on /api/health.
2. The Zoho side: the stored connection when there is one; otherwise the emulators, in-process,
   connected like `crmbooks demo` does. Their data lives in memory and starts fresh, so the
   sync state then lives in CRMBOOKS_HOME/up and starts fresh too.
3. The extra services the caller hands in (`crmbooks up` hands in the event receiver), then
   every deployment of deployments/serve.py served until Ctrl-C or SIGTERM.

On the way out it stops, in reverse order, only what it started. By default the served
deployments' schedules are paused on shutdown (`pause_on_shutdown`): nothing runs them while
`up` is down, so no late runs pile up to fire at once on the next start, and the UI shows they
are not served. The next `up` applies them again, un-paused unless `crmbooks pause` is in
effect. Under a supervisor that restarts `up`, `--keep-schedules` leaves them active.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crmbooks.schedules import write_marker
from deployments.prefect_server import (
    DEFAULT_RETENTION_DAYS,
    forget_record,
    server_command,
    server_env,
    stop_background,
    write_record,
)

__all__ = ["DEFAULT_RETENTION_DAYS", "PrefectServer", "UpError", "server_env", "up"]



class UpError(RuntimeError):
    """`up` could not start something; the message says what and what to do."""


@dataclass
class UpContext:
    """What `up` is running, handed to every extra service."""

    api_url: str
    ui_url: str
    home: Path  # the CRMBOOKS_HOME the flow runs use
    emulator: Any = None  # the in-process EmulatorServer, when one runs
    console: Any = None
    extra: dict = field(default_factory=dict)


#: An extra service: a callable `(UpContext) -> context manager`, started after the Zoho side
#: and before serving, entered in order and exited in reverse on shutdown.
Service = Callable[[UpContext], contextlib.AbstractContextManager]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM if `up` itself is killed (SIGKILL leaves no cleanup)."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PrefectServer:
    """A Prefect server on host:port: reused when it answers, else started as a child."""

    def __init__(self, host: str, port: int, prefect_home: Path,
                 retention_days: int = DEFAULT_RETENTION_DAYS):
        self.host, self.port, self.prefect_home = host, port, prefect_home
        self.retention_days = retention_days
        self.process: subprocess.Popen | None = None
        self.log_path = prefect_home / "server.log"
        self.started_in: float | None = None

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when /api/health answers."""
        try:
            return httpx.get(f"{self.api_url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def launch(self) -> bool:
        """Start the server child unless one answers already; True when it was started."""
        if self.healthy():
            return False
        self.prefect_home.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        env = server_env(self.prefect_home, self.retention_days)
        # The UI calls the API at http://<server.api.host>:<server.api.port>/api unless told
        # otherwise: without these, the UI of a server on any port but 4200 calls port 4200.
        env.update({"PREFECT_SERVER_API_HOST": self.host,
                    "PREFECT_SERVER_API_PORT": str(self.port),
                    # The address an alert links a run to (Prefect's `ui_url` filter).
                    "PREFECT_UI_URL": self.ui_url})
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                server_command(self.host, self.port), env=env, cwd=self.prefect_home,
                stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                start_new_session=not sys.platform.startswith("linux"),
            )
        return True

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Wait for /api/health; a server that exits or never answers raises UpError."""
        deadline = time.monotonic() + timeout
        while not self.healthy(timeout=2.0):
            if self.process is not None and self.process.poll() is not None:
                raise UpError(f"the Prefect server exited (code {self.process.returncode}): "
                              f"{self._log_tail()} (full log: {self.log_path})")
            if time.monotonic() > deadline:
                self.stop()
                raise UpError(f"the Prefect server did not answer on {self.api_url}/health "
                              f"within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)
        if self.process is not None:
            self.started_in = time.monotonic() - self._t0

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the child (SIGTERM to its process group, then SIGKILL); a reused one stays."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(text[-lines:]) or "no output"


def _raise_keyboard_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def up(*, host: str = "127.0.0.1", port: int = 4200, emulators: bool | None = None,
       emulators_port: int = 8900, seed: int = 7, accounts: int = 40,
       retention_days: int = DEFAULT_RETENTION_DAYS, pause_on_shutdown: bool = True,
       server_timeout: float = 90.0, console=None, services: Sequence[Service] = ()) -> int:
    """Run everything until Ctrl-C/SIGTERM; returns the exit code (0 on a clean stop).

    `services` are started, in order, once the Prefect server answers and before the
    deployments are served (`crmbooks up` hands in the event receiver).
    """
    from crmbooks.store.engine import crmbooks_home

    if console is None:
        from rich.console import Console

        console = Console()
    t0 = time.monotonic()
    base_home = crmbooks_home()
    prefect_home = Path(os.environ.get("PREFECT_HOME") or base_home / "prefect")
    server = PrefectServer(host, port, prefect_home, retention_days)
    # Everything this process and its flow runs import must see these before Prefect loads.
    os.environ.update({"PREFECT_HOME": str(prefect_home), "PREFECT_API_URL": server.api_url,
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")
    connected = _connected()
    if emulators is None:
        emulators = not connected
    elif not emulators and not connected:
        raise UpError("nothing is connected: run `crmbooks connect` first, or leave out "
                      "--no-emulators to run on the emulators")
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack = contextlib.ExitStack()
    try:
        # A background server that crmbooks commands started on this Prefect home would share
        # its SQLite database with ours: stop it (commands use `up`'s server from now on).
        stopped = stop_background(prefect_home)
        if stopped:
            console.print(f"Stopped the background Prefect server of {prefect_home} (pid "
                          f"{stopped}): commands use this one while `up` runs",
                          highlight=False)
        if server.launch():
            stack.callback(server.stop)
            console.print(f"Starting a Prefect server on {server.ui_url} (pid "
                          f"{server.process.pid}; log {server.log_path})", highlight=False)
        else:
            console.print(f"Reusing the Prefect server already on {server.ui_url}",
                          highlight=False)
        emulator = None
        if emulators:
            emulator = _start_emulators(base_home, emulators_port, seed, accounts)
            stack.callback(emulator.stop)
            console.print(f"Zoho emulators on {emulator.base_url} (seed {seed}, {accounts} "
                          f"accounts); sync state in {crmbooks_home()} (fresh each start)",
                          highlight=False)
        else:
            console.print(f"Using the stored connection; sync state in {crmbooks_home()}",
                          highlight=False)
        from deployments.serve import build_deployments  # imports Prefect while it boots

        paused = _paused()
        deployments = build_deployments(paused=paused)
        server.wait_healthy(server_timeout)
        if server.started_in is not None:
            console.print(f"Prefect server healthy after {server.started_in:.1f} s",
                          highlight=False)
        ctx = UpContext(api_url=server.api_url, ui_url=server.ui_url, home=crmbooks_home(),
                        emulator=emulator, console=console)
        for service in services:
            stack.enter_context(service(ctx))
        write_record(prefect_home, api_url=server.api_url,
                     pid=server.process.pid if server.process else None, owner="up")
        stack.callback(forget_record, prefect_home, "up")
        marker = write_marker(ctx.home, api_url=server.api_url, ui_url=server.ui_url,
                              pid=os.getpid(),
                              server_pid=server.process.pid if server.process else None)
        stack.callback(marker.unlink, missing_ok=True)

        console.print(f"[bold green]Prefect UI:[/] {server.ui_url}  (ready in "
                      f"{time.monotonic() - t0:.1f} s; Ctrl-C stops everything started here)",
                      highlight=False)
        if paused:
            console.print("[yellow]crmbooks is paused: schedules stay paused until "
                          "`crmbooks resume`[/]")
        if ctx.home != base_home:
            console.print(f"In another terminal: CRMBOOKS_HOME={ctx.home} crmbooks status",
                          highlight=False)
        from prefect import serve

        serve(*deployments, pause_on_shutdown=pause_on_shutdown)  # returns on Ctrl-C/SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut cleanup
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
        console.print("Stopped.")
    return 0


def _connected() -> bool:
    """True when a connection is stored in CRMBOOKS_HOME / CRMBOOKS_DATABASE_URL."""
    from crmbooks.runtime import open_store

    try:
        return open_store().connection() is not None
    except Exception:  # an unreadable store: let the emulators path say what is wrong
        return False


def _paused() -> bool:
    from crmbooks.runtime import open_store

    row = open_store().connection()
    return bool(row is not None and (row.paused or row.disabled))


def _start_emulators(base_home: Path, port: int, seed: int, accounts: int):
    """Emulators in-process, connected with the demo credentials, state in a fresh home."""
    from crmbooks.connect import connect_demo
    from crmbooks.runtime import reset_runtime_cache
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    home = base_home / "up"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["CRMBOOKS_HOME"] = str(home)
    os.environ.pop("CRMBOOKS_DATABASE_URL", None)
    reset_runtime_cache()
    server = EmulatorServer(EmulatorConfig(seed=seed, sizes=Sizes(accounts=accounts)),
                            port=port)
    try:
        server.start()
    except RuntimeError as exc:
        raise UpError(f"the emulators could not listen on port {port} ({exc}); "
                      "try --emulators-port 0") from exc
    try:
        connect_demo(server)
    except BaseException:
        server.stop()
        raise
    return server
