"""Deletions by policy: the brake's arithmetic, the settings it reads, and the store of held
deletions (held once per record, approved per run, done once)."""

from __future__ import annotations

import pytest

from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.deletions import brake_note, braked, reason


@pytest.mark.parametrize(("planned", "linked", "held"), [
    (30, 42, True),  # past both limits
    (25, 42, False),  # the count is "more than", not "at least"
    (30, 1000, False),  # 3% of the links: under the share
    (3, 10, False),  # 30% of a small module, under the count
    (600, 10_000, True),
])
def test_the_brake_holds_only_past_both_limits(planned, linked, held):
    assert braked(planned, linked, 25, 5.0) is held


def test_a_zero_brake_holds_any_deletion():
    assert braked(1, 1, 0, 0.0) and not braked(0, 1, 0, 0.0)


def test_what_history_and_the_run_say():
    assert reason("crm", "delete", "46") == (
        "deleted in the CRM: Books twin 46 deleted; link retired")
    assert reason("books", "delete", "57", already=True) == (
        "deleted in Books: the CRM twin 57 was already gone; link retired")
    note = brake_note(30, "3f2a9c1e-0000", 25, 5.0)
    assert "30 deletion(s) held" in note and "crmbooks deletions approve 3f2a9c1e" in note


def test_settings_default_to_ignore_and_refuse_deactivate_in_the_crm():
    settings = parse_module_settings("customers", {})
    assert (settings.on_delete_in_crm, settings.on_delete_in_books) == ("ignore", "ignore")
    assert (settings.delete_brake_count, settings.delete_brake_share) == (25, 5.0)
    with pytest.raises(SettingsError, match="no inactive status"):
        parse_module_settings("vendors", {"on_delete_in_books": "deactivate"})


def held_row(n: int) -> dict:
    return {"deleted_side": "crm", "deleted_id": f"c{n}", "crm_id": f"c{n}",
            "books_id": f"b{n}", "kind": "accounts", "crm_module": "Accounts",
            "action": "delete"}


def test_held_deletions_are_kept_once_approved_per_run_and_done_once(store):
    assert store.hold_deletions("run-a", "customers", [held_row(1), held_row(2)]) == 2
    # the same records found deleted again by a later run: nothing new is held
    assert store.hold_deletions("run-b", "customers", [held_row(2), held_row(3)]) == 1
    assert [h.deleted_id for h in store.held_deletions("customers")] == ["c1", "c2", "c3"]
    assert store.approve_deletions("run-") == []  # a prefix of two runs approves nothing
    assert {h.deleted_id for h in store.approve_deletions("run-a")} == {"c1", "c2"}
    assert store.approve_deletions("run-a") == []  # already approved
    approved = store.held_deletions("customers", states=("approved",))
    store.finish_deletions(h.id for h in approved)
    assert [h.deleted_id for h in store.held_deletions()] == ["c3"]
    assert store.count_links("customers") == 0
