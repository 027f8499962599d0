"""`crmbooks demo`, the README's first command, end to end on a few records: it syncs every
module in dependency order at the pace of the emulators it starts (no 429, no minute-long
waits) with transactions and deal triggers turned on, shows a deal's quote on the deal and its
account in the CRM and a customer's Books receivables on its CRM account, tells in words what
each step did and why records were skipped, and ends with the commands to try next."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.app.cli.demo import DEMO_BOOKS_LIMIT, reason_of
from crmbooks.runtime import config_from_store, open_store, reset_runtime_cache


@pytest.fixture
def demo_home(tmp_path, monkeypatch):
    """The demo moves CRMBOOKS_HOME (and sets the secrets): put them back after the test."""
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    for name in ("CRMBOOKS_CLIENT_SECRET", "CRMBOOKS_REFRESH_TOKEN"):
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("CRMBOOKS_DATABASE_URL", raising=False)
    reset_runtime_cache()
    yield tmp_path / "home"
    reset_runtime_cache()


@pytest.fixture
def demo_emulators(monkeypatch):
    """The emulators the demo starts, kept to read what it left on them (they are stopped,
    their records stay in memory)."""
    import emulators

    started = []
    server_class = emulators.EmulatorServer

    class Kept(server_class):
        def __enter__(self):
            started.append(self)
            return super().__enter__()

    monkeypatch.setattr(emulators, "EmulatorServer", Kept)
    return started


def ref(lookup) -> str | None:
    """The id a stored CRM lookup names (the emulator keeps the id, the API shows {"id"})."""
    return lookup.get("id") if isinstance(lookup, dict) else lookup


def test_the_demo_syncs_tells_what_it_did_and_what_to_try_next(demo_home, demo_emulators):
    result = CliRunner().invoke(app, ["demo", "--accounts", "4"], terminal_width=100)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    # (a 429 said as a word: run ids hold digits too)
    assert "Traceback" not in text and not re.search(r"\b429\b", text)
    assert f"Books allows {DEMO_BOOKS_LIMIT} requests a minute here" in text
    assert "(customers, vendors, items, transactions, deals)" in text
    for module in ("customers", "vendors", "items"):
        assert f"{module}: " in text and "created and" in text
    assert "skipped: " in text and "duplicates: skip keeps it" in text  # a reason, in words
    assert "Transactions and deal triggers on (off on a new connection)" in text
    assert "--create-stage \"Proposal/Price Quote\"" in text and "--item " in text
    assert "reached Proposal/Price Quote, so Books has its draft quote EST-" in text
    assert "is in the Quotes list of the deal and the Quotes list of the account" in text
    assert "Books_Outstanding__c (outstanding receivables) is 0.00 before" in text
    assert "Books_Outstanding__c (outstanding receivables) 1,250.50, was 0.00" in text
    assert "is in the account's Invoices list" in text
    for command in ("crmbooks up", "crmbooks history", "crmbooks retry"):
        assert command in text

    # What the demo says is what the emulators hold: one deal, its quote in Books and in the
    # CRM on the deal and its account, the invoice's receivables on that account.
    [server] = demo_emulators
    crm, books = server.emu.crm, server.emu.books.org()
    [deal] = crm.records("Deals").values()
    assert deal["Stage"] == "Proposal/Price Quote"
    [estimate] = [e for e in books.records["estimates"].values()
                  if e.get("zcrm_potential_id") == deal["id"]]
    [quote] = [q for q in crm.records("Quotes").values() if ref(q["Deal_Name"]) == deal["id"]]
    assert quote["Books_Id__c"] == estimate["estimate_id"]
    account = crm.records("Accounts")[ref(deal["Account_Name"])]
    assert ref(quote["Account_Name"]) == account["id"]
    assert Decimal(str(account["Books_Outstanding__c"])) == Decimal("1250.50")

    store = open_store()  # the demo's own home, which it left in CRMBOOKS_HOME
    assert config_from_store(store).books_requests_per_minute == DEMO_BOOKS_LIMIT
    runs = store.list_runs(limit=50)
    assert {run.state for run in runs} == {"completed"}
    modules = Counter(run.module for run in runs)
    # sync all, then customers and transactions; the trigger run ends with a transactions run
    # for the quote it made
    assert (modules["customers"], modules["vendors"], modules["items"], modules["deals"],
            modules["transactions"]) == (2, 1, 1, 1, 3)


def test_a_skip_reason_is_counted_without_the_record_it_names():
    assert reason_of("Books already has 1 record(s) named 'Acme Ltd'; duplicates: skip "
                     "keeps it") == ("Books already has 1 record(s) named …; duplicates: "
                                     "skip keeps it")
    assert reason_of("its parent record 5725767000000100001 is not synced (yet)") == \
        "its parent record … is not synced (yet)"
    assert reason_of(None) == "no reason given"
