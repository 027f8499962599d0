"""A fleet on one machine: 20 organizations synced by two Prefect workers from one work pool.

What docs/scaling.md describes for several machines, shown here on loopback:

* N organizations (default 20), each its own emulated Zoho CRM + Zoho Books pair with its own
  OAuth client, refresh token and Books organization id, each in its own process;
* a throwaway PostgreSQL cluster (like .ci/run) holding the Prefect server's database and the
  crmbooks store of the whole fleet (one database; one named connection per organization,
  `org-<id>`, whose secrets are Prefect Secret blocks `crmbooks-…-org-<id>`); `--sqlite` (or
  no PostgreSQL on the machine) uses SQLite files instead;
* a Prefect server on that database, a `process` work pool, the module deployments of the
  fleet (`prefect deploy --all --prefect-file <fleet yaml>`, the yaml printed in the doc) and
  two `prefect worker start` processes, each with its own PREFECT_HOME as if on its own host;
* a global concurrency limit `sync-org-<id>` (limit 1) per organization, held by every run
  (`exclusive=True`, flows/fleet.py) so the modules of one organization never overlap;
* N × 3 flow runs (customers, vendors, items per organization) started with
  `run_deployment(..., timeout=0)`, then waited for (bounded by --timeout).

It prints the wall time, the runs completed / failed, the API calls per organization (from
each emulator's /__emulator__/stats), the busiest minute of Books calls per organization
against its 100 requests/minute limit, and the proof of no overlap per organization (flow-run
and task-run start/end times read back from the Prefect API). Everything it starts listens on
127.0.0.1 and is stopped at the end, whatever happens; the temporary folders are removed.

    .venv/bin/python bench/bench_fleet.py                   # 20 organizations, ~10 min
    .venv/bin/python bench/bench_fleet.py --orgs 4          # a smaller run
    .venv/bin/python bench/bench_fleet.py --markdown /tmp/fleet.md
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import free_port, machine, table, version_of  # noqa: E402

MODULES = ("customers", "vendors", "items")
POOL = "crmbooks-fleet"
FIRST_ORG = 20100001
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
#: The client spaces Books requests evenly at 97 % of 100 per minute (crmbooks/connectors/
#: pacing.py): an organization's Books calls take at least this long each, whatever the CPU.
BOOKS_SPACING_S = 60 / (100 * 0.97)

#: The fleet's deployments: the module flows of prefect.yaml, without schedules (the bench
#: starts the runs), with a concurrency limit K per deployment instead of 1 (a limit of 1
#: would serialize every organization, as a deployment's limit counts all its runs), and
#: `exclusive` on.
FLEET_YAML = """\
name: crmbooks-fleet
prefect-version: 3.9.1
build: null
push: null
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: {repo}
definitions:
  pool: &pool {{name: {pool}, work_queue_name: default}}
  many_orgs: &many_orgs {{limit: {k}, collision_strategy: ENQUEUE}}
deployments:
{deployments}"""
FLEET_DEPLOYMENT = """\
  - name: {module}
    entrypoint: flows/{module}.py:sync_{module}
    tags: [crmbooks, fleet, {module}]
    parameters: {{dry_run: false, exclusive: true}}
    schedules: []
    concurrency_limit: *many_orgs
    work_pool: *pool
"""


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Own process group, and SIGTERM when the benchmark dies (Linux)."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """A child process in its own process group, with its log file."""

    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the whole group (a worker's flow-run subprocesses too), then SIGKILL."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Fleet:
    """Everything the benchmark started, stopped in reverse order by `close`."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.children: list[Child] = []
        self.cleanups: list = []

    def spawn(self, name: str, command: list[str], env: dict, cwd: Path = REPO) -> Child:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       preexec_fn=_die_with_parent)
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def close(self) -> None:
        # Workers first (they cancel their runs), then the server, then the emulators.
        for child in sorted(self.children, key=lambda c: not c.name.startswith("worker")):
            with contextlib.suppress(Exception):
                child.stop()
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def wait_for(what: str, check, timeout: float, children: list[Child] = ()) -> None:
    """Poll `check()` until true; SystemExit if a child died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        for child in children:
            if not child.alive():
                raise SystemExit(f"{child.name} exited ({child.process.returncode}) while "
                                 f"waiting for {what}:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


# --------------------------------------------------------------------------------------------
# The organizations: one emulated CRM + Books pair each
# --------------------------------------------------------------------------------------------


@dataclass
class Org:
    index: int
    org_id: str
    port: int
    accounts: int
    connection: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    runs: list = field(default_factory=list)

    def __post_init__(self):
        self.connection = f"org-{self.org_id}"
        self.client_id = f"fleet-client-{self.index}"
        self.client_secret = f"fleet-secret-{self.index}-{self.org_id}"
        self.refresh_token = f"fleet-refresh-{self.index}-{self.org_id}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spec(self) -> dict:
        return {"port": self.port, "org_id": self.org_id, "seed": self.index + 1,
                "accounts": self.accounts, "client_id": self.client_id,
                "client_secret": self.client_secret, "refresh_token": self.refresh_token}


def serve_emulators(specs: list[dict]) -> None:
    """Child mode: serve one emulator (CRM + Books + OAuth) per spec until SIGTERM."""
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    servers = []
    try:
        for s in specs:
            a = s["accounts"]
            sizes = Sizes(accounts=a, contacts_per_account=2, unassociated_contacts=2,
                          vendors=max(2, a // 2), products=a, deals=5,
                          books_customers=max(1, a // 4), books_vendors=2,
                          books_items=max(1, a // 4))
            config = EmulatorConfig(seed=s["seed"], sizes=sizes, client_id=s["client_id"],
                                    client_secret=s["client_secret"],
                                    refresh_token=s["refresh_token"],
                                    books_org_ids=[s["org_id"]],
                                    books_org_name=f"Fleet org {s['org_id']}",
                                    crm_org_name=f"Fleet CRM {s['org_id']}")
            servers.append(EmulatorServer(config, port=s["port"]).start())
        print("ready", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()


def start_emulators(fleet: Fleet, orgs: list[Org], per_process: int) -> list[Child]:
    children = []
    for first in range(0, len(orgs), per_process):
        group = orgs[first:first + per_process]
        children.append(fleet.spawn(
            f"emulators-{first + 1:02d}",
            [sys.executable, str(Path(__file__).resolve()), "--emulator-child",
             json.dumps([o.spec() for o in group])], env={**os.environ, "NO_COLOR": "1"}))
    for org in orgs:
        wait_for(f"the emulator of {org.org_id}",
                 lambda o=org: httpx.get(f"{o.base_url}/__emulator__/stats",
                                         timeout=2).status_code == 200, 180, children)
    return children


# --------------------------------------------------------------------------------------------
# PostgreSQL (a throwaway cluster, as .ci/run does) or SQLite
# --------------------------------------------------------------------------------------------


def start_postgres(fleet: Fleet) -> int | None:
    """initdb + pg_ctl start on a free loopback port; returns the port, None if unavailable."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        return None
    bin_dir = Path(found[-1]).parent
    as_root = os.geteuid() == 0
    if as_root and subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode:
        return None
    data = Path(tempfile.mkdtemp(prefix="crmbooks-fleet-pg."))
    fleet.cleanups.append(lambda: shutil.rmtree(data, ignore_errors=True))
    if as_root:
        shutil.chown(data, "postgres")

    def run(command: str) -> None:
        argv = ["su", "postgres", "-c", command] if as_root else ["bash", "-c", command]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    port = free_port()
    run(f"{bin_dir}/initdb -D {data} -U postgres --auth=trust -E UTF8")
    options = (f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=300 "
               "-c fsync=off -c synchronous_commit=off")
    run(f"{bin_dir}/pg_ctl -D {data} -o '{options}' -w -l {data}/log start")
    fleet.cleanups.append(lambda: run(f"{bin_dir}/pg_ctl -D {data} -m fast -w stop"))
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE prefect")
        conn.execute("CREATE DATABASE crmbooks_fleet")
    return port


# --------------------------------------------------------------------------------------------
# Prefect: server, pool, deployments, limits, workers
# --------------------------------------------------------------------------------------------


def client_env(workdir: Path, api_url: str, store_url: str, home: str = "client") -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "CRMBOOKS_"))}
    env.update({
        "PREFECT_API_URL": api_url, "PREFECT_HOME": str(workdir / home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "CRMBOOKS_DATABASE_URL": store_url, "CRMBOOKS_HOME": str(workdir / "crmbooks"),
        "PREFECT_LOGGING_LEVEL": "INFO", "NO_COLOR": "1",
    })
    return env


def start_server(fleet: Fleet, workdir: Path, port: int, db_url: str) -> Child:
    from deployments.up import server_env

    env = server_env(workdir / "server", retention_days=1)
    env = {k: v for k, v in env.items() if not k.startswith("CRMBOOKS_")}
    env.update({"PREFECT_SERVER_DATABASE_CONNECTION_URL": db_url, "PREFECT_UI_ENABLED": "false",
                "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
                "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "30"})
    server = fleet.spawn("prefect-server",
                         [sys.executable, "-m", "prefect", "server", "start", "--host",
                          "127.0.0.1", "--port", str(port)], env=env)
    wait_for("the Prefect server",
             lambda: httpx.get(f"http://127.0.0.1:{port}/api/health",
                               timeout=2).status_code == 200, 180, [server])
    return server


def prefect_cli(env: dict, *args: str, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise SystemExit(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def register_orgs(orgs: list[Org]) -> None:
    """One named connection per organization in the fleet's store, secrets as blocks."""
    from pydantic import SecretStr

    from crmbooks.connect import store_connection, verify
    from crmbooks.connectors.config import ZohoConfig
    from crmbooks.runtime import open_store
    from crmbooks.secrets import save_secrets
    from crmbooks.store import Store

    store = open_store()
    for org in orgs:
        zoho = ZohoConfig(accounts_url=org.base_url, api_url=org.base_url,
                          client_id=org.client_id, client_secret=org.client_secret,
                          refresh_token=org.refresh_token, books_org_id=org.org_id)
        store_connection(store, zoho, verify(zoho), name=org.connection)
        save_secrets({"client_secret": SecretStr(org.client_secret),
                      "refresh_token": SecretStr(org.refresh_token)}, org.connection)
        Store(store.engine, org_id=org.org_id).save_settings(
            "customers", {"crm_module": "accounts+contacts", "scope": "both",
                          "duplicates": "skip"})
        httpx.post(f"{org.base_url}/__emulator__/stats/clear").raise_for_status()


# --------------------------------------------------------------------------------------------
# The run and its figures
# --------------------------------------------------------------------------------------------


def trigger(orgs: list[Org], order: str) -> dict[str, tuple[Org, str]]:
    """N × 3 runs, scheduled 10 ms apart in the chosen order.

    `module` (the default): the customers of every organization, then the vendors, then the
    items, so the runs side by side are of different organizations. `org`: the three modules
    of one organization after another, so they contend for its slot and wait (a waiting run
    holds a worker slot): the global concurrency limit at work.
    """
    from prefect.deployments import run_deployment

    pairs = ([(m, o) for m in MODULES for o in orgs] if order == "module"
             else [(m, o) for o in orgs for m in MODULES])
    started, now = {}, datetime.now(UTC)
    for i, (module, org) in enumerate(pairs):
        flow_run = run_deployment(
            f"sync-{module}/{module}", timeout=0,
            scheduled_time=now + timedelta(milliseconds=10 * i),
            parameters={"org_id": org.org_id, "connection": org.connection,
                        "exclusive": True})
        started[str(flow_run.id)] = (org, module)
    return started


def slot_waits(flow_run_ids: list[str]) -> dict[str, float]:
    """Seconds each run waited for its organization's slot, from its log ("holding …")."""
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    waits, offset = {}, 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)), limit=200, offset=offset)
            for log in page:
                found = re.search(r"holding sync-org-\S+ \(waited ([\d.]+) s", log.message)
                if found:
                    waits[str(log.flow_run_id)] = float(found.group(1))
            if len(page) < 200:
                return waits
            offset += 200


def wait_runs(ids: list[str], timeout: float, workers: list[Child]) -> tuple[list, bool]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline, last_print = time.monotonic() + timeout, 0.0
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
            states = defaultdict(int)
            for run in runs:
                states[run.state_type.value if run.state_type else "?"] += 1
            done = sum(states[s] for s in TERMINAL)
            if time.monotonic() - last_print > 10:
                print(f"  {time.strftime('%H:%M:%S')} " + ", ".join(
                    f"{k.lower()} {v}" for k, v in sorted(states.items())), flush=True)
                last_print = time.monotonic()
            if done == len(ids):
                return runs, True
            if time.monotonic() > deadline or not any(w.alive() for w in workers):
                return runs, False
            time.sleep(2)


def read_task_runs(flow_run_ids: list[str]) -> dict[str, list]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    grouped: dict[str, list] = defaultdict(list)
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)),
                limit=200, offset=offset)
            for task_run in page:
                grouped[str(task_run.flow_run_id)].append(task_run)
            if len(page) < 200:
                return grouped
            offset += 200


def emulator_figures(org: Org) -> dict:
    stats = httpx.get(f"{org.base_url}/__emulator__/stats", timeout=10).json()
    calls = defaultdict(int)
    for key, n in stats["requests"].items():
        path = key.split(" ", 1)[1]
        side = ("crm" if path.startswith("/crm") else "oauth" if path.startswith("/oauth")
                else "books" if path.startswith(("/books", "/api/v3")) else "other")
        calls[side] += n
    log = httpx.get(f"{org.base_url}/__emulator__/log", params={"limit": 5000},
                    timeout=10).json()["requests"]
    books_times = sorted(datetime.fromisoformat(r["time"]) for r in log
                         if r["path"].startswith(("/books", "/api/v3")))
    busiest, j = 0, 0
    for i, t in enumerate(books_times):  # most Books requests in any 60 s window
        while books_times[j] < t - timedelta(seconds=60):
            j += 1
        busiest = max(busiest, i - j + 1)
    return {"crm": calls["crm"], "books": calls["books"], "oauth": calls["oauth"],
            "429": stats["responses"].get("429", 0), "books_busiest_min": busiest}


def overlaps(intervals: list[tuple[datetime, datetime]]) -> int:
    """How many consecutive pairs (by start) overlap in time."""
    ordered = sorted(intervals)
    return sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1])


def max_parallel(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def worker_of_runs(workers: list[Child], ids: list[str]) -> dict[str, int]:
    """Runs each worker started: submitted, less those whose submission the server aborted
    (both workers had picked the same run; the other one got it)."""
    counts = {}
    for worker in workers:
        text = worker.log.read_text(errors="replace")
        counts[worker.name] = sum(
            text.count(f"submitting flow run '{i}'") - text.count(f"submission of flow run '{i}'")
            for i in ids)
    return counts


def store_counts(orgs: list[Org]) -> dict[str, dict]:
    """Records created/updated/failed per organization, from the fleet's crmbooks store."""
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    out = {org.org_id: defaultdict(int) for org in orgs}
    # Store.list_runs lists the runs of every organization: keep each org's own.
    for run in Store(open_store().engine).list_runs(limit=100_000):
        if run.org_id in out:
            for side in (run.counts or {}).values():
                for k in ("created", "updated", "failed"):
                    out[run.org_id][k] += int(side.get(k, 0) or 0)
    return out


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=20, help="organizations (default 20)")
    parser.add_argument("--accounts", type=int, default=12,
                        help="CRM accounts seeded per organization (default 12)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--worker-limit", type=int, default=3,
                        help="flow runs at once per worker (default 3)")
    parser.add_argument("--orgs-per-process", type=int, default=1,
                        help="emulated organizations per emulator process (default 1)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds to wait for the runs (default 600)")
    parser.add_argument("--order", choices=("module", "org"), default="module",
                        help="order of the runs: all customers first (module, default) or "
                             "an organization's three modules together (org: they wait for "
                             "its slot)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--markdown", help="also write the figures as Markdown to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work folder")
    parser.add_argument("--emulator-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulator_child:
        serve_emulators(json.loads(args.emulator_child))
        return 0

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="crmbooks-fleet."))
    fleet = Fleet(workdir)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return run(args, fleet, workdir, t_start)
    except KeyboardInterrupt:
        print("interrupted: stopping everything")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        t_stop = time.monotonic()
        fleet.close()
        print(f"stopped {len(fleet.children)} processes in {time.monotonic() - t_stop:.1f} s")
        if args.keep_logs:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def run(args, fleet: Fleet, workdir: Path, t_start: float) -> int:
    orgs = [Org(i, str(FIRST_ORG + i), free_port(), args.accounts) for i in range(args.orgs)]
    phases = {}

    t = time.monotonic()
    pg_port = None if args.sqlite else start_postgres(fleet)
    if pg_port:
        prefect_db = f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/prefect"
        store_url = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/crmbooks_fleet"
        database = f"PostgreSQL (throwaway cluster on 127.0.0.1:{pg_port})"
    else:
        prefect_db = f"sqlite+aiosqlite:///{workdir / 'prefect.db'}"
        store_url = f"sqlite:///{workdir / 'crmbooks.db'}"
        database = "SQLite (no PostgreSQL here)" if not args.sqlite else "SQLite (--sqlite)"
    print(f"databases: {database}")
    emulators = start_emulators(fleet, orgs, max(1, args.orgs_per_process))
    print(f"{len(orgs)} organizations on {len(emulators)} emulator process(es)")
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}/api"
    start_server(fleet, workdir, api_port, prefect_db)
    phases["start emulators, databases and Prefect server"] = time.monotonic() - t

    # This process is a client of that server and of the fleet's store from here on.
    env = client_env(workdir, api_url, store_url)
    for key in [k for k in os.environ if k.startswith(("PREFECT_", "CRMBOOKS_"))]:
        del os.environ[key]
    os.environ.update(env)

    t = time.monotonic()
    prefect_cli(env, "work-pool", "create", POOL, "--type", "process")
    fleet_yaml = workdir / "fleet.yaml"
    fleet_yaml.write_text(FLEET_YAML.format(
        repo=REPO, pool=POOL, k=args.workers * args.worker_limit,
        deployments="".join(FLEET_DEPLOYMENT.format(module=m) for m in MODULES)))
    prefect_cli(env, "deploy", "--all", "--prefect-file", str(fleet_yaml))
    from flows.fleet import ensure_org_limits

    ensure_org_limits([o.org_id for o in orgs])
    register_orgs(orgs)
    phases["pool, deployments, limits, connections"] = time.monotonic() - t

    t = time.monotonic()
    workers = []
    for n in range(1, args.workers + 1):
        worker_env = client_env(workdir, api_url, store_url, home=f"worker-{n}")
        worker_env.update({"PREFECT_WORKER_QUERY_SECONDS": "2",
                           "PREFECT_RUNNER_HEARTBEAT_FREQUENCY": "30"})
        workers.append(fleet.spawn(f"worker-{n}", [
            sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type",
            "process", "--name", f"fleet-worker-{n}", "--limit", str(args.worker_limit)],
            env=worker_env))
    from prefect.client.orchestration import get_client

    def workers_online() -> bool:
        with get_client(sync_client=True) as client:
            online = [w for w in client.read_workers_for_work_pool(POOL)
                      if w.status and w.status.value == "ONLINE"]
        return len(online) >= args.workers

    wait_for("the workers", workers_online, 120, workers)
    phases["start workers"] = time.monotonic() - t

    t_runs, load_before = time.monotonic(), os.getloadavg()[0]
    started = trigger(orgs, args.order)
    phases["start the runs (run_deployment, timeout=0)"] = time.monotonic() - t_runs
    print(f"started {len(started)} flow runs; waiting (at most {args.timeout:.0f} s)")
    runs, finished = wait_runs(list(started), args.timeout, workers)
    wall = time.monotonic() - t_runs
    load_after = os.getloadavg()[0]
    # Each worker's flow runs end before it is asked for more, so their CPU time is counted
    # in the worker's children time; wait for the last ones to be reaped.
    time.sleep(2)
    worker_cpu = sum(cpu_seconds(w.process.pid) for w in workers)
    time.sleep(3)  # let the task-run recorder catch up before reading task runs back
    task_runs = read_task_runs(list(started))
    waits = slot_waits(list(started))

    states = defaultdict(int)
    per_org = defaultdict(list)
    flow_intervals, work_intervals = [], []
    for run in runs:
        org, module = started[str(run.id)]
        states[run.state_type.value if run.state_type else "?"] += 1
        tasks = [tr for tr in task_runs.get(str(run.id), []) if tr.start_time]
        row = {"id": str(run.id), "module": module, "state": run.state_name,
               "start": run.start_time,
               "end": run.end_time,
               "work_start": min((tr.start_time for tr in tasks), default=None),
               "work_end": max((tr.end_time or tr.start_time for tr in tasks), default=None)}
        per_org[org.org_id].append(row)
        if row["start"] and row["end"]:
            flow_intervals.append((row["start"], row["end"]))
        if row["work_start"] and row["work_end"]:
            work_intervals.append((row["work_start"], row["work_end"]))
    counts = store_counts(orgs)

    rows, total_overlaps, total_flow_overlaps = [], 0, 0
    for org in orgs:
        mine = per_org[org.org_id]
        work = [(r["work_start"], r["work_end"]) for r in mine if r["work_start"]]
        flows = [(r["start"], r["end"]) for r in mine if r["start"] and r["end"]]
        ov, fov = overlaps(work), overlaps(flows)
        total_overlaps += ov
        total_flow_overlaps += fov
        fig = emulator_figures(org)
        span = (max(e for _, e in work) - min(s for s, _ in work)).total_seconds() if work else 0
        busy_s = sum((e - s).total_seconds() for s, e in work)
        floor_s = fig["books"] * BOOKS_SPACING_S
        done = counts.get(org.org_id, {})
        rows.append({
            "org": org.org_id,
            "runs ok": sum(1 for r in mine if r["state"] == "Completed"),
            "runs failed": sum(1 for r in mine if r["state"] != "Completed"),
            "created": done.get("created", 0), "updated": done.get("updated", 0),
            "CRM calls": fig["crm"], "Books calls": fig["books"], "OAuth": fig["oauth"],
            "429": fig["429"], "Books busiest min": fig["books_busiest_min"],
            "org span s": f"{span:.1f}",
            "work s": f"{busy_s:.1f}", "Books pacing floor s": f"{floor_s:.1f}",
            "waited for slot s": f"{sum(waits.get(r['id'], 0.0) for r in mine):.1f}",
            "overlap (work)": ov, "overlap (flow runs)": fov,
            "order": " → ".join(r["module"][0] for r in sorted(mine, key=_when)),
        })

    total = len(started)
    completed = states.get("COMPLETED", 0)
    busy = [r for r in rows]
    summary = {
        "organizations": len(orgs),
        "emulator processes": len(emulators),
        "workers × limit": f"{args.workers} × {args.worker_limit}",
        "databases": database,
        "flow runs": total,
        "completed": completed,
        "failed / crashed / cancelled": total - completed,
        "finished within the timeout": "yes" if finished else "NO",
        "wall time, first run started → last run finished": f"{wall:.1f} s",
        "runs per minute": f"{completed / wall * 60:.1f}",
        "most flow runs at once": max_parallel(flow_intervals),
        "most runs doing work at once": max_parallel(work_intervals),
        "API calls, CRM / Books / OAuth": (
            f"{sum(r['CRM calls'] for r in busy)} / {sum(r['Books calls'] for r in busy)} / "
            f"{sum(r['OAuth'] for r in busy)}"),
        "work time per org (3 runs, slot held) vs its Books pacing floor, median": (
            f"{statistics.median(float(r['work s']) for r in busy):.1f} s vs "
            f"{statistics.median(float(r['Books pacing floor s']) for r in busy):.1f} s"),
        "Books calls in one org's busiest minute (limit 100)":
            max(r["Books busiest min"] for r in busy),
        "order of the runs": args.order,
        "wait for the org's slot: runs that logged it, median, longest": (
            f"{len(waits)}, {statistics.median(waits.values()) if waits else 0:.1f} s, "
            f"{max(waits.values(), default=0):.1f} s"),
        "overlapping runs of one org (task work)": total_overlaps,
        "overlapping runs of one org (flow-run start/end)": total_flow_overlaps,
        "CPU seconds, the workers and their flow runs": (
            f"{worker_cpu:.0f} ({worker_cpu / max(1, completed):.1f} per run)"),
        "load average (1 min) at the start / end of the runs":
            f"{load_before:.1f} / {load_after:.1f} (2 cores)",
        "runs per worker": ", ".join(f"{k}: {v}" for k, v in
                                     worker_of_runs(workers, list(started)).items()),
        "whole benchmark, setup included": f"{time.monotonic() - t_start:.0f} s",
    }
    m = machine()
    m["prefect"] = version_of("prefect")
    text_phases = [{"phase": k, "seconds": f"{v:.1f}"} for k, v in phases.items()]
    print()
    print(table([{"figure": k, "value": v} for k, v in summary.items()], markdown=False))
    print()
    print(table(text_phases, markdown=False))
    print()
    print(table(rows, markdown=False))
    print()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in m.items()))
    if args.markdown:
        timeline = []
        for org in orgs[:3]:
            for r in sorted(per_org[org.org_id], key=lambda r: r["start"] or datetime.max):
                timeline.append({
                    "org": org.org_id, "module": r["module"], "state": r["state"],
                    "flow run start": _t(r["start"]), "slot held from": _t(r["work_start"]),
                    "to": _t(r["work_end"]), "flow run end": _t(r["end"])})
        Path(args.markdown).write_text("\n\n".join([
            table([{"figure": k, "value": v} for k, v in summary.items()], markdown=True,
                  text_columns=("figure", "value")),
            table(text_phases, markdown=True, text_columns=("phase",)),
            table(rows, markdown=True, text_columns=("org", "order")),
            table(timeline, markdown=True, text_columns=tuple(timeline[0]) if timeline else ()),
            "Machine: " + ", ".join(f"{k} {v}" for k, v in m.items()),
        ]) + "\n")
        print(f"wrote {args.markdown}")
    if not finished or completed != total or total_overlaps:
        for worker in workers:
            print(f"--- {worker.name} (last lines)\n{worker.tail(25)}")
        return 1
    return 0


def _when(row: dict) -> float:
    moment = row["work_start"] or row["start"]
    return moment.timestamp() if moment else float("inf")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process plus its waited-for children (a worker: its flow runs)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _t(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S.%f")[:-4] if value else ""


if __name__ == "__main__":
    sys.exit(main())
