"""Typed settings: defaults, and clear messages for every wrong setting."""

from __future__ import annotations

import pytest

from crmbooks.settings import (
    FieldMapSetting,
    SettingsError,
    parse_connection,
    parse_module_settings,
)


@pytest.mark.parametrize("module", ["customers", "vendors", "items", "transactions", "deals"])
def test_defaults_are_valid(module):
    assert parse_module_settings(module) is not None


def test_defaults_are_two_way_and_never_destructive():
    s = parse_module_settings("customers")
    assert (s.scope, s.duplicates, s.crm_module) == ("both", "skip", "accounts")


@pytest.mark.parametrize(("module", "data", "message"), [
    ("customers", {"duplicates": "merge"},
     r"customers\.duplicates: input should be 'clone', 'overwrite', 'skip' or 'review', "
     r"got 'merge'"),
    ("customers", {"scop": "fetch"}, r"customers\.scop: unknown setting"),
    ("customers", {"crm_module": "leads"}, r"customers\.crm_module: .*'accounts\+contacts'"),
    ("customers", {"include_unassociated_contacts": True},
     r"include_unassociated_contacts only applies when crm_module is accounts\+contacts"),
    ("customers", {"crm_module": "contacts", "contact_view": "x"}, r"contact_view only applies"),
    ("items", {"scope": "push"}, r"items\.scope: input should be 'fetch' or 'both'"),
    ("deals", {"enabled": True}, r"quote mode needs create_stage"),
    ("deals", {"mode": "invoice", "accept_stage": "Won"}, r"accept_stage: only used in quote"),
    ("deals", {"enabled": True, "create_stage": "X", "accept_stage": "X"}, r"must differ"),
    ("deals", {"enabled": True, "create_stage": "-None-"}, r"pick a real deal stage"),
    ("nope", {}, r"unknown module 'nope'"),
])
def test_bad_settings_say_which_and_why(module, data, message):
    with pytest.raises(SettingsError, match=message):
        parse_module_settings(module, data)


def test_accounts_and_contacts_options():
    s = parse_module_settings("customers", {"crm_module": "accounts+contacts",
                                            "include_unassociated_contacts": True,
                                            "view": "My Accounts", "contact_view": "All"})
    assert s.include_unassociated_contacts and s.contact_view == "All"


def test_connection_urls_and_no_secrets():
    conn = parse_connection({"dc": "ca", "client_id": "id", "books_org_id": "20099001"})
    assert conn.urls()["accounts"] == "https://accounts.zohocloud.ca"
    local = parse_connection({"api_url": "http://127.0.0.1:8900/", "accounts_url":
                              "http://127.0.0.1:8900", "client_id": "id", "books_org_id": "1"})
    assert local.urls() == {"accounts": "http://127.0.0.1:8900", "crm": "http://127.0.0.1:8900",
                            "books": "http://127.0.0.1:8900"}
    with pytest.raises(SettingsError, match="client_secret: secrets are not stored"):
        parse_connection({"dc": "us", "client_id": "id", "books_org_id": "1",
                          "client_secret": "s3cr3t"})
    with pytest.raises(SettingsError, match="give a data centre"):
        parse_connection({"client_id": "id", "books_org_id": "1"})


def test_field_map_cli_form():
    assert FieldMapSetting.parse("cf_tier=Tier__c").books == "custom_fields.cf_tier"
    assert FieldMapSetting.parse("notes = Description").pair().crm == "Description"
    with pytest.raises(SettingsError, match="BOOKS_FIELD=CRM_FIELD"):
        FieldMapSetting.parse("notes")


def test_lifecycle_errors_pickle_with_their_summary():
    """A failed run's result (RecordsFailed with its summary) is persisted by pickling and
    read back by the CLI and the receiver: it must come back whole."""
    import pickle

    from crmbooks.sync.lifecycle import RecordsFailed, RunInProgress, RunRefused

    failed = pickle.loads(pickle.dumps(RecordsFailed("2 record(s) failed", {"run_id": "r1"})))
    assert str(failed) == "2 record(s) failed" and failed.summary == {"run_id": "r1"}
    for error in (RunRefused("paused"), RunInProgress("busy")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
