"""Deployments: prefect.yaml and deployments/serve.py agree, every
entrypoint is a typed flow, `prefect deploy --all` registers them with their schedule and
concurrency limit, `sync-now` runs modules in order, pause/resume reach the schedules, and
`crmbooks up` starts, runs a deployment and stops everything it started.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from deployments.serve import (
    DEPLOYMENTS,
    ONE_AT_A_TIME,
    TAG,
    TIMEZONE,
    WORK_POOL,
    build_deployments,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEDULED = {"customers", "vendors", "items"}
LATER = {"transactions": "flows/transactions.py", "deal-triggers": "flows/deal_triggers.py"}


def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def yaml_deployments() -> dict[str, dict]:
    return {d["name"]: d for d in prefect_yaml()["deployments"]}


def load_entrypoint(entrypoint: str):
    import importlib

    path, name = entrypoint.split(":")
    assert (ROOT / path).is_file(), f"{path} does not exist"
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


# ------------------------------------------------------------------------- static checks
@pytest.mark.parametrize("name", sorted(yaml_deployments()))
def test_every_entrypoint_is_a_flow_with_typed_parameters(name):
    from prefect import Flow

    flow = load_entrypoint(yaml_deployments()[name]["entrypoint"])
    assert isinstance(flow, Flow)
    signature = inspect.signature(flow.fn)
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, parameter.name
        assert parameter.default is not inspect.Parameter.empty, parameter.name
    if {"admin", "destructive"} & set(yaml_deployments()[name]["tags"]):
        return  # settings actions (pause, disable …): they sync no record, so no dry run
    assert signature.parameters, "the UI builds its run form from the parameters"
    properties = flow.parameters.properties
    assert properties["dry_run"]["type"] == "boolean"
    if name in SCHEDULED:
        assert {"type": "string"} in properties["org_id"]["anyOf"]


def test_module_deployments_every_two_hours_one_at_a_time_on_the_pool():
    found = yaml_deployments()
    assert set(found) >= SCHEDULED
    for name, d in found.items():
        assert d["concurrency_limit"] == ONE_AT_A_TIME, name
        assert d["work_pool"]["name"] == WORK_POOL, name
        assert TAG in d["tags"], name
        if "scheduled" in d["tags"]:  # the modules and the catch-ups, every two hours
            [schedule] = d["schedules"]
            assert schedule["timezone"] == TIMEZONE, name
            assert re.fullmatch(r"\d{1,2} \*/2 \* \* \*", schedule["cron"]), name
            assert d["parameters"] == {"dry_run": False}, name
        if name in SCHEDULED:
            assert "scheduled" in d["tags"]
            assert d["entrypoint"] == f"flows/{name}.py:sync_{name}"
    on_demand = found["on-demand"]
    assert on_demand["entrypoint"] == "flows/operations.py:sync_now"
    assert not on_demand.get("schedules")


def test_modules_start_apart_in_dependency_order():
    """Staggered starts: concurrent runs would add their Books calls up past the org limit."""
    minutes = [int(s.cron.split()[0]) for s in DEPLOYMENTS if s.cron]
    assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
    assert [s.name for s in DEPLOYMENTS if s.cron][:3] == ["customers", "vendors", "items"]


def test_serve_table_matches_prefect_yaml():
    found = yaml_deployments()
    assert [s.name for s in DEPLOYMENTS] == list(found)
    for spec in DEPLOYMENTS:
        d = found[spec.name]
        assert spec.entrypoint == d["entrypoint"]
        assert list(spec.tags) == d["tags"]
        assert spec.description == d["description"], spec.name
        assert spec.parameters == d.get("parameters", {})
        expected = [{"cron": spec.cron, "timezone": TIMEZONE}] if spec.cron else []
        assert (d.get("schedules") or []) == expected, spec.name
    assert prefect_yaml()["definitions"]["one_at_a_time"] == ONE_AT_A_TIME


def test_served_deployments_carry_the_table():
    built = {d.name: d for d in build_deployments(paused=True)}
    assert set(built) == {s.name for s in DEPLOYMENTS}
    for spec in DEPLOYMENTS:
        d = built[spec.name]
        assert d.concurrency_limit == 1
        assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        assert d.paused is True
        assert d.entrypoint == spec.module_path + "." + spec.entrypoint.split(":")[1]
        crons = [(s.schedule.cron, s.schedule.timezone) for s in d.schedules or []]
        assert crons == ([(spec.cron, TIMEZONE)] if spec.cron else [])
        assert d.description == spec.description
        assert form_problems(d._parameter_openapi_schema.model_dump_for_openapi()) == []


def test_later_modules_are_deployed_once_their_flows_exist():
    """Transactions and deal-triggers catch-up join prefect.yaml when their flows land."""
    entrypoints = {d["entrypoint"].split(":")[0] for d in prefect_yaml()["deployments"]}
    for name, path in LATER.items():
        if (ROOT / path).exists():
            assert path in entrypoints, f"{path} exists: add the {name} deployment"


# ------------------------------------------------------------------ the UI's run forms
def form_problems(schema: dict) -> list[str]:
    """What keeps the UI's run form from guiding: a parameter without a description, or
    without a type (the form's "Property is type None")."""
    problems = []
    for name, prop in schema.get("properties", {}).items():
        if not (prop.get("description") or "").strip():
            problems.append(f"{name}: no description")
        types = [prop.get("type")] + [p.get("type") for p in prop.get("anyOf", [])]
        if not [t for t in types if t and t != "null"]:
            problems.append(f"{name}: no type")
    return problems


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.name)
def test_every_parameter_of_every_form_has_a_type_and_a_description(spec):
    """Both ways Prefect builds a form: from the loaded flow (`crmbooks up`) and from the
    source (`prefect deploy`, which does not import the flow)."""
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    loaded = spec.load_flow().parameters.model_dump_for_openapi()
    assert form_problems(loaded) == []
    from_source = parameter_schema_from_entrypoint(spec.entrypoint).model_dump_for_openapi()
    assert from_source["properties"] == loaded["properties"]
    for name, prop in loaded["properties"].items():
        if name in ("dry_run", "exclusive"):
            assert prop["type"] == "boolean"  # a switch
        if name == "org_id":
            assert prop["anyOf"] == [{"type": "string"}, {"type": "null"}]
            assert "primary" in prop["description"]


def choices(schema: dict, name: str) -> list[str]:
    """The drop-down of a parameter: its enum, inside a list or next to null."""
    prop = schema["properties"][name]
    for candidate in (prop, prop.get("items", {}), *prop.get("anyOf", [])):
        if "enum" in candidate:
            return candidate["enum"]
        if "enum" in candidate.get("items", {}):
            return candidate["items"]["enum"]
    raise AssertionError(f"{name} offers no choice: {prop}")


def test_choices_are_drop_downs_that_match_what_the_flows_accept():
    from crmbooks.operations import FETCH_KINDS, LOOKUPS, RETRY_MODULES
    from crmbooks.settings import MODULES
    from flows.admin import edit_settings, linked_records
    from flows.operations import MODULE_ORDER, sync_now
    from flows.records import fetch_one, import_from_crm, retry_failed_records

    def schema(flow):
        return flow.parameters.model_dump_for_openapi()

    assert choices(schema(sync_now), "modules") == ["all", *MODULE_ORDER]
    assert choices(schema(retry_failed_records), "module") == list(RETRY_MODULES)
    assert choices(schema(edit_settings), "module") == list(MODULES)
    assert choices(schema(fetch_one), "kind") == list(FETCH_KINDS)
    assert choices(schema(import_from_crm), "where") == list(LOOKUPS)
    assert choices(schema(linked_records), "what") == ["customers", "vendors"]
    keys = schema(retry_failed_records)["properties"]["record_keys"]
    assert {"type": "array", "items": {"type": "string"}} in keys["anyOf"]
    assert keys["examples"] and all(isinstance(k, str) for k in keys["examples"][0])


def test_a_choice_outside_the_drop_down_is_refused_before_the_flow_runs():
    """The types are enforced, not only shown: a module the form does not offer fails the
    call with a message naming the allowed ones, and the flow body never runs."""
    from prefect.exceptions import ParameterTypeError

    from flows.records import retry_failed_records

    with pytest.raises(ParameterTypeError, match="customers.*vendors"):
        retry_failed_records.validate_parameters({"module": "customer"})


def test_tags_group_syncs_operator_actions_settings_and_destructive_ones_apart():
    from deployments.serve import GROUPS

    groups: dict[str, set[str]] = {g: set() for g in GROUPS}
    for spec in DEPLOYMENTS:
        assert len([t for t in spec.tags if t in GROUPS]) == 1, spec.name
        groups[spec.group].add(spec.name)
        assert spec.description.strip(), spec.name
    assert groups["sync"] == {s.name for s in DEPLOYMENTS if s.cron} | {"on-demand"}
    assert groups["operator"] == {"retry", "fetch-one", "import"}
    assert groups["destructive"] == {"disable"}
    assert groups["admin"] == {"pause", "resume", "edit", "enable", "linked"}
    assert "DESTRUCTIVE" in next(s for s in DEPLOYMENTS if s.name == "disable").description


def test_sync_now_order_matches_the_cli():
    from crmbooks.app.cli.common import MODULE_ORDER
    from flows.operations import MODULE_ORDER as FLOW_ORDER
    from flows.operations import wanted_modules

    assert FLOW_ORDER == MODULE_ORDER
    assert wanted_modules(["all"]) == list(MODULE_ORDER)
    assert wanted_modules(["items", "Customers"]) == ["customers", "items"]
    assert MODULE_ORDER == ("customers", "vendors", "items", "transactions", "deals")
    # the deal triggers answer to the names their flow and deployment use too
    for name in ("deals", "deal-triggers", "Deal_Triggers", "deal triggers", "triggers"):
        assert wanted_modules([name, "transactions"]) == [
            "transactions", "deals"]
    with pytest.raises(ValueError, match="unknown module 'invoices'.*customers, vendors, "
                                         "items, transactions, deals.*deal-triggers"):
        wanted_modules(["invoices"])


# ------------------------------------------------------------------ against the harness
@pytest.fixture
def harness_url(prefect_harness) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _read_deployments(tag: str = TAG) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[tag])))
        flows = {f.id: f.name for f in client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in found}


def test_prefect_deploy_all_registers_schedules_and_limits(harness_url, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=harness_url, PREFECT_HOME=str(tmp_path / "prefect"),
               DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    before = (ROOT / "prefect.yaml").read_text()
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (ROOT / "prefect.yaml").read_text() == before  # deploy must not rewrite it
    found = _read_deployments()
    expected = {f"{s.load_flow().name}/{s.name}": s for s in DEPLOYMENTS}
    assert set(expected) <= set(found)
    for full_name, spec in expected.items():
        d = found[full_name]
        assert d.work_pool_name == WORK_POOL
        assert d.global_concurrency_limit.limit == 1
        assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        assert sorted(d.tags) == sorted(spec.tags)
        crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules]
        assert crons == ([(spec.cron, TIMEZONE, True)] if spec.cron else []), full_name
        assert d.description == spec.description, full_name
        assert form_problems(d.parameter_openapi_schema) == [], full_name
        if spec.group in ("sync", "operator"):
            assert d.parameter_openapi_schema["properties"]["dry_run"]["type"] == "boolean"


def test_pause_and_resume_reach_the_schedules(harness_url, tmp_path, monkeypatch):
    from crmbooks.schedules import set_schedules_paused

    for deployment in build_deployments():
        deployment.apply()
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", harness_url)
    message = set_schedules_paused(True)
    assert message.startswith(f"Paused the schedules of {len(DEPLOYMENTS)} deployment(s)"), \
        message
    assert all(d.paused for d in _read_deployments().values())
    message = set_schedules_paused(False)
    assert message.startswith("Resumed"), message
    assert not any(d.paused for d in _read_deployments().values())


def test_pause_without_a_server_changes_nothing_and_says_so(tmp_path, monkeypatch):
    from crmbooks.schedules import set_schedules_paused

    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    assert "No Prefect server answers" in set_schedules_paused(True)


@pytest.fixture
def connected_store(emu_reset, tmp_path, monkeypatch):
    """crmbooks connected to the session emulator (as `crmbooks connect` does), Books unpaced."""
    import crmbooks.runtime
    from crmbooks.connect import connect_to_emulator
    from crmbooks.runtime import reset_runtime_cache

    config = emu_reset.emu.config
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{tmp_path / 'crmbooks.db'}")
    monkeypatch.setenv("CRMBOOKS_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", config.refresh_token)
    built = crmbooks.runtime.config_from_store
    monkeypatch.setattr(crmbooks.runtime, "config_from_store", lambda *a, **k: built(
        *a, **k).model_copy(update={"books_requests_per_minute": 100_000}))
    yield connect_to_emulator(emu_reset)
    reset_runtime_cache()


def test_sync_now_runs_the_chosen_modules_in_dependency_order(prefect_harness,
                                                              connected_store):
    from flows.operations import sync_now

    state = sync_now(modules=["deals", "vendors", "transactions", "customers"], dry_run=True,
                     return_state=True)
    # Transactions and deal triggers are off on a new connection: skipped with the reason,
    # which is no failure of the run.
    assert state.is_completed(), state.message
    results = state.result()
    assert list(results) == ["customers", "vendors", "transactions", "deals"]
    assert [r["state"] for r in results.values()] == ["completed", "completed", "skipped",
                                                      "skipped"]
    assert "configure transactions --enable" in results["transactions"]["reason"]
    assert "configure deals" in results["deals"]["reason"]
    assert "skipped, turned off: transactions" in state.message
    runs = connected_store.list_runs()
    assert sorted(r.module for r in runs) == ["customers", "vendors"]
    assert all(r.dry_run for r in runs)


def test_sync_now_refuses_while_paused(prefect_harness, connected_store):
    from flows.operations import sync_now

    connected_store.save_connection(connected_store.connection().name, paused=True)
    state = sync_now(return_state=True)
    assert state.is_failed()
    assert "paused" in state.message
    assert connected_store.list_runs() == []


def test_cli_pause_resume_disable_enable_drive_the_schedules(harness_url, connected_store,
                                                             monkeypatch):
    """The schedules follow the flags: paused while paused or disabled."""
    from typer.testing import CliRunner

    from crmbooks.app.cli import app

    for deployment in build_deployments():
        deployment.apply()
    monkeypatch.setenv("PREFECT_API_URL", harness_url)
    runner = CliRunner()

    def step(command: str, paused: bool) -> None:
        result = runner.invoke(app, [command])
        assert result.exit_code == 0, result.output
        assert {d.paused for d in _read_deployments().values()} == {paused}, result.output

    step("pause", True)
    step("disable", True)
    step("resume", True)  # still disabled
    step("enable", False)


# ----------------------------------------------------------------------------- crmbooks up
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0
    except OSError:
        return True


def _wait(condition, deadline: float, what: str, every: float = 0.25):
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_crmbooks_up_serves_runs_and_stops_what_it_started(tmp_path):
    """Start `crmbooks up` (real server, emulators), run sync-customers, Ctrl-C, all gone.

    Expected about 20-30 s on an idle 2-vCPU machine (a server starts in about 7 s there);
    the bounds below are generous because a loaded machine is several times slower (measured
    with a load average of 15 on 2 vCPUs: server 92 s, run 43 s, 163 s in all). Marked `slow`
    so that a
    quick local loop can leave it out (`-m "not slow"`); the default suite and CI run it.
    """
    port, home = free_port(), tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "CRMBOOKS_"))}
    env.update(CRMBOOKS_HOME=str(home), PREFECT_RUNNER_POLL_FREQUENCY="1",
               PYTHONUNBUFFERED="1", COLUMNS="200")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmbooks.app.cli", "up", "--port", str(port), "--emulators-port",
         "0", "--accounts", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    api = f"http://127.0.0.1:{port}/api"
    server_pid = None
    try:
        deadline = started + 180
        _wait(lambda: "Prefect UI:" in "".join(lines) or proc.poll() is not None, deadline,
              "the UI address")
        assert proc.poll() is None, "".join(lines)
        assert "Event receiver: http://127.0.0.1:" in "".join(lines)  # the webhook receiver
        assert "Books webhooks registered with the emulator" in "".join(lines)
        ready_s = time.monotonic() - started
        marker = json.loads((home / "up" / "up.json").read_text())
        server_pid = marker["server_pid"]
        assert marker["api_url"] == api and server_pid
        assert httpx.get(f"{api}/health", timeout=5).status_code == 200
        # A command run meanwhile finds `up`'s server through the Prefect home: none started.
        from deployments.prefect_server import home_server, read_record

        assert read_record(home / "prefect")["owner"] == "up"
        assert home_server(home / "prefect") == (api, "up")
        names = {f"{s.load_flow().name}/{s.name}" for s in DEPLOYMENTS}

        def registered():
            found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
            flows = {f["id"]: f["name"] for f in
                     httpx.post(f"{api}/flows/filter", json={}, timeout=5).json()}
            return names <= {f"{flows.get(d['flow_id'])}/{d['name']}" for d in found}

        _wait(registered, time.monotonic() + 60, "the deployments")
        deployment = httpx.get(f"{api}/deployments/name/sync-customers/customers",
                               timeout=5).json()
        assert deployment["paused"] is False
        asked = time.monotonic()

        def created():
            # A freshly started server may answer 503 while its services settle; Prefect's
            # own client retries that, and so does this raw call (bounded).
            answer = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                                json={}, timeout=5)
            if answer.status_code == 503:
                return None
            assert answer.status_code == 201, (answer.status_code, answer.text)
            return answer.json()

        run = _wait(created, time.monotonic() + 60, "the run to be created", every=1.0)

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
            return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED",
                                              "CANCELLED"} else None

        state = _wait(finished, time.monotonic() + 120, "the sync-customers run", every=0.5)
        run_s = time.monotonic() - asked
        assert state["type"] == "COMPLETED", (state, "".join(lines)[-3000:])

        proc.send_signal(signal.SIGINT)
        # A guard, not a measure: under the whole suite's load its stop took 40-50 s.
        assert proc.wait(timeout=120) == 0, "".join(lines)[-3000:]
        assert not _alive(server_pid), "the Prefect server outlived `crmbooks up`"
        reader.join(timeout=5)
        output = "".join(lines)
        assert "All deployments have been paused" in output  # pause_on_shutdown
        assert "Stopped." in output
        assert not (home / "up" / "up.json").exists()
        assert not (home / "prefect" / "server.json").exists()
        healthy = re.search(r"healthy after ([0-9.]+) s", output)
        print(f"\nup: server healthy after {healthy and healthy.group(1)} s, UI ready in "
              f"{ready_s:.1f} s, sync-customers run (asked → completed) {run_s:.1f} s, "
              f"total {time.monotonic() - started:.1f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if server_pid and _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
