"""Runs that explain themselves in the Prefect UI.

A deployment's run is executed by Prefect's engine (`python -m prefect.engine`), which calls
`run_flow` with the run's logger as `error_logger`. The test does the same in-process, so
what it reads is what the UI shows: the run's name (module · organization · what started
it), a run with a failed record ending Failed with its reason in one log line and no
traceback, and its summary and failures tables among the run's own artifacts, which the UI's
artifacts tab lists above those of its task runs.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import flow_run_logger, run_flow

from crmbooks.sync.lifecycle import RecordsFailed
from flows.customers import sync_customers
from flows.names import started_by
from flows.records import retry_failed_records
from support.customers import crm, unpaced


class Kept(logging.Handler):
    """Keeps every record the run's loggers let through, as the API handler would get it."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def run_logs():
    """The records of the flow-run and task-run loggers during the test, INFO and up."""
    kept = Kept()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(kept)
        lg.setLevel(logging.INFO)
    yield kept.records
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(kept)
        lg.setLevel(level)


def test_a_run_with_a_failed_record_says_so_in_its_name_state_log_and_first_artifacts(
        connected, emu_reset, monkeypatch, run_logs):
    unpaced(monkeypatch)
    store, org = connected, emu_reset.emu.config.books_org_ids[0]
    store.save_settings("customers", {"crm_module": "accounts", "scope": "fetch",
                                      "duplicates": "skip"})
    account = next(iter(crm(emu_reset).values()))
    account["Account_Name"] = "Too Long " + "x" * 220  # the CRM takes it, Books refuses it

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(sync_customers, parameters={"dry_run": False})
        with pytest.raises(RecordsFailed):  # what the engine's process exits on
            run_flow(sync_customers, flow_run=flow_run, error_logger=flow_run_logger(flow_run))
        ended = client.read_flow_run(flow_run.id)
        shown = client._client.post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [str(flow_run.id)]}, "type": {"not_any_": ["result"]}},
        }).json()

    assert ended.name == f"customers · {org} · manual"
    assert ended.state.is_failed()
    assert ended.state.message.startswith("1 record(s) failed")
    [run] = store.list_runs(module="customers", limit=1)
    assert run.state == "completed_with_failures"  # the other records synced

    assert run_logs, "the run logged nothing"
    for record in run_logs:  # no traceback anywhere, every line one line
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
    said = [r.getMessage() for r in run_logs]
    assert not any("unexpected exception" in m for m in said), said
    assert said[-1].startswith("1 record(s) failed") and "then retry" in said[-1]
    counted = [m for m in said  # the counts, in words, once
               if re.fullmatch(r"Books: (\d+ \w+, )*1 failed\. 1 record\(s\) failed: .*", m)]
    assert len(counted) == 1, said

    # The UI's artifacts tab asks for the run's artifacts as here and lists the run's own
    # (those of no task run) first, then those of its task runs under "Task runs".
    own = {a["key"]: a for a in shown if not a["task_run_id"]}
    assert set(own) == {"customers-sync-summary", "customers-sync-failures"}
    assert {a["key"] for a in shown if a["task_run_id"]} == {"customers-push-progress"}
    failures = str(own["customers-sync-failures"]["data"])
    assert account["id"] in failures and "what to do" in failures

    # Fixed at its source and retried: the retry is named so, and the first run no longer
    # shows red: its failures are resolved, which its state and an artifact say.
    account["Account_Name"] = "Short Again Ltd"
    retried = retry_failed_records(module="customers", return_state=True)
    assert retried.is_completed(), retried.message
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(retried.state_details.flow_run_id).name == \
            f"customers · {org} · retry"
        first = client.read_flow_run(flow_run.id)
        marks = client._client.post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [str(flow_run.id)]}, "key": {"any_": ["resolved"]}},
        }).json()
    assert first.state.name == "Resolved" and first.state.is_completed()
    assert f"run {run.id} are resolved" in first.state.message
    assert len(marks) == 1 and run.id in marks[0]["data"]


def test_another_exception_keeps_its_traceback():
    """Only ordinary outcomes lose their traceback: a bug must still show where it is."""
    from flows.outcome_logs import OneLineOutcomes

    def record_of(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            import sys

            return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1,
                                     "Engine execution exited with unexpected exception",
                                     None, sys.exc_info())

    bug = record_of(KeyError("oops"))
    assert OneLineOutcomes().filter(bug) and bug.exc_info is not None
    outcome = record_of(RecordsFailed("2 record(s) failed: fix them, then retry", {}))
    assert OneLineOutcomes().filter(outcome)
    assert outcome.exc_info is None
    assert outcome.getMessage() == "2 record(s) failed: fix them, then retry"


@pytest.mark.parametrize(("parameters", "flow_run", "retry", "said"), [
    ({}, SimpleNamespace(run_count=0, parent_task_run_id=None, auto_scheduled=True), False,
     "schedule"),
    ({}, SimpleNamespace(run_count=0, parent_task_run_id=None, auto_scheduled=False), False,
     "manual"),
    ({"crm_ids": ["1"]}, SimpleNamespace(run_count=0, parent_task_run_id=None,
                                         auto_scheduled=False), False, "event"),
    ({"deal_ids": ["7"]}, None, False, "event"),
    ({}, SimpleNamespace(run_count=0, parent_task_run_id="t", auto_scheduled=False), False,
     "sync now"),
    ({}, SimpleNamespace(run_count=1, parent_task_run_id=None, auto_scheduled=True), False,
     "retry"),
    ({"module": "customers"}, None, True, "retry"),
])
def test_what_started_a_run(parameters, flow_run, retry, said):
    assert started_by(parameters, flow_run, retry) == said
