"""End to end: the customers flow on the emulators, checking both sides' data.

Accounts mode under every scope × duplicates policy, the other CRM module modes in two-way
mode, views, and the incremental second run and its request budget. Mapping checks, dry runs,
conflicts and failures are in test_customers_checks.py.
"""

from __future__ import annotations

import copy

import pytest

from support.customers import (
    BOOKS_CUSTOMERS,
    books_by_name,
    books_customers,
    books_put,
    cf,
    clear_stats,
    crm,
    crm_by_name,
    crm_put,
    data_requests,
    failures,
    next_second,
    sync,
    writes,
)

pytestmark = pytest.mark.books_customers(BOOKS_CUSTOMERS)


def duplicate_names(server) -> set[str]:
    """Names that a CRM account and a Books business customer share."""
    return set(crm_by_name(server)) & set(books_by_name(server, "business"))


def data_of(record: dict) -> dict:
    """A Books contact without Zoho's own CRM link fields, which a two-way link may set."""
    link = {"zcrm_account_id", "zcrm_contact_id", "is_linked_with_zohocrm", "last_modified_time"}
    return {k: v for k, v in record.items() if k not in link}


def assert_in_books(server, account: dict) -> dict:
    """The CRM account is one Books business customer carrying its data; returns that."""
    found = [r for r in books_customers(server, "business").values()
             if cf(r) == account["id"]]
    assert len(found) == 1, (account["Account_Name"], found)
    rec = found[0]
    assert rec["contact_name"] == account["Account_Name"]
    assert rec["billing_address"]["city"] == (account.get("Billing_City") or "")
    assert rec["website"] == (account.get("Website") or "")
    return rec


@pytest.mark.parametrize("scope", ["fetch", "both"])
@pytest.mark.parametrize("duplicates", ["skip", "overwrite", "clone"])
def test_accounts_mode_scope_and_duplicates(store, emu_reset, scope, duplicates):
    """Accounts → business customers; same-named records follow the duplicates policy."""
    dups = duplicate_names(emu_reset)
    assert len(dups) == 4
    books_before = copy.deepcopy(books_customers(emu_reset))
    crm_before = copy.deepcopy(crm(emu_reset))
    state, run = sync(store, scope=scope, duplicates=duplicates)

    for account in crm_before.values():
        if account["Account_Name"] not in dups:
            assert_in_books(emu_reset, account)
    for rec in books_customers(emu_reset, "individual").values():  # not this mode's records
        # (two-way they are linked to CRM contacts, their data unchanged)
        assert data_of(rec) == data_of(books_before[rec["contact_id"]])
        assert bool(rec.get("zcrm_contact_id")) == (scope == "both")
    books_now = books_by_name(emu_reset, "business")
    crm_now = crm_by_name(emu_reset)
    for name in dups:
        crm_rec = next(r for r in crm_before.values() if r["Account_Name"] == name)
        books_rec = next(r for r in books_before.values() if r["contact_name"] == name)
        if duplicates == "overwrite":  # CRM data replaces the Books record, now linked
            assert [r["contact_id"] for r in books_now[name]] == [books_rec["contact_id"]]
            assert assert_in_books(emu_reset, crm_rec)["contact_id"] == books_rec["contact_id"]
        else:  # skip keeps it as it was; a clone gets the clone suffix (Books names are unique)
            (kept,) = books_now[name]
            assert data_of(kept) == data_of(books_before[books_rec["contact_id"]])
        if duplicates == "clone":
            (copy_,) = books_now[f"{name} (2)"]
            assert cf(copy_) == crm_rec["id"]
        if scope == "both" and duplicates == "clone":  # the Books record is cloned into CRM
            assert len(crm_now[name]) == 2
            assert {r.get("Books_Id__c") for r in crm_now[name]} == {None,
                                                                     books_rec["contact_id"]}
        else:
            assert len(crm_now[name]) == 1
            assert crm_now[name][0].get("Books_Id__c") is None  # overwrite: CRM unchanged
        linked = set(store.links("customers")["crm_id"])
        # overwrite links the account to the Books record, clone to its copy
        assert (crm_rec["id"] in linked) == (duplicates in ("overwrite", "clone"))
    if scope == "fetch":
        assert writes(emu_reset, "crm") == []
        assert crm(emu_reset) == crm_before
    else:  # every other Books business customer is now a CRM account
        for rec in books_before.values():
            if rec["customer_sub_type"] == "business" and rec["contact_name"] not in dups:
                (made,) = crm_now[rec["contact_name"]]
                assert made["Books_Id__c"] == rec["contact_id"]
        # … and, two-way, every individual one a CRM contact whatever the CRM module
        from_books = {c.get("Books_Id__c") for c in crm(emu_reset, "Contacts").values()}
        individuals = {i for i, r in books_before.items()
                       if r["customer_sub_type"] == "individual"}
        assert individuals and individuals <= from_books
    assert failures(store) == [] and run.state == "completed" and state.is_completed()


def full_name(contact: dict) -> str:
    """A CRM contact's display name, as Books shows it."""
    return " ".join(p for p in (contact.get("First_Name"), contact.get("Last_Name")) if p)


def assert_person(person: dict, contact: dict) -> None:
    """A Books contact person carries the CRM contact's name and email."""
    assert (person.get("first_name") or None) == contact.get("First_Name")
    assert person["last_name"] == contact["Last_Name"]
    assert person["email"] == contact["Email"]


def test_contacts_mode_two_way(store, emu_reset):
    """Contacts ↔ individual customers; business customers and accounts are left alone."""
    contacts = copy.deepcopy(crm(emu_reset, "Contacts"))
    accounts = copy.deepcopy(crm(emu_reset))
    books_before = copy.deepcopy(books_customers(emu_reset))
    state, run = sync(store, crm_module="contacts", scope="both")
    assert state.is_completed(), failures(store)
    individuals = {cf(r): r for r in books_customers(emu_reset, "individual").values()}
    for contact in contacts.values():
        rec = individuals[contact["id"]]
        assert rec["contact_name"] == full_name(contact)
        primary = next(p for p in rec["contact_persons"] if p["is_primary_contact"])
        assert_person(primary, contact)
    made = {c.get("Books_Id__c"): c for c in crm(emu_reset, "Contacts").values()}
    for rec in books_before.values():
        if rec["customer_sub_type"] == "individual":  # a CRM contact named after its person
            primary = next(p for p in rec["contact_persons"] if p["is_primary_contact"])
            assert made[rec["contact_id"]]["Last_Name"] == primary["last_name"]
            assert made[rec["contact_id"]]["First_Name"] == primary["first_name"]
            assert made[rec["contact_id"]]["Email"] == primary["email"]
        else:
            assert rec["contact_id"] not in made
            assert books_customers(emu_reset)[rec["contact_id"]] == rec
    assert crm(emu_reset) == accounts
    assert len(books_customers(emu_reset, "business")) == len(
        [r for r in books_before.values() if r["customer_sub_type"] == "business"])
    assert run.counts["books"]["created"] == len(contacts)


@pytest.mark.parametrize("unassociated", [False, True])
def test_accounts_and_contacts_mode_two_way(store, emu_reset, unassociated):
    """Accounts with their contacts inline as contact persons; lone contacts only on request."""
    contacts = copy.deepcopy(crm(emu_reset, "Contacts"))
    books_before = copy.deepcopy(books_customers(emu_reset))
    dups = duplicate_names(emu_reset)
    settings = {"crm_module": "accounts+contacts", "scope": "both"}
    if unassociated:
        settings["include_unassociated_contacts"] = True
    state, run = sync(store, **settings)
    assert state.is_completed(), failures(store)
    by_crm_id = {cf(r): r for r in books_customers(emu_reset).values() if cf(r)}
    for account in crm(emu_reset).values():
        if account["Account_Name"] in dups or account.get("Books_Id__c"):
            continue  # skipped duplicate, or made from a Books customer in this run
        rec = assert_in_books(emu_reset, account)
        mine = [c for c in contacts.values() if c.get("Account_Name") == account["id"]]
        assert len(rec["contact_persons"]) == len(mine) == 2
        for contact in mine:
            person = next(p for p in rec["contact_persons"] if p["email"] == contact["Email"])
            assert_person(person, contact)
    lone = [c for c in contacts.values() if not c.get("Account_Name")]
    assert len(lone) == 2
    for contact in lone:
        if unassociated:
            rec = by_crm_id[contact["id"]]
            assert (rec["customer_sub_type"], rec["contact_name"]) == (
                "individual", full_name(contact))
        else:
            assert contact["id"] not in by_crm_id
    accounts_now = crm_by_name(emu_reset)
    contacts_now = crm_by_name(emu_reset, "Contacts")
    from_books = {c.get("Books_Id__c") for c in crm(emu_reset, "Contacts").values()}
    for rec in books_before.values():
        name = rec["contact_name"]
        if rec["customer_sub_type"] == "individual":  # a CRM contact, lone contacts or not
            assert rec["contact_id"] in from_books
            continue
        if name in dups:
            continue
        (account,) = accounts_now[name]
        assert account["Books_Id__c"] == rec["contact_id"]
        for person in rec["contact_persons"]:  # each contact person became a CRM contact
            made = [c for c in contacts_now.get(full_name(
                {"First_Name": person["first_name"], "Last_Name": person["last_name"]}), [])
                if c.get("Account_Name") == account["id"]]
            assert len(made) == 1, (name, person)
            assert made[0]["Email"] == person["email"]


def test_account_and_contact_views(store, emu_reset):
    """Only the accounts of "Key Accounts" and the contacts of "Opted Out Contacts" sync."""
    accounts = copy.deepcopy(crm(emu_reset))
    contacts = copy.deepcopy(crm(emu_reset, "Contacts"))
    state, _ = sync(store, crm_module="accounts+contacts", scope="fetch", duplicates="overwrite",
                    view="Key Accounts", contact_view="Opted Out Contacts")
    assert state.is_completed(), failures(store)
    synced = {cf(r): r for r in books_customers(emu_reset).values() if cf(r)}
    key = {i for i, a in accounts.items() if a["Industry"] == "Technology"}
    assert key and set(synced) == key
    for account_id in key:
        emails = {p["email"] for p in synced[account_id]["contact_persons"]}
        opted_out = {c["Email"] for c in contacts.values()
                     if c.get("Account_Name") == account_id and c["Email_Opt_Out"]}
        assert opted_out <= emails
        assert all(c["Email"] not in emails for c in contacts.values()
                   if c.get("Account_Name") == account_id and not c["Email_Opt_Out"])
    assert any(c["Email_Opt_Out"] and c.get("Account_Name") in key for c in contacts.values())


def test_unknown_view_stops_before_any_write(store, emu_reset):
    """A view the CRM does not have fails the run with a message naming it; nothing written."""
    books_before = copy.deepcopy(books_customers(emu_reset))
    state, run = sync(store, view="Best Customers Ever")
    assert state.is_failed() and run.state == "failed"
    assert "Best Customers Ever" in run.message and "does not exist" in run.message
    assert "crmbooks configure" in run.message
    assert writes(emu_reset) == []
    assert books_customers(emu_reset) == books_before


@pytest.mark.parametrize("mode", ["accounts", "contacts", "accounts+contacts"])
def test_second_run_is_incremental_and_cheap(store_any_db, emu_reset, mode):
    """Right after a full sync nothing is written; a quiet run costs ≤ 2 data requests a side,
    besides one read of the CRM's deleted-records list per CRM module and, in Books, the three
    ledger scans that find whose accounting figures moved."""
    store = store_any_db
    first_state, first = sync(store, scope="both", duplicates="overwrite", crm_module=mode)
    assert first_state.is_completed() and first.counts["books"]["created"] >= 8
    books_after, crm_after = (copy.deepcopy(books_customers(emu_reset)),
                              copy.deepcopy(crm(emu_reset)))
    for _ in range(2):
        clear_stats(emu_reset)
        state, run = sync(store)
        assert state.is_completed()
        assert writes(emu_reset) == []
        assert all(run.counts[side][k] == 0 for side in ("books", "crm")
                   for k in ("created", "updated", "failed"))
        reads = data_requests(emu_reset, "crm")
        deleted = [r for r in reads if r["path"].endswith("/deleted")]
        # Accounts only, two-way: CRM Contacts too, once individual customers are linked.
        assert len(deleted) == {"contacts": 1}.get(mode, 2)
        assert len(reads) - len(deleted) <= 2
        assert len(data_requests(emu_reset, "books")) <= 2 + 3
        assert books_customers(emu_reset) == books_after and crm(emu_reset) == crm_after


def test_fetch_scope_after_two_way_keeps_what_was_pushed(store, emu_reset, crm_http,
                                                         books_http):
    """Switched to fetch: CRM changes still reach Books; CRM is neither written nor pruned."""
    sync(store, scope="both")
    pushed = {i: r for i, r in crm(emu_reset).items() if r.get("Books_Id__c")}
    assert len(pushed) == 6
    alpine = next(a for a in crm(emu_reset).values()
                  if a["Account_Name"] == "Alpine Analytics SARL")
    meridian = next(a for a in pushed.values() if a["Account_Name"] == "Meridian Holdings")
    store.save_settings("customers", {"scope": "fetch"})
    next_second()
    crm_put(crm_http, "Accounts", alpine["id"], {"Billing_City": "Oslo"})
    books_put(books_http, emu_reset, meridian["Books_Id__c"],
              {"website": "https://meridian.example/new"})
    crm_before = copy.deepcopy(crm(emu_reset))
    clear_stats(emu_reset)

    state, run = sync(store)

    assert state.is_completed() and run.counts["books"]["updated"] == 1
    synced = {cf(r): r for r in books_customers(emu_reset).values() if cf(r)}
    assert synced[alpine["id"]]["billing_address"]["city"] == "Oslo"
    assert writes(emu_reset, "crm") == [] and crm(emu_reset) == crm_before
    assert books_customers(emu_reset)[meridian["Books_Id__c"]]["website"] == \
        "https://meridian.example/new"  # kept in Books, not sent to CRM


def test_an_incremental_run_reads_only_the_links_of_what_it_fetched(store, emu_reset, crm_http,
                                                                   monkeypatch):
    """Memory: an incremental run never loads every link with its JSON values (the
    merge base); it reads the fetched records' links (Store.links_of) and every other link
    as ids only (Store.link_ids), so its memory follows what changed, not the link count."""
    from crmbooks.store import Store

    sync(store, scope="both")
    alpine = next(a for a in crm(emu_reset).values()
                  if a["Account_Name"] == "Alpine Analytics SARL")
    next_second()
    crm_put(crm_http, "Accounts", alpine["id"], {"Billing_City": "Bergen"})
    asked: list[tuple[int, int]] = []
    links_of = Store.links_of

    def whole_links(self, module, kind=None):
        raise AssertionError(f"an incremental run loaded every link of {module}")

    def counted_links_of(self, module, *, crm_ids=(), books_ids=()):
        crm_ids, books_ids = list(crm_ids), list(books_ids)
        asked.append((len(crm_ids), len(books_ids)))
        return links_of(self, module, crm_ids=crm_ids, books_ids=books_ids)

    monkeypatch.setattr(Store, "links", whole_links)
    monkeypatch.setattr(Store, "links_of", counted_links_of)

    state, run = sync(store)

    assert state.is_completed(), state.message
    assert run.counts["books"]["updated"] == 1
    synced = {cf(r): r for r in books_customers(emu_reset).values() if cf(r)}
    assert synced[alpine["id"]]["billing_address"]["city"] == "Bergen"
    # Only the links of what the run fetched, asked by id (every link with its values was
    # refused above). How many it fetched varies: the accounting figures the first run wrote
    # into the CRM after its push may come back as changed accounts in this run.
    total = len(store.link_ids("customers"))
    assert asked and all(c + b <= total for c, b in asked), (asked, total)
    assert (1, 0) in asked or any(c < total for c, _ in asked), asked
