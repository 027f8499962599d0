"""Customers both ways: two-way, an individual Books customer goes to CRM Contacts and a
business one to CRM Accounts whatever the CRM module setting; what the settings keep out is
a skip row with its reason, never silence (pure planning, no emulator)."""

from __future__ import annotations

import pandas as pd
import pytest

from crmbooks.settings import parse_module_settings
from crmbooks.sync.mapping import route_books, route_crm_contacts, to_crm
from crmbooks.sync.modules import CUSTOMERS
from crmbooks.sync.plan import kept_out_rows, plan_counts, plan_module
from mappings.schema import default_mapping

CUST = default_mapping("customers")
MODES = [("accounts", {}), ("accounts+contacts", {}),
         ("accounts+contacts", {"include_unassociated_contacts": True}), ("contacts", {})]


def settings(**kw):
    return parse_module_settings("customers", kw)


def individual(books_id, first, last, email=None):
    person = {"contact_person_id": f"p{books_id}", "first_name": first, "last_name": last,
              "email": email, "is_primary_contact": True}
    return {"contact_id": books_id, "contact_name": " ".join(p for p in (first, last) if p),
            "contact_type": "customer", "customer_sub_type": "individual",
            "contact_persons": [person]}


def business(books_id, name):
    return {"contact_id": books_id, "contact_name": name, "contact_type": "customer",
            "customer_sub_type": "business", "contact_persons": []}


def kinds(s) -> list[str]:
    return [k.name for k in CUSTOMERS.active_kinds(s)]


@pytest.mark.parametrize(("mode", "extra"), MODES)
def test_two_way_always_syncs_individual_customers(mode, extra):
    both = settings(crm_module=mode, scope="both", **extra)
    assert "contacts" in kinds(both)
    # The configured kinds (which CRM modules feed the module) stay the setting's own.
    fed = [k.name for k in CUSTOMERS.configured_kinds(both)]
    assert ("contacts" in fed) == (mode == "contacts" or bool(extra))
    one_way = settings(crm_module=mode, scope="fetch", **extra)
    assert kinds(one_way) == fed


def test_linked_individuals_follow_their_link_in_every_mode():
    contacts = pd.DataFrame([
        {"id": "1", "Last_Name": "Lone", "Account_Name": None},
        {"id": "2", "Last_Name": "Mine", "Account_Name": None},
        {"id": "3", "Last_Name": "Person", "Account_Name": {"id": "9"}}])
    routed = route_crm_contacts(contacts, settings(crm_module="accounts"), {"2"})
    assert routed["contacts"].id.tolist() == ["2"]
    assert routed["unsynced"].id.tolist() == ["1", "3"]
    routed = route_crm_contacts(contacts, settings(crm_module="accounts+contacts"), {"2"})
    assert (routed["contacts"].id.tolist(), routed["contact_persons"].id.tolist(),
            routed["unsynced"].id.tolist()) == (["2"], ["3"], ["1"])
    # Linked as an individual, a contact someone later put under an account stays one.
    routed = route_crm_contacts(contacts, settings(crm_module="accounts+contacts"), {"3"})
    assert (routed["contacts"].id.tolist(), routed["unsynced"].id.tolist()) == (["3"], ["1", "2"])


@pytest.mark.parametrize(("mode", "extra"), MODES)
def test_an_individual_books_customer_is_planned_into_crm_contacts(mode, extra):
    s = settings(crm_module=mode, scope="both", **extra)
    books = pd.DataFrame([individual("b1", "Ann", "Lee", "ann@x.com"),
                          business("b2", "Zylker")], dtype=object)
    routed = route_books(CUSTOMERS, s, books)
    mapped, failures = {}, []
    for kind in CUSTOMERS.active_kinds(s):
        if kind.name in routed:
            mapped[kind.name], failed = to_crm(routed[kind.name], CUST, kind, CUSTOMERS)
            failures.append(failed)
    kept = kept_out_rows(CUSTOMERS, s, books=routed["unsynced"])
    plan = plan_module(CUSTOMERS, s, CUST, crm={}, books=mapped,
                       failures=pd.concat(failures), kept_out=kept)
    rows = {r["record_key"]: r for r in plan.to_dict("records")}
    ann = rows["books/contacts/b1"]
    assert (ann["kind"], ann["action"], ann["target"]) == ("contacts", "create", "crm")
    assert ann["crm_payload"]["Last_Name"] == "Lee"
    assert ann["crm_payload"]["Email"] == "ann@x.com"
    zylker = rows["books/contacts/b2"]
    if mode == "contacts":  # a business customer has nowhere to go: said, not silent
        assert (zylker["action"], zylker["target"]) == ("skip", "crm")
        assert "--crm-module contacts" in zylker["reason"]
        assert plan_counts(plan)["crm"] == {**plan_counts(plan)["crm"], "created": 1,
                                            "skipped": 1}
    else:
        assert (zylker["kind"], zylker["action"]) == ("accounts", "create")


def test_crm_contacts_the_settings_keep_out_are_skips_with_their_reason():
    lone = pd.DataFrame([{"id": "7", "First_Name": "Solo", "Last_Name": "Person"}])
    rows = kept_out_rows(CUSTOMERS, settings(crm_module="accounts+contacts"), crm=lone)
    assert [(r["record_key"], r["action"], r["target"], r["name"]) for r in rows] == [
        ("crm/Contacts/7", "skip", "books", "Solo Person")]
    assert "--include-unassociated-contacts" in rows[0]["reason"]
    (row,) = kept_out_rows(CUSTOMERS, settings(crm_module="accounts"), crm=lone)
    assert "--crm-module accounts" in row["reason"]
    plan = plan_module(CUSTOMERS, settings(), CUST, crm={}, books={}, kept_out=[row])
    assert plan_counts(plan)["books"]["skipped"] == 1


def test_an_individual_without_a_last_name_is_a_clear_failure_not_a_write():
    s = settings(crm_module="accounts", scope="both")
    routed = route_books(CUSTOMERS, s, pd.DataFrame([individual("b3", "Cher", None)],
                                                    dtype=object))
    mapped, failed = to_crm(routed["contacts"], CUST, CUSTOMERS.kind("contacts"), CUSTOMERS)
    assert mapped.empty
    plan = plan_module(CUSTOMERS, s, CUST, crm={}, books={"contacts": mapped},
                       failures=failed)
    (row,) = plan.to_dict("records")
    assert (row["record_key"], row["action"], row["target"]) == ("books/contacts/b3", "fail",
                                                                "crm")
    assert "Last_Name" in row["reason"] and "empty" in row["reason"]
