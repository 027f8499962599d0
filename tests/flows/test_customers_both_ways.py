"""Customers both ways, through the emulators' HTTP APIs: two-way, an individual Books
customer reaches CRM Contacts whatever the CRM module setting; once linked, a rerun writes
nothing and an edit on either side follows the link; what the settings keep out is counted
as skipped with its reason, and an individual the CRM cannot take (no last name) is a clear
failure of that record only, synced once it is fixed.
"""

from __future__ import annotations

from typer.testing import CliRunner

from crmbooks.app.cli import app
from support.customers import books_put, clear_stats, crm_put, reseed, sync, writes


def small(server) -> None:
    """One account with one contact, one contact without an account, no Books customer."""
    reseed(server, books_customers=0, accounts=1, contacts_per_account=1,
           unassociated_contacts=1)


def books_org(server) -> str:
    return server.emu.config.books_org_ids[0]


def add_individual(books_http, server, first: str | None, last: str | None,
                   email: str | None = None) -> str:
    """Create an individual Books customer as a Books user would; its id."""
    person = {"first_name": first, "last_name": last, "email": email,
              "is_primary_contact": True}
    body = {"contact_name": " ".join(p for p in (first, last) if p), "contact_type": "customer",
            "customer_sub_type": "individual",
            "contact_persons": [{k: v for k, v in person.items() if v is not None}]}
    answer = books_http.post("/books/v3/contacts", params={"organization_id": books_org(server)},
                             json=body)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["contact"]["contact_id"]


def books_contact(books_http, server, books_id: str) -> dict:
    answer = books_http.get(f"/books/v3/contacts/{books_id}",
                            params={"organization_id": books_org(server)})
    assert answer.status_code == 200, answer.text
    return answer.json()["contact"]


def crm_contact(crm_http, crm_id: str) -> dict:
    answer = crm_http.get(f"/crm/v8/Contacts/{crm_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"][0]


def events(store, run_id: str) -> dict[str, tuple[str, str, str]]:
    """{record key: (side, action, message)} of a run's history."""
    return {e["record_key"]: (e["side"], e["action"], e["message"])
            for e in store.events(run_id=run_id).to_dict("records")}


def test_individuals_reach_crm_contacts_kept_out_is_said_and_a_bad_one_fails_alone(
        store_any_db, emu_reset, books_http, crm_http):
    """Accounts with their contacts, then accounts only (the other two modes: the customers
    flow tests); each run's kept-out records and failures, then a rerun that writes nothing."""
    store = store_any_db
    small(emu_reset)
    [lone] = [i for i, c in emu_reset.emu.crm.records("Contacts").items()
              if not c.get("Account_Name")]
    named = emu_reset.emu.crm.records("Contacts")[lone]
    # A Books individual named like the lone CRM contact: its duplicate, even though the
    # settings keep that contact out.
    twin = add_individual(books_http, emu_reset, named.get("First_Name"), named["Last_Name"])
    no_email = add_individual(books_http, emu_reset, "Noemail", "Person")
    no_last = add_individual(books_http, emu_reset, "Cher", None, "cher@example.com")
    state, run = sync(store, crm_module="accounts+contacts", scope="both")

    assert not state.is_completed() and run.state == "completed_with_failures"
    # No email is fine (the CRM needs a last name only): a CRM contact, linked both ways.
    link = store.find_link("customers", books_id=no_email)
    assert link is not None and link.kind == "contacts"
    contact = crm_contact(crm_http, link.crm_id)
    assert (contact["First_Name"], contact["Last_Name"], contact["Books_Id__c"]) == (
        "Noemail", "Person", no_email)
    assert books_contact(books_http, emu_reset, no_email)["zcrm_contact_id"] == link.crm_id
    # No last name fails alone, clearly, and nothing of it is written.
    assert store.find_link("customers", books_id=no_last) is None
    [failure] = store.failures(module="customers").to_dict("records")
    assert failure["record_key"] == f"books/contacts/{no_last}" and failure["side"] == "crm"
    assert "Last_Name" in failure["message"] and "empty" in failure["message"]
    assert run.counts["crm"] == {**run.counts["crm"], "created": 1, "failed": 1}
    # The lone CRM contact is left out by the settings, and the run says why.
    side, action, why = events(store, run.id)[f"crm/Contacts/{lone}"]
    assert (side, action) == ("books", "skipped") and "--include-unassociated-contacts" in why
    assert run.counts["books"] == {**run.counts["books"], "created": 1, "skipped": 1}
    # The duplicate of the lone contact is not sent (a second CRM contact of that name).
    assert store.find_link("customers", books_id=twin) is None
    assert events(store, run.id)[f"books/contacts/{twin}"][1] == "skipped"
    assert [c for c in emu_reset.emu.crm.records("Contacts").values()
            if c.get("Books_Id__c") == twin] == []
    shown = CliRunner().invoke(app, ["history", "--run", run.id[:8]])
    assert shown.exit_code == 0 and f"crm/Contacts/{lone}" in shown.output

    # Accounts only: the fixed individual and a new one reach CRM Contacts, and an edit of
    # the linked one on either side follows its link.
    emu_reset.emu.advance_clock(2)  # the edits carry a stamp after our writes' second
    person = books_contact(books_http, emu_reset, no_last)["contact_persons"][0]
    books_put(books_http, emu_reset, no_last, {"contact_persons": [
        {"contact_person_id": person["contact_person_id"], "first_name": "Cher",
         "last_name": "Sarkisian", "email": "cher@example.com", "is_primary_contact": True}]})
    new = add_individual(books_http, emu_reset, "Accounts", "Only", "only@example.com")
    crm_put(crm_http, "Contacts", link.crm_id, {"Email": "moved@example.com"})
    books_put(books_http, emu_reset, no_email, {"notes": "from Books"})
    state, run = sync(store, crm_module="accounts", scope="both")
    assert state.is_completed() and store.failures(module="customers").empty, run.message
    for books_id, last in ((no_last, "Sarkisian"), (new, "Only")):
        made = store.find_link("customers", books_id=books_id)
        assert crm_contact(crm_http, made.crm_id)["Last_Name"] == last
    assert run.counts["crm"] == {**run.counts["crm"], "created": 2, "updated": 1}
    person = books_contact(books_http, emu_reset, no_email)["contact_persons"][0]
    assert person["email"] == "moved@example.com"
    assert crm_contact(crm_http, link.crm_id)["Description"] == "from Books"

    # Linked: a rerun writes nothing.
    clear_stats(emu_reset)
    state, run = sync(store)
    assert state.is_completed() and writes(emu_reset) == [], writes(emu_reset)
    assert len(store.links("customers", kind="contacts")) == 3
