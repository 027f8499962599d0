"""The CLI's ordinary outcomes, each as one sentence and its documented exit code, never a
traceback: arguments checked before anything starts (no Prefect server, no flow run), a
paused or disabled integration, Zoho or the network failing (exit 4), and the setup errors
of the state database (a folder that does not exist yet, a wrong CRMBOOKS_DATABASE_URL).

The commands here never reach a Prefect flow: `no_prefect` makes starting one fail the test.
"""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app, common
from crmbooks.runtime import open_store, reset_runtime_cache

EXIT_CONFIG, EXIT_PAUSED, EXIT_PROVIDER = 2, 3, 4


@pytest.fixture
def no_prefect(monkeypatch):
    """Running a flow (which starts a Prefect server when none is set) fails the test: these
    outcomes are decided before."""

    def started(*_args, **_kwargs):
        raise AssertionError("a flow was started")

    monkeypatch.setattr(common, "run_module", started)
    for name in ("flows.records.retry_failed_records", "flows.records.fetch_one",
                 "flows.records.import_from_crm"):
        monkeypatch.setattr(name, started)


@pytest.fixture
def connected(home, emu_reset):
    config = emu_reset.emu.config
    result = CliRunner().invoke(app, [
        "connect", "--api-url", emu_reset.base_url, "--accounts-url", emu_reset.base_url,
        "--client-id", config.client_id, "--books-org", config.books_org_ids[0]])
    assert result.exit_code == 0, result.output
    reset_runtime_cache()
    return emu_reset


def one_sentence(result, code: int, *words: str) -> str:
    """The command exited with `code`, printing one "error: …" sentence that holds `words`,
    and no traceback anywhere; returns the sentence on one line."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output and not isinstance(result.exception, AssertionError)
    text = " ".join(output.split())
    assert text.startswith("error: ") and text.count("error:") == 1, output
    for word in words:
        assert word in text, text
    return text


# ------------------------------------------------------------ arguments checked before a run
def test_retry_of_a_misspelt_module_is_refused_before_prefect_starts(connected, no_prefect):
    result = CliRunner().invoke(app, ["retry", "--module", "customer"])
    one_sentence(result, EXIT_CONFIG, "'customer'", "customers")


def test_retry_with_nothing_to_retry_says_so_without_starting_prefect(connected, no_prefect):
    result = CliRunner().invoke(app, ["retry", "--module", "customers"])
    assert result.exit_code == 0, result.output
    assert "Nothing to retry" in result.output and "Traceback" not in result.output


def test_sync_of_an_unknown_organization_exits_2(connected, no_prefect):
    result = CliRunner().invoke(app, ["sync", "--org", "999"])
    one_sentence(result, EXIT_CONFIG, "999 is not connected", "--extra-books-org 999")


def test_sync_before_connect_exits_2(home, no_prefect):
    result = CliRunner().invoke(app, ["sync", "vendors"])
    one_sentence(result, EXIT_CONFIG, "crmbooks connect")


def test_sync_of_an_unknown_module_exits_2(connected, no_prefect):
    one_sentence(CliRunner().invoke(app, ["sync", "vendor"]), EXIT_CONFIG, "vendor")
    # A misspelt module among good ones: nothing runs, and the sentence lists every name
    # `sync` takes, the deal triggers' other names included.
    result = CliRunner().invoke(app, ["sync", "customers", "deal"])
    one_sentence(result, EXIT_CONFIG, "unknown module 'deal'",
                 "customers, vendors, items, transactions, deals", "deal-triggers", "or all")
    assert open_store().list_runs() == []


def test_sync_of_modules_turned_off_says_so_without_starting_prefect(connected, no_prefect):
    """Transactions and deal triggers, off on a new connection: skipped with what turns them
    on, exit 0, and no flow run started for them."""
    result = CliRunner().invoke(app, ["sync", "transactions", "deal-triggers"],
                                terminal_width=120)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "transactions skipped: transactions are off" in text
    assert "run `crmbooks configure transactions --enable`" in text
    assert "deals skipped: deal triggers are off: run `crmbooks configure deals`" in text
    assert "Traceback" not in text and open_store().list_runs() == []


def test_search_import_out_of_range_exits_2(connected, no_prefect):
    name = next(iter(connected.emu.crm.records("Accounts").values()))["Account_Name"]
    result = CliRunner().invoke(app, ["search", name, "--import", "3"])
    one_sentence(result, EXIT_CONFIG, "--import 3 is out of range", "from 1 to 1")


def test_fetch_of_a_name_nobody_has_exits_2(connected, no_prefect):
    result = CliRunner().invoke(app, ["fetch", "customer", "--name", "Nobody Ltd"])
    one_sentence(result, EXIT_CONFIG, "no CRM customer is named 'Nobody Ltd'")


def test_fetch_without_an_id_or_a_name_exits_2(connected, no_prefect):
    one_sentence(CliRunner().invoke(app, ["fetch", "vendor"]), EXIT_CONFIG, "--crm-id")


@pytest.mark.parametrize("flag", ["paused", "disabled"])
def test_a_sync_while_paused_or_disabled_is_one_line_and_exit_3(connected, no_prefect, flag):
    store = open_store()
    store.save_connection(store.connection().name, **{flag: True})
    result = CliRunner().invoke(app, ["sync", "customers"])
    one_sentence(result, EXIT_PAUSED, "resume" if flag == "paused" else "enable")


def test_retry_while_paused_exits_3(connected, no_prefect):
    store = open_store()
    run_id = store.start_run("customers")
    store.add_failures(run_id, "customers", [{"side": "books", "record_key": "crm/Accounts/1",
                                              "message": "too long"}])
    store.save_connection(store.connection().name, paused=True)
    result = CliRunner().invoke(app, ["retry", "--record", "crm/Accounts/1"])
    one_sentence(result, EXIT_PAUSED, "paused", "resume")


# ------------------------------------------------------------- Zoho or the network failing
def test_a_429_storm_exits_4_with_one_sentence(connected, no_prefect, set_faults,
                                               monkeypatch):
    from crmbooks.connectors.http import ZohoHttp

    monkeypatch.setitem(ZohoHttp.__init__.__kwdefaults__, "sleep", lambda _s: None)
    set_faults({"rate_429": 1.0})
    result = CliRunner().invoke(app, ["search", "Acme"])
    one_sentence(result, EXIT_PROVIDER, "429", "try again")


def test_a_refused_connection_exits_4(connected, no_prefect, monkeypatch):
    import socket

    from crmbooks.connectors.http import ZohoHttp

    monkeypatch.setitem(ZohoHttp.__init__.__kwdefaults__, "sleep", lambda _s: None)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = open_store()
    store.save_connection(store.connection().name, crm_api_url=f"http://127.0.0.1:{port}")
    reset_runtime_cache()
    result = CliRunner().invoke(app, ["search", "Acme"])
    one_sentence(result, EXIT_PROVIDER, "try again")


def test_an_unexpected_error_is_one_sentence_unless_debug(home, monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("boom")

    monkeypatch.setattr("crmbooks.runtime.open_store", broken)
    one_sentence(CliRunner().invoke(app, ["history"]), EXIT_CONFIG, "--debug")
    result = CliRunner().invoke(app, ["--debug", "history"])
    assert isinstance(result.exception, KeyError)
    common.CliState.debug = False


# ------------------------------------------------------------------------------ setup errors
def test_a_state_folder_that_does_not_exist_yet_is_created(tmp_path, monkeypatch):
    home = tmp_path / "not" / "there" / "yet"
    monkeypatch.setenv("CRMBOOKS_HOME", str(home))
    monkeypatch.delenv("CRMBOOKS_DATABASE_URL", raising=False)
    reset_runtime_cache()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == EXIT_CONFIG and "Not connected" in result.output, result.output
    assert (home / "crmbooks.db").exists() and "Traceback" not in result.output


def test_a_sqlite_url_in_a_folder_not_made_yet_is_created(tmp_path, monkeypatch):
    database = tmp_path / "state" / "deeper" / "crmbooks.db"
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{database}")
    reset_runtime_cache()
    result = CliRunner().invoke(app, ["history"])
    assert result.exit_code == 0, result.output
    assert database.exists()
    reset_runtime_cache()


@pytest.mark.parametrize("url", [
    "nonsense",
    "postgresql://crmbooks:s3cret-pw@127.0.0.1:1/crmbooks",
    "mysql://crmbooks:s3cret-pw@127.0.0.1:1/crmbooks",
    "sqlite:////proc/no-such-place/crmbooks.db",
], ids=["unparsable", "unreachable", "no-driver", "unwritable"])
def test_a_wrong_database_url_names_the_variable(tmp_path, monkeypatch, url):
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", url)
    reset_runtime_cache()
    for command in (["status"], ["history", "--json"], ["db", "current"]):
        result = CliRunner().invoke(app, command)
        text = one_sentence(result, EXIT_CONFIG, "CRMBOOKS_DATABASE_URL", "set")
        assert "s3cret-pw" not in text
    reset_runtime_cache()


# ---------------------------------------------------------------- Prefect's terminal output
def test_the_terminal_shows_no_run_logs_no_info_and_no_traceback():
    """What reaches the terminal while a command runs flows: warnings of other libraries,
    one line each; Prefect's run logs (with their tracebacks) and INFO lines stay off."""
    from prefect.logging.handlers import PrefectConsoleHandler

    common.quiet_prefect_console()
    [handler] = [h for h in logging.getLogger().handlers
                 if isinstance(h, PrefectConsoleHandler)]
    assert handler.level == logging.WARNING

    def shown(name: str, level: int, exc: bool = False) -> logging.LogRecord | None:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            info = sys.exc_info() if exc else None
        record = logging.LogRecord(name, level, __file__, 1, "message", None, info)
        return record if handler.filter(record) else None

    assert shown("prefect.flow_runs", logging.ERROR, exc=True) is None
    assert shown("prefect.task_runs", logging.ERROR) is None
    assert shown("crmbooks.connectors", logging.WARNING) is None
    assert shown("prefect.client", logging.INFO) is None
    kept = shown("httpx", logging.ERROR, exc=True)
    assert kept is not None and kept.exc_info is None
