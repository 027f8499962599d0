"""The receiver's events are kept until a run has handled them: a run that fails (the flow
could not start, the Prefect API is unreachable) leaves them pending, retried with a growing
delay, also by the next receiver after a stop; `crmbooks status` shows what is pending or
failed. The workers are stand-ins here (no emulator): what is tested is when they are called.
"""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.app.receiver.server import Receiver
from crmbooks.store import Store
from support.hostile import exchange
from support.receiver import wait_for

PRIMARY = "20099001"
JSON = [("Content-Type", "application/json")]


@pytest.fixture
def store(tmp_path, monkeypatch):
    from crmbooks.runtime import reset_runtime_cache

    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{tmp_path / 'crmbooks.db'}")
    reset_runtime_cache()
    store = Store.open(org_id=PRIMARY)
    store.save_connection(books_org_id=PRIMARY)
    yield store
    reset_runtime_cache()


def notify(receiver, *ids: str) -> int:
    body = json.dumps({"module": "Deals", "ids": list(ids), "operation": "update",
                       "token": receiver.keys["crm_token"]}).encode()
    return exchange(receiver.url, "POST", "/crm/notify", JSON, body)[0]


class Flaky:
    """A deal-triggers stand-in that fails its first `failures` runs as an unreachable
    Prefect API would, then records what it runs."""

    def __init__(self, failures: int):
        self.failures, self.calls, self.ran = failures, 0, []

    def __call__(self, ids):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("Failed to reach API at http://127.0.0.1:4200/api/")
        self.ran.append(sorted(ids))


def test_a_failed_run_leaves_its_events_pending_and_they_are_retried_until_they_run(store):
    flaky = Flaky(failures=2)
    receiver = Receiver(watch=False, debounce_s=0.05, handler=flaky, poll_s=0.1,
                        retry_first_s=0.2).start()
    try:
        assert notify(receiver, "11", "12") == 200
        # done is marked after the run returns: wait for that, not for the run
        wait_for(lambda: [event.state for event in store.inbox()] == ["done", "done"])
        assert flaky.calls == 3 and flaky.ran == [["11", "12"]]
        [one, two] = store.inbox()
        assert one.attempts == two.attempts == 2
    finally:
        receiver.stop()


def test_events_a_stopped_receiver_did_not_run_are_run_by_the_next_one(store):
    blocked, release = threading.Event(), threading.Event()

    def stuck(ids):  # a run that never gets through before the stop
        blocked.set()
        release.wait(30)
        raise RuntimeError("Server process did not start")

    receiver = Receiver(watch=False, debounce_s=0.05, handler=stuck).start()
    try:
        assert notify(receiver, "21") == 200
        assert blocked.wait(30)
        assert notify(receiver, "22") == 200  # accepted while the run is stuck
    finally:
        release.set()
        receiver.stop()
    assert store.inbox_summary()["pending"] == 2

    ran = []
    receiver = Receiver(watch=False, debounce_s=0.05, handler=ran.append,
                        retry_first_s=0.1, poll_s=0.1).start()
    try:
        wait_for(lambda: store.inbox_summary()["pending"] == 0)
        assert sorted(i for batch in ran for i in batch) == ["21", "22"]
    finally:
        receiver.stop()


def test_status_shows_pending_and_failed_events(store):
    store.accept_events("deal-triggers", ["31"])
    [event_id] = store.accept_events("transactions", [f"{PRIMARY}|crm|Quotes|32|"], PRIMARY)
    store.fail_inbox([event_id], "RuntimeError: Failed to reach API", max_attempts=1)
    runner = CliRunner()
    said = runner.invoke(app, ["status", "--json"])
    events = json.loads(said.output)["events"]
    assert (events["pending"], events["failed"]) == (1, 1)
    assert events["failed_events"][0]["key"] == f"{PRIMARY}|crm|Quotes|32|"
    said = runner.invoke(app, ["status"])
    assert "Events: 1 pending" in said.output and "1 failed" in said.output
    assert "Failed to reach API" in said.output
