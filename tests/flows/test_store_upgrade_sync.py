"""After the upgrade of a database made before migrations, the next sync writes nothing again.

The fixture database (tests/fixtures, made by the code before migrations) holds the links of
one customers and one vendors sync against the emulators seeded with seed 7. The emulator's
state after that sync is rebuilt here by doing what the fixture's script did, with this code
on a scratch database: the seed is deterministic and so are the ids the emulator gives the
records it creates, which the test checks by comparing the two databases' links. Then the
fixture copy is opened (and upgraded) and synced once more: everything is already in sync.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from crmbooks.runtime import reset_runtime_cache
from crmbooks.store import Store, migrate
from flows.customers import sync_customers
from flows.vendors import sync_vendors
from support.connect import connect_to
from support.customers import clear_stats, unpaced, writes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "state_before_migrations.sqlite"
PRIMARY = "20099001"
#: What the fixture's script did before syncing (see make_state_before_migrations.py).
LONG_SITE = "https://example.com/" + "a" * 220
SETTINGS = {"crm_module": "accounts", "scope": "both", "duplicates": "skip"}


def _fixture_links() -> set[tuple[str, str, str]]:
    """(module, CRM id, Books id) of every link in the fixture."""
    db = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    try:
        return set(db.execute("SELECT module, crm_id, books_id FROM link").fetchall())
    finally:
        db.close()


def _links(store: Store) -> set[tuple[str, str, str]]:
    return {(module, crm_id, books_id) for module in ("customers", "vendors")
            for crm_id, books_id in store.links(module)[["crm_id", "books_id"]].values}


def test_the_first_sync_after_the_upgrade_writes_nothing(emu_reset, crm_http, monkeypatch,
                                                         tmp_path):
    unpaced(monkeypatch)
    scratch = connect_to(emu_reset, monkeypatch, tmp_path / "replay",
                         f"sqlite:///{tmp_path / 'replay.db'}")
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [
        {"Account_Name": "Long Site Ltd", "Website": LONG_SITE}]})
    assert answer.json()["data"][0]["status"] == "success", answer.text
    scratch.save_settings("customers", SETTINGS, note="fixture")
    # The fixture's connection saved no vendors settings (their defaults then: duplicates
    # skip); a connection made today saves `review` for every record module.
    scratch.save_settings("vendors", {"duplicates": "skip"}, note="fixture")
    # The fixture's code left Books individuals out in this mode; today they go to CRM
    # Contacts, which would take the CRM ids its vendors got. Hidden from the replay's sync
    # (and put back as they were, stamps unchanged), they leave the same state behind.
    contacts = emu_reset.emu.books.org().records["contacts"]
    individuals = {i: r for i, r in contacts.items()
                   if r.get("contact_type") == "customer"
                   and r.get("customer_sub_type") == "individual"}
    assert individuals, "the seeded Books customers include individuals"
    for books_id in individuals:
        del contacts[books_id]
    sync_customers(return_state=True)
    contacts.update(individuals)
    sync_vendors(return_state=True)
    assert _links(scratch) == _fixture_links(), (
        "the emulator's state after the fixture's sync was not rebuilt: the same sync now "
        "links other records, so this test cannot tell whether the upgraded store is in sync")

    upgraded = tmp_path / "upgraded.db"
    shutil.copy(FIXTURE, upgraded)
    url = f"sqlite:///{upgraded}"
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", url)
    reset_runtime_cache()
    store = Store.open(url, org_id=PRIMARY)
    assert migrate.current(url) == migrate.head()
    # The fixture was connected to an emulator on another port: point it at this one.
    store.save_connection(api_url=emu_reset.base_url, accounts_url=emu_reset.base_url)
    reset_runtime_cache()
    clear_stats(emu_reset)

    sync_customers(return_state=True)
    sync_vendors(return_state=True)

    # Nothing the fixture's sync wrote is written again. What this code does and the
    # fixture's did not is done now: the Books individuals reach CRM Contacts.
    # (the contact, and each side's id written back on its twin).
    individual_writes = {("POST", "/crm/v8/Contacts/upsert"), ("PUT", "/crm/v8/Contacts")} | {
        ("PUT", f"/books/v3/contacts/{books_id}") for books_id in individuals}
    assert {(w["method"], w["path"]) for w in writes(emu_reset)} <= individual_writes
    for run in store.list_runs(limit=2):
        assert run.module in ("customers", "vendors")
        written = {side: {k: run.counts[side][k] for k in ("created", "updated", "deleted")}
                   for side in ("books", "crm")}
        new_contacts = len(individuals) if run.module == "customers" else 0
        assert written == {"books": {"created": 0, "updated": 0, "deleted": 0},
                           "crm": {"created": new_contacts, "updated": 0, "deleted": 0}
                           }, run.module
    [failed] = store.failures(module="customers").to_dict("records")  # still too long
    assert failed["attempts"] == 2 and "website" in failed["message"].lower()
    store.engine.dispose()
    scratch.engine.dispose()
