"""The settings actions as flows (what the Prefect UI runs): pause/resume, edit, disable/
enable, linked records — each does what its `crmbooks` command does."""

from __future__ import annotations

from flows.admin import (
    disable_integration,
    edit_settings,
    enable_integration,
    linked_records,
    pause_syncs,
    resume_syncs,
)
from flows.customers import sync_customers
from support.customers import unpaced


def test_pause_refuses_runs_until_resume(connected, monkeypatch):
    unpaced(monkeypatch)
    assert pause_syncs(return_state=True).is_completed()
    refused = sync_customers(return_state=True)
    assert refused.is_failed() and "paused" in refused.message
    assert resume_syncs(return_state=True).is_completed()
    assert sync_customers(return_state=True).is_completed()


def test_edit_saves_a_checked_version_and_refuses_a_bad_value(connected):
    store = connected
    version = edit_settings(module="customers", changes={"duplicates": "overwrite"},
                            note="from the UI")
    active_version, active = store.active_settings("customers")
    assert active_version == version and active["duplicates"] == "overwrite"
    bad = edit_settings(module="customers", changes={"duplicates": "merge"},
                        return_state=True)
    assert bad.is_failed() and "duplicates" in bad.message
    assert store.active_settings("customers")[0] == version  # nothing saved


def test_disable_enable_and_the_linked_records_table(connected, monkeypatch):
    unpaced(monkeypatch)
    store = connected
    sync_customers(return_state=True)
    linked = linked_records(what="customers")
    assert linked == len(store.links("customers").query("kind in ('accounts', 'contacts')"))
    assert disable_integration(return_state=True).is_completed()
    assert store.connection().disabled
    assert sync_customers(return_state=True).is_failed()
    assert enable_integration(return_state=True).is_completed()
    assert not store.connection().disabled
