"""`crmbooks demo`, the README's first command, end to end on a few records: it syncs every
module twice at the pace of the emulators it starts (no 429, no minute-long waits), tells in
words what each module did and why records were skipped, says what it left out, and ends
with the commands to try next."""

from __future__ import annotations

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


def test_the_demo_syncs_tells_what_it_did_and_what_to_try_next(demo_home):
    result = CliRunner().invoke(app, ["demo", "--accounts", "4"], terminal_width=100)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "Traceback" not in text and "429" not in text
    assert f"Books allows {DEMO_BOOKS_LIMIT} requests a minute here" in text
    for module in ("customers", "vendors", "items"):
        assert f"{module}: " in text and "created and" in text
    assert "skipped: " in text and "duplicates: skip keeps it" in text  # a reason, in words
    assert "Not in the demo: transactions and deal triggers" in text
    for command in ("crmbooks up", "crmbooks history", "crmbooks retry"):
        assert command in text
    store = open_store()  # the demo's own home, which it left in CRMBOOKS_HOME
    assert config_from_store(store).books_requests_per_minute == DEMO_BOOKS_LIMIT
    runs = store.list_runs(limit=10)
    assert len(runs) == 6 and {run.state for run in runs} == {"completed"}


def test_a_skip_reason_is_counted_without_the_record_it_names():
    assert reason_of("Books already has 1 record(s) named 'Acme Ltd'; duplicates: skip "
                     "keeps it") == ("Books already has 1 record(s) named …; duplicates: "
                                     "skip keeps it")
    assert reason_of("its parent record 5725767000000100001 is not synced (yet)") == \
        "its parent record … is not synced (yet)"
    assert reason_of(None) == "no reason given"
