"""Alerts end to end: `crmbooks alerts add --webhook` against a Prefect server that runs its
automations, a customers sync with a failed record, and the alert arriving at a local HTTP
receiver with the run's name, its reason and its link in the UI.

The session's Prefect harness runs no automations (tests/conftest.py), so this module starts
a server of its own (the background server crmbooks starts for a Prefect home, with triggers
on, as a user's is) and points the CLI at it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app

pytestmark = pytest.mark.slow

LONG_SITE = "https://example.com/" + "a" * 220  # the CRM takes it, Books stops at 200


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory):
    """A Prefect server of this module's own, automations on; its API URL."""
    from deployments.prefect_server import read_record, start_background, stop_pid

    home = tmp_path_factory.mktemp("prefect-alerts")
    url = start_background(home)
    yield url
    stop_pid(read_record(home)["pid"])


@pytest.fixture
def on_alert_server(alert_server, monkeypatch):
    """The CLI and this process's flow runs report to `alert_server`.

    Prefect keeps one events worker per process for every running server alike, bound to the
    API it was made for: it is drained (stopped) on the way in and on the way out, so that this
    test's events reach the alert server, and no later test's go to it once it is stopped
    (the session's harness would otherwise wait on them forever when it drains at its end)."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    EventsWorker.drain_all(timeout=30)
    monkeypatch.setenv("PREFECT_API_URL", alert_server)
    with temporary_settings(updates={PREFECT_API_URL: alert_server}):
        try:
            yield alert_server
        finally:
            EventsWorker.drain_all(timeout=30)


class Receiver(HTTPServer):
    """A local webhook: keeps every JSON body posted to it and says when one came."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                size = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(size) or b"{}"))
                receiver.arrived.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def alerts(*args: str):
    return CliRunner().invoke(app, ["alerts", *args])


def listed() -> list[dict]:
    result = alerts("list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["alerts"]


def test_a_run_with_a_failed_record_alerts_a_local_webhook(store, crm_http, on_alert_server,
                                                           receiver, emu_reset, monkeypatch):
    org = emu_reset.emu.config.books_org_ids[0]
    hook = f"http://127.0.0.1:{receiver.server_port}/hook"
    # Bad requests first: one sentence, exit 2, and nothing on the server.
    taken = alerts("add", "--webhook", "not a url")
    assert taken.exit_code == 2 and "not an http(s) URL" in taken.output
    assert listed() == []

    # An email alert (Apprise's mailto inside Prefect's Apprise-backed block) is listed as
    # one; removed before any run, as its mail server leads nowhere.
    monkeypatch.setenv("CRMBOOKS_SMTP_PASSWORD", "not-a-real-one")
    made = alerts("add", "--email", "ops@example.com", "--smtp", "mail.example.com:465",
                  "--smtp-user", "bot@example.com", "--json")
    assert made.exit_code == 0, made.output
    assert listed() == [{"name": "email", "kind": "email", "enabled": True,
                         "target": "email to ops@example.com via mail.example.com"}]
    assert alerts("remove", "email").exit_code == 0
    assert listed() == []

    added = alerts("add", "--webhook", hook, "--name", "ops-hook")
    assert added.exit_code == 0, added.output
    assert "ops-hook" in added.output and f"127.0.0.1:{receiver.server_port}" in added.output
    assert listed() == [{"name": "ops-hook", "kind": "webhook",
                         "target": f"http://127.0.0.1:{receiver.server_port}/…",
                         "enabled": True}]
    again = alerts("add", "--webhook", hook, "--name", "ops-hook")
    assert again.exit_code == 2 and "exists already" in again.output

    answer = crm_http.post("/crm/v8/Accounts", json={"data": [
        {"Account_Name": "Very Long Website Ltd", "Website": LONG_SITE}]})
    key = f"crm/Accounts/{answer.json()['data'][0]['details']['id']}"
    store.save_settings("customers", {"crm_module": "accounts", "scope": "fetch",
                                      "duplicates": "skip"})
    synced = CliRunner().invoke(app, ["sync", "customers"])
    assert synced.exit_code == 1, synced.output

    assert receiver.arrived.wait(90), "no alert arrived"
    [body] = receiver.bodies
    text = body["text"]
    assert f"customers · {org} · manual" in text and "Failed" in body["subject"]
    assert "1 record(s) failed" in text and key in text and "TOO_LONG" in text
    assert "Books: " in text  # the counts, in words
    ui = on_alert_server.removesuffix("/api")
    assert f"{ui}/runs/flow-run/" in text  # the run's page in the UI

    assert alerts("remove", "ops-hook").exit_code == 0
    assert listed() == []
    gone = alerts("remove", "ops-hook")
    assert gone.exit_code == 2 and "no alert named 'ops-hook'" in gone.output
