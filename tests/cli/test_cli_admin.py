"""CLI: connect, configure, status, history, pause/resume, disable/enable, against the session
emulator, with a fresh CRMBOOKS_HOME per test.

Secrets come from the environment, so no Prefect block is needed; the block path is checked
with `save_secrets` replaced by a recorder.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmbooks import secrets as secrets_module
from crmbooks.app.cli import app
from crmbooks.runtime import open_store

RUN_KEYS = {"module", "run_id", "state", "dry_run", "counts", "api_calls", "failures"}
COUNT_KEYS = {"created", "updated", "deleted", "skipped", "conflicts", "failed"}
FAILURE_KEYS = {"record", "side", "field", "code", "message"}


@pytest.fixture
def runner(monkeypatch):
    """A CliRunner; the console is widened so that table cells are not wrapped mid-sentence."""
    from crmbooks.app.cli import common

    monkeypatch.setattr(common.console, "width", 240)
    return CliRunner()


def connect_args(emulator, *extra: str) -> list[str]:
    config = emulator.emu.config
    return ["connect", "--api-url", emulator.base_url, "--accounts-url", emulator.base_url,
            "--client-id", config.client_id, "--books-org", config.books_org_ids[0], *extra]


@pytest.fixture
def connected(home, runner, emu_reset):
    """Connected to the session emulator, freshly seeded: a map is checked against the
    fields its records show, whatever an earlier test left there."""
    result = runner.invoke(app, connect_args(emu_reset))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def crm_config(emulator):
    """Restore the emulator's CRM edition and currency settings after a test changes them."""
    config = emulator.emu.config
    saved = (config.crm_edition, config.crm_multi_currency, config.crm_currency)
    yield config
    config.crm_edition, config.crm_multi_currency, config.crm_currency = saved


# ------------------------------------------------------------------------------- connect
def test_connect_ok_stores_connection_and_shares_books_org(connected, emulator):
    out = connected.output
    assert "Connected" in out
    assert "Zylker CRM" in out and "professional" in out
    assert "Zylker Books Ltd" in out and "finance@zylker.example" in out
    row = open_store().connection()
    assert row.books_org_id == emulator.emu.config.books_org_ids[0]
    assert row.books_org["name"] == "Zylker Books Ltd"
    assert row.books_org["email"] == "finance@zylker.example"
    assert row.books_org["country"]
    assert row.crm_org["edition"] == "professional"
    # secrets came from the environment: none reached the database or the output
    secret = emulator.emu.config.client_secret
    assert secret not in out
    assert secret not in json.dumps(row.model_dump(mode="json"))


def test_connect_crm_owner_must_be_an_active_user_or_nothing_is_stored(home, runner,
                                                                       emulator):
    users = {u["status"]: u for u in emulator.emu.crm.directory.users.values()
             if u["id"] != emulator.emu.crm.directory.current_user_id}
    for owner, says in (("nobody@zylker.example", "no Zoho CRM user has the email "
                         "nobody@zylker.example"),
                        (users["deleted"]["email"], f"{users['deleted']['email']} is deleted, "
                         "not active"),
                        ("Kenji Sato", "is not an email address")):
        result = runner.invoke(app, connect_args(emulator, "--crm-owner", owner))
        assert result.exit_code == 2, result.output
        assert says in result.output and "nothing was stored" in result.output
        assert "Traceback" not in result.output and open_store().connection() is None

    chosen = users["active"]
    result = runner.invoke(app, connect_args(emulator, "--crm-owner", chosen["email"].upper()))
    assert result.exit_code == 0, result.output
    assert f"owned by {chosen['full_name']} <{chosen['email']}>" in result.output
    assert open_store().connection().crm_org["owner"] == {
        "id": chosen["id"], "email": chosen["email"], "name": chosen["full_name"]}
    # A later connect with a wrong owner changes nothing: the stored owner stays.
    refused = runner.invoke(app, connect_args(emulator, "--crm-owner", "nobody@zylker.example"))
    assert refused.exit_code == 2, refused.output
    assert open_store().connection().crm_org["owner"]["id"] == chosen["id"]
    status = runner.invoke(app, ["status"])
    assert f"records created in the CRM: {chosen['full_name']} <{chosen['email']}>" in \
        status.output


def test_connect_edition_below_professional_exits_2_and_stores_nothing(home, runner,
                                                                      emulator, crm_config):
    crm_config.crm_edition = "Standard"
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 2, result.output
    assert "Professional" in result.output and "Traceback" not in result.output
    assert open_store().connection() is None


def test_connect_without_a_figure_field_names_it_exits_2_and_stores_nothing(home, runner,
                                                                            emulator):
    fields = emulator.emu.crm.catalogue.fields["Contacts"]
    kept = list(fields)
    fields[:] = [f for f in fields if f.api_name != "Books_Last_Payment_Date__c"]
    try:
        result = runner.invoke(app, connect_args(emulator))
    finally:
        fields[:] = kept
    assert result.exit_code == 2, result.output
    assert "Contacts have no field Books_Last_Payment_Date__c" in result.output
    assert "as a date field" in result.output and "Traceback" not in result.output
    assert open_store().connection() is None


def test_connect_multi_currency_base_mismatch_exits_2(home, runner, emulator, crm_config):
    crm_config.crm_multi_currency, crm_config.crm_currency = True, "EUR"
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 2, result.output
    assert "EUR" in result.output and "USD" in result.output
    assert "base currency" in result.output
    assert open_store().connection() is None


def test_connect_multi_currency_same_base_is_fine(home, runner, emulator, crm_config):
    crm_config.crm_multi_currency = True
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 0, result.output
    assert "base currencies equal" in result.output


def test_connect_wrong_client_secret_exits_2_with_one_sentence(home, runner, emulator,
                                                               monkeypatch):
    monkeypatch.setenv("CRMBOOKS_CLIENT_SECRET", "not-the-secret")
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 2, result.output
    assert "client secret" in result.output and "Traceback" not in result.output
    assert "not-the-secret" not in result.output
    assert open_store().connection() is None


def test_connect_revoked_refresh_token_exits_2(home, runner, emulator, monkeypatch):
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", "revoked-token")
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 2, result.output
    assert "refresh token was rejected" in result.output


def test_connect_unknown_books_org_names_the_known_ones(home, runner, emulator):
    args = connect_args(emulator)
    args[args.index("--books-org") + 1] = "123456"
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "123456" in result.output
    assert emulator.emu.config.books_org_ids[0] in result.output


def test_connect_unknown_extra_books_org_exits_2(home, runner, emulator):
    result = runner.invoke(app, connect_args(emulator, "--extra-books-org", "777"))
    assert result.exit_code == 2, result.output
    assert "777" in result.output
    assert open_store().connection() is None


def test_connect_needs_a_secret(home, runner, emulator, monkeypatch):
    monkeypatch.delenv("CRMBOOKS_CLIENT_SECRET")
    monkeypatch.setattr("crmbooks.app.cli.connect._existing_block", lambda name: None)
    result = runner.invoke(app, connect_args(emulator))
    assert result.exit_code == 2
    assert "CRMBOOKS_CLIENT_SECRET" in result.output


def test_connect_dc_and_urls_conflict(home, runner, emulator):
    result = runner.invoke(app, connect_args(emulator, "--dc", "eu"))
    assert result.exit_code == 2
    assert "either --dc" in result.output


def test_connect_secret_flags_go_to_prefect_blocks(home, runner, emulator, monkeypatch):
    saved = {}

    def fake_save(values, connection="default"):
        saved.update({k: v.get_secret_value() for k, v in values.items()})
        return "Prefect Secret blocks (test)"

    monkeypatch.delenv("CRMBOOKS_CLIENT_SECRET")
    monkeypatch.delenv("CRMBOOKS_REFRESH_TOKEN")
    monkeypatch.setattr(secrets_module, "save_secrets", fake_save)
    config = emulator.emu.config
    result = runner.invoke(app, connect_args(
        emulator, "--client-secret", config.client_secret,
        "--refresh-token", config.refresh_token))
    assert result.exit_code == 0, result.output
    assert saved == {"client_secret": config.client_secret,
                     "refresh_token": config.refresh_token}
    assert config.client_secret not in result.output


# ----------------------------------------------------------------------------- configure
def test_configure_needs_a_connection(home, runner):
    result = runner.invoke(app, ["configure", "customers", "--scope", "fetch"])
    assert result.exit_code == 2
    assert "crmbooks connect" in result.output


def test_configure_saves_versions_and_prints_the_diff(connected, runner, emulator):
    org = emulator.emu.config.books_org_ids[0]
    first = runner.invoke(app, ["configure", "customers", "--crm-module", "accounts+contacts",
                                "--include-unassociated-contacts", "--duplicates", "skip",
                                "--map", "cf_segment=Account_Number", "--no-preview"])
    assert first.exit_code == 0, first.output
    # Version 1 is what `connect` saved for a new connection: duplicates wait for review.
    assert "version 2" in first.output and "crm_module" in first.output
    assert "duplicates" in first.output and "review" in first.output
    second = runner.invoke(app, ["configure", "customers", "--scope", "fetch", "--no-preview"])
    assert second.exit_code == 0, second.output
    assert "version 3" in second.output and "fetch" in second.output
    assert "crm_module" not in second.output  # only what changed is shown

    from crmbooks.store import Store

    store = Store(open_store().engine, org_id=org)
    version, settings = store.active_settings("customers")
    assert version == 3
    assert settings["scope"] == "fetch" and settings["crm_module"] == "accounts+contacts"
    assert settings["include_unassociated_contacts"] is True
    assert settings["maps"][0]["books"] == "custom_fields.cf_segment"
    history = store.settings_history("customers")
    assert [v.version for v in history] == [3, 2, 1]
    assert history[-1].settings == {"duplicates": "review"}

    same = runner.invoke(app, ["configure", "customers", "--scope", "fetch"])
    assert same.exit_code == 0 and "No change" in same.output
    assert store.active_settings("customers")[0] == 3


@pytest.mark.parametrize("args, words", [
    (["customers", "--scope", "sideways"], "scope"),
    (["customers", "--duplicates", "merge"], "duplicates"),
    (["vendors", "--crm-module", "contacts"], "--crm-module applies only to customers"),
    (["customers", "--include-unassociated-contacts"], "include_unassociated_contacts"),
    (["deals", "--mode", "quote"], "create_stage"),
    (["deals", "--mode", "invoice", "--create-stage", "Qualification"], "quote mode"),
    (["customers", "--map", "no-equals-sign"], "BOOKS_FIELD=CRM_FIELD"),
    (["transactions", "--map", "reference_number=Subject"], "Books custom fields only"),
    (["transactions", "--map", "cf_crm_id=Books_Id__c"], "not cf_crm_id"),
    (["widgets"], "unknown module"),
    (["customers", "--on-delete-in-books", "deactivate"], "no inactive status"),
    (["customers", "--on-delete-in-crm", "erase"], "on_delete_in_crm"),
    (["customers", "--delete-brake", "lots"], "--delete-brake takes a number"),
    (["customers", "--delete-brake", "150%"], "delete_brake_share"),
    (["deals", "--on-delete-in-crm", "delete"], "--on-delete-in-crm applies only to"),
])
def test_configure_rejects_bad_values_with_exit_2(connected, runner, args, words):
    result = runner.invoke(app, ["configure", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_configure_deletion_policies_and_the_brake(connected, runner, emulator):
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    store = Store(open_store().engine, org_id=emulator.emu.config.books_org_ids[0])

    saved = runner.invoke(app, ["configure", "items", "--on-delete-in-crm", "deactivate",
                                "--on-delete-in-books", "delete", "--delete-brake", "10%"])
    assert saved.exit_code == 0, saved.output
    saved = runner.invoke(app, ["configure", "items", "--delete-brake", "40"])
    assert saved.exit_code == 0, saved.output
    version, values = store.active_settings("items")
    assert (values["on_delete_in_crm"], values["on_delete_in_books"]) == ("deactivate", "delete")
    assert (values["delete_brake_count"], values["delete_brake_share"]) == (40, 10.0)
    refused = runner.invoke(app, ["configure", "items", "--on-delete-in-books", "deactivate"])
    assert refused.exit_code == 2 and "nothing was saved" in refused.output
    assert store.active_settings("items")[0] == version
    nothing = runner.invoke(app, ["deletions", "approve", "0123abcd"])
    assert nothing.exit_code == 2
    assert "run '0123abcd' has no deletions waiting for approval" in nothing.output
    assert runner.invoke(app, ["deletions"]).output.strip() == "No deletion is held."


def test_configure_deals_switches_modes_cleanly(connected, runner):
    quote = runner.invoke(app, ["configure", "deals", "--mode", "quote", "--create-stage",
                                "Proposal/Price Quote", "--accept-stage", "Closed Won",
                                "--invoice-on-accept"])
    assert quote.exit_code == 0, quote.output
    invoice = runner.invoke(app, ["configure", "deals", "--mode", "invoice"])
    assert invoice.exit_code == 0, invoice.output  # the quote-only stages are dropped
    status = runner.invoke(app, ["status", "--json"])
    deals = json.loads(status.output)["modules"]["deals"]
    assert deals["version"] == 2
    assert deals["settings"]["mode"] == "invoice" and deals["settings"]["enabled"] is True
    assert deals["settings"]["create_stage"] is None


def test_configure_unmap_and_clear_view(connected, runner):
    assert runner.invoke(app, ["configure", "vendors", "--map", "cf_segment=GL_Account",
                               "--view", "All Vendors", "--no-preview"]).exit_code == 0
    result = runner.invoke(app, ["configure", "vendors", "--unmap", "cf_segment", "--view", "",
                                 "--no-preview"])
    assert result.exit_code == 0, result.output
    vendors = json.loads(runner.invoke(app, ["status", "--json"]).output)["modules"]["vendors"]
    assert vendors["version"] == 3  # after the new connection's version 1
    assert vendors["settings"]["maps"] == [] and vendors["settings"]["view"] is None
    again = runner.invoke(app, ["configure", "vendors", "--unmap", "cf_segment"])
    assert again.exit_code == 2 and "no extra map" in again.output


def test_configure_transactions_maps_custom_fields_shared_or_per_type(connected, runner):
    result = runner.invoke(app, ["configure", "transactions", "--map", "cf_po_ref=PO_Ref__c",
                                 "--map", "invoices:cf_terms=Terms__c"])
    assert result.exit_code == 0, result.output
    assert "invoices:custom_fields.cf_terms=Terms__c" in result.output
    settings = json.loads(runner.invoke(app, ["status", "--json"]).output)["modules"][
        "transactions"]["settings"]
    assert [(m["books"], m["crm"], m["section"]) for m in settings["maps"]] == [
        ("custom_fields.cf_po_ref", "PO_Ref__c", None),
        ("custom_fields.cf_terms", "Terms__c", "invoices")]
    result = runner.invoke(app, ["configure", "transactions", "--unmap", "invoices:cf_terms"])
    assert result.exit_code == 0, result.output
    settings = json.loads(runner.invoke(app, ["status", "--json"]).output)["modules"][
        "transactions"]["settings"]
    assert [m["crm"] for m in settings["maps"]] == ["PO_Ref__c"]


def test_configure_checks_the_view_against_crm(connected, runner):
    ok = runner.invoke(app, ["configure", "customers", "--view", "All Accounts",
                             "--no-preview"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["configure", "customers", "--view", "No Such View"])
    assert bad.exit_code == 2, bad.output
    assert "All Accounts" in bad.output  # lists the views there are


def test_configure_sync_calls_run_sync(connected, runner, monkeypatch):
    import crmbooks.app.cli.common as cli

    calls = []

    def fake_run_sync(modules, dry_run, json_out):
        calls.append((modules, dry_run, json_out))
        return 0

    monkeypatch.setattr(cli, "run_sync", fake_run_sync, raising=False)
    result = runner.invoke(app, ["configure", "vendors", "--duplicates", "clone", "--sync"])
    assert result.exit_code == 0, result.output
    assert calls == [(["vendors"], False, False)]


# -------------------------------------------------------------------------------- status
def test_status_not_connected_exits_2(home, runner):
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "crmbooks connect" in result.output


def test_status_shows_connection_without_secrets(connected, runner, emulator):
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    config = emulator.emu.config
    assert config.client_id in result.output and "Zylker Books Ltd" in result.output
    assert "CRMBOOKS_CLIENT_SECRET" in result.output  # where it comes from, not its value
    assert config.client_secret not in result.output
    assert config.refresh_token not in result.output
    for module in ("customers", "vendors", "items", "transactions", "deals"):
        assert module in result.output


# ------------------------------------------------------------------------------- history
def test_history_json_on_an_empty_store(home, runner):
    result = runner.invoke(app, ["history", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"runs": []}


def _insert_runs():
    store = open_store()
    first = store.start_run("customers")
    store.finish_run(first, "completed", counts={"books": {"created": 2}, "crm": {}},
                     api_calls={"crm": 3, "books": 4})
    second = store.start_run("vendors", dry_run=True)
    store.add_events(second, "vendors", [{
        "side": "books", "record_key": "crm:Vendors:1", "name": "Acme Supplies",
        "action": "updated", "changes": [{"field": "email", "before": "a@x", "after": "b@x"}],
    }])
    store.add_failures(second, "vendors", [{
        "side": "books", "record_key": "crm:Vendors:2", "code": "1001", "field": "vendor_name",
        "message": "A vendor with this name exists", "hint": "rename one of them",
    }])
    store.finish_run(second, "completed_with_failures",
                     counts={"books": {"updated": 1}, "crm": {}}, api_calls={"crm": 1})
    return first, second


def test_history_json_shape_with_runs(home, runner):
    first, second = _insert_runs()
    result = runner.invoke(app, ["history", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [r["run_id"] for r in runs] == [second, first]  # newest first
    for run in runs:
        assert set(run) == RUN_KEYS
        assert set(run["counts"]) == {"books", "crm"}
        assert all(set(c) == COUNT_KEYS for c in run["counts"].values())
        assert set(run["api_calls"]) == {"crm", "books"}
        assert all(set(f) == FAILURE_KEYS for f in run["failures"])
    vendors, customers = runs
    assert customers["counts"]["books"]["created"] == 2
    assert customers["api_calls"] == {"crm": 3, "books": 4}
    assert vendors["dry_run"] is True and vendors["state"] == "completed_with_failures"
    assert vendors["counts"]["books"]["failed"] == 1  # derived from the failure rows
    assert vendors["failures"] == [{"record": "crm:Vendors:2", "side": "books",
                                    "field": "vendor_name", "code": "1001",
                                    "message": "A vendor with this name exists"}]
    only = json.loads(runner.invoke(app, ["history", "--json", "--module", "customers"]).output)
    assert [r["module"] for r in only["runs"]] == ["customers"]


def test_history_of_one_run_and_failures(home, runner):
    _, second = _insert_runs()
    result = runner.invoke(app, ["history", "--run", second[:8]])
    assert result.exit_code == 0, result.output
    assert "Acme Supplies" in result.output and "b@x" in result.output
    assert "A vendor with this name exists" in result.output
    failures = runner.invoke(app, ["history", "--failures", "--json"])
    rows = json.loads(failures.output)["failures"]
    assert rows[0]["hint"] == "rename one of them" and rows[0]["field"] == "vendor_name"
    table = runner.invoke(app, ["history"])
    assert table.exit_code == 0 and "vendors" in table.output
    as_json = json.loads(runner.invoke(app, ["history", "--run", second, "--json"]).output)
    assert set(as_json["runs"][0]) == RUN_KEYS
    assert as_json["events"][0]["changes"] == [{"field": "email", "before": "a@x",
                                                "after": "b@x"}]
    missing = runner.invoke(app, ["history", "--run", "nope"])
    assert missing.exit_code == 2


# ------------------------------------------------------------------- pause, resume, ...
def test_disable_and_enable_before_connect_are_one_sentence_and_exit_2(home, runner):
    for command in ("disable", "enable"):
        result = runner.invoke(app, [command, "--yes"] if command == "disable" else [command])
        assert result.exit_code == 2, result.output
        assert "not connected yet: run `crmbooks connect` first" in result.output
        assert "Traceback" not in result.output
    assert open_store().connection() is None  # nothing stored


def test_pause_resume_disable_enable_set_the_flags(connected, runner):
    assert runner.invoke(app, ["pause"]).exit_code == 0
    assert open_store().connection().paused is True
    assert runner.invoke(app, ["status"]).exit_code == 3
    assert "Already paused" in runner.invoke(app, ["pause"]).output
    assert runner.invoke(app, ["resume"]).exit_code == 0
    assert open_store().connection().paused is False
    assert runner.invoke(app, ["disable"]).exit_code == 0
    assert open_store().connection().disabled is True
    assert runner.invoke(app, ["enable"]).exit_code == 0
    row = open_store().connection()
    assert (row.paused, row.disabled) == (False, False)
    assert runner.invoke(app, ["status"]).exit_code == 0


def test_pause_needs_a_connection(home, runner):
    result = runner.invoke(app, ["pause"])
    assert result.exit_code == 2
