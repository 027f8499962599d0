"""Style rule 11: secrets live at the edge and never reach anything a run leaves behind.

A full sync runs with real-looking credentials (every module, a record that fails, and a run
that fails on auth because the refresh token was revoked). Then everything it produced is
collected — every log record at DEBUG (ours, Prefect's, httpx's) and the logs Prefect stored,
the artifacts, the flow and task runs' parameters and state messages, every row of every table
of the state database, every file under the test's folder (metadata cache, SQLite file),
Prefect's persisted results, and the exceptions — and none may hold the client secret, the
refresh token or any access token the emulator issued.
"""

from __future__ import annotations

import logging
import secrets
import time
import traceback
from pathlib import Path

import httpx
import pytest
from sqlmodel import SQLModel, select

from crmbooks.runtime import reset_runtime_cache
from flows.customers import sync_customers
from flows.items import sync_items
from flows.vendors import sync_vendors
from support.customers import next_second, unpaced

# Shaped like Zoho's own: "1000." and hex (client secret 42 hex, refresh token two parts).
CLIENT_SECRET = secrets.token_hex(21)
REFRESH_TOKEN = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "httpx", "httpcore",
           "crmbooks", "uvicorn")


@pytest.fixture
def real_looking(emu_reset, monkeypatch, request):
    """Connected with realistic secrets the emulator accepts; restored afterwards."""
    emu = emu_reset.emu
    before = (emu.config.client_secret, emu.config.refresh_token)
    httpx.post(f"{emu_reset.base_url}/__emulator__/tokens",
               json={"refresh_token": REFRESH_TOKEN}).raise_for_status()
    emu.config.client_secret, emu.config.refresh_token = CLIENT_SECRET, REFRESH_TOKEN
    unpaced(monkeypatch)
    try:
        yield request.getfixturevalue("connected")  # connects with the emulator's config
    finally:
        emu.config.client_secret, emu.config.refresh_token = before
        emu.tokens.revoke(REFRESH_TOKEN)
        reset_runtime_cache()


class Collect(logging.Handler):
    """Keeps the text of every record it sees, as it is when it gets here: a redacting
    filter further up may rewrite the record later, and a secret must not depend on that."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def addFilter(self, filter) -> None:  # noqa: N802 - logging's name
        """`install_redaction` filters every handler it finds: not this one, which must see
        what a handler added later (a user's, a log shipper's) would see."""

    def emit(self, record: logging.LogRecord) -> None:
        self.texts += _log_texts(record)


@pytest.fixture
def every_log_record():
    """Every log record at DEBUG, from our loggers, Prefect's, httpx's and the root."""
    handler = Collect()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield handler.texts
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def task_run_events(monkeypatch) -> list[str]:
    """Every task-run state event the flows send to the Prefect API, as JSON: what the API's
    task runs are made of (the tests' API keeps no task runs of its own)."""
    import prefect.task_engine as engine

    sent: list[str] = []
    emit = engine.emit_task_run_state_change_event

    def recording(*args, **kwargs):
        event = emit(*args, **kwargs)
        if event is not None:
            sent.append(event.model_dump_json())
        return event

    monkeypatch.setattr(engine, "emit_task_run_state_change_event", recording)
    return sent


def test_no_secret_reaches_logs_artifacts_runs_state_or_errors(real_looking, emu_reset,
                                                                every_log_record, capfd,
                                                                tmp_path, logs_to_api,
                                                                task_run_events):
    started = time.time()
    states = [flow(return_state=True) for flow in (sync_customers, sync_vendors, sync_items)]
    assert all(s.is_completed() for s in states), [s.message for s in states]

    # A record that fails: a CRM user gives an account notes longer than Books takes.
    next_second()
    account_id = next(iter(emu_reset.emu.crm.records("Accounts")))
    _crm_user_put(emu_reset, "Accounts", {"id": account_id, "Description": "Q" * 1200})
    states.append(sync_customers(return_state=True))
    assert states[-1].is_failed() and "failed" in states[-1].message

    # A run that fails on auth: the refresh token is revoked (with its access tokens).
    emu = emu_reset.emu
    issued = [a for a, t in emu.tokens.access.items() if t.refresh_token == REFRESH_TOKEN]
    assert issued
    httpx.post(f"{emu_reset.base_url}/__emulator__/tokens/revoke",
               json={"token": REFRESH_TOKEN}).raise_for_status()
    states.append(sync_vendors(return_state=True))
    assert states[-1].is_failed()
    error = states[-1].result(raise_on_failure=False)
    assert "refresh token was rejected" in str(error)

    found = {
        "log records": every_log_record,
        "console": [*capfd.readouterr()],
        "exceptions": [str(error), repr(error), *traceback.format_exception(error)],
        **_prefect_texts(states),
        "task runs (their state events)": task_run_events,
        "state database": _database_rows(real_looking.engine),
        "files under the test folder": _files(tmp_path),
        "persisted results": _files(Path(_results_folder()), since=started),
    }
    for where, texts in found.items():
        if where not in ("console", "files under the test folder"):
            assert texts, f"nothing collected from {where}"
    for label, value in (("client secret", CLIENT_SECRET), ("refresh token", REFRESH_TOKEN),
                         *(("access token", a) for a in issued)):
        leaks = {where: [t[:300] for t in texts if value in t]
                 for where, texts in found.items()}
        assert not any(leaks.values()), f"the {label} leaked: {leaks}"


def _crm_user_put(server, module: str, values: dict) -> None:
    """Change a CRM record over the API with the same credentials, as a CRM user would."""
    token = httpx.post(f"{server.base_url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": server.emu.config.client_id,
        "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}).json()["access_token"]
    response = httpx.put(f"{server.base_url}/crm/v8/{module}/{values['id']}",
                         json={"data": [values]},
                         headers={"Authorization": f"Zoho-oauthtoken {token}"})
    assert response.status_code == 200, response.text


def _log_texts(record: logging.LogRecord) -> list[str]:
    out = [record.getMessage()]
    if record.exc_info:
        out.append("".join(traceback.format_exception(*record.exc_info)))
    return out + [str(v) for v in vars(record).values() if isinstance(v, (str, dict, tuple))]


def _prefect_texts(states) -> dict[str, list[str]]:
    """Logs, artifacts, parameters and state messages of the flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    ids = [s.state_details.flow_run_id for s in states]
    runs_filter = FlowRunFilter(id=FlowRunFilterId(any_=ids))
    with get_client(sync_client=True) as client:
        logs, offset = [], 0
        while batch := client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                                        limit=200, offset=offset):
            logs += batch
            offset += len(batch)
        runs = client.read_flow_runs(flow_run_filter=runs_filter)
        history = [st for r in runs for st in client.read_flow_run_states(r.id)]
        artifacts = client.read_artifacts(flow_run_filter=runs_filter)
    return {
        "prefect logs": [log.message for log in logs],
        "flow runs": [f"{r.parameters} {r.state.message if r.state else ''}" for r in runs]
        + [f"{st.name} {st.message}" for st in history],
        "artifacts": [f"{a.key} {a.description} {a.data}" for a in artifacts],
    }


def _database_rows(engine) -> list[str]:
    rows = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows += [str(tuple(row)) for row in connection.execute(select(table))]
    return rows


def _files(folder: Path, since: float = 0.0) -> list[str]:
    if not folder.exists():
        return []
    return [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*")
            if p.is_file() and p.stat().st_mtime >= since]


def _results_folder() -> str:
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH

    return str(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value())
