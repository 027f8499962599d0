"""Failures belong to a Books organization: a store sees, bumps and resolves only its own.

On SQLite (always) and PostgreSQL (when CRMBOOKS_TEST_POSTGRES_URL is set), through the
`store` fixture of this folder (organization 20099001).
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from crmbooks.store import Failure, Store, utcnow

OTHER = "20099002"
KEY = "Quotes:4150868000000100001"  # the same CRM deal's quote fails in both organizations


def _fail(store: Store, message: str) -> str:
    run = store.start_run("transactions")
    store.add_failures(run, "transactions", [{"side": "books", "record_key": KEY,
                                              "message": message}])
    return run


def test_a_retry_in_one_organization_never_resolves_anothers_failure(store):
    other = Store(store.engine, org_id=OTHER)
    _fail(store, "primary: tax rate missing")
    _fail(other, "other: customer not linked")

    assert list(store.failures(module="transactions")["message"]) == ["primary: tax rate missing"]
    assert list(other.failures(module="transactions")["message"]) == ["other: customer not linked"]

    assert other.resolve_failures("transactions", [KEY]) == 1  # the other org's retry worked
    assert other.failures(module="transactions").empty
    [still] = store.failures(module="transactions").to_dict("records")
    assert still["message"] == "primary: tax rate missing" and not still["resolved"]


def test_a_failure_again_counts_an_attempt_in_its_own_organization_only(store):
    other = Store(store.engine, org_id=OTHER)
    _fail(store, "first")
    _fail(other, "first")
    _fail(other, "again")
    assert store.failures(module="transactions").iloc[0]["attempts"] == 1
    assert other.failures(module="transactions").iloc[0]["attempts"] == 2
    ids = store.failures(module="transactions")["id"].tolist()
    assert other.bump_attempts(ids) == 0  # not its failure
    assert store.bump_attempts(ids) == 1


def test_failures_without_an_organization_are_the_primary_organizations(store):
    store.save_connection(books_org_id=store.org_id, extra_books_org_ids=[OTHER])
    with store.session() as s:  # a row from before failures carried their organization
        s.exec(insert(Failure).values(org_id=None, module="customers", side="books",
                                      record_key="crm/Accounts/1", message="old", attempts=1,
                                      resolved=False, created_at=utcnow(),
                                      updated_at=utcnow()))
        s.commit()
    other = Store(store.engine, org_id=OTHER)
    assert other.failures(module="customers").empty
    assert other.resolve_failures("customers", ["crm/Accounts/1"]) == 0
    assert list(store.failures(module="customers")["message"]) == ["old"]

    store.add_failures(None, "customers", [{"record_key": "crm/Accounts/1", "message": "new"}])
    [row] = store.failures(module="customers").to_dict("records")
    assert row["attempts"] == 2 and row["message"] == "new"
    with store.session() as s:
        assert s.get(Failure, int(row["id"])).org_id == store.org_id  # now its own
    assert store.resolve_failures("customers", ["crm/Accounts/1"]) == 1


def test_a_store_without_an_organization_sees_every_organizations_failures(store):
    _fail(store, "primary")
    run = _fail(Store(store.engine, org_id=OTHER), "other")
    everyone = Store(store.engine)
    assert sorted(everyone.failures(module="transactions")["message"]) == ["other", "primary"]
    assert list(everyone.failures(run_id=run)["message"]) == ["other"]


def test_retry_targets_come_grouped_by_organization_the_primary_first(store):
    from crmbooks.operations import NothingToDo, failed_targets

    store.save_connection(books_org_id=store.org_id, extra_books_org_ids=[OTHER])
    _fail(Store(store.engine, org_id=OTHER), "other")
    with store.session() as s:  # an unowned row from before failures carried one: primary's
        s.exec(insert(Failure).values(org_id=None, module="customers", side="books",
                                      record_key="crm/Accounts/1", message="old", attempts=1,
                                      resolved=False, created_at=utcnow(),
                                      updated_at=utcnow()))
        s.commit()
    _fail(store, "primary")
    everyone = Store(store.engine)
    assert list(everyone.failures()["org_id"]) == [OTHER, store.org_id, store.org_id]

    chosen = failed_targets(everyone)

    assert list(chosen) == [store.org_id, OTHER]
    assert chosen[store.org_id] == {"customers": {"crm": ["1"]},
                                    "transactions": {"crm:Quotes": ["4150868000000100001"]}}
    assert chosen[OTHER] == {"transactions": {"crm:Quotes": ["4150868000000100001"]}}
    assert list(failed_targets(store, org_id=OTHER)) == [OTHER]  # the caller's scope ignored
    assert list(failed_targets(everyone, module="customers")) == [store.org_id]
    with pytest.raises(NothingToDo, match="for module customers in Books organization "
                                          "20099002$"):
        failed_targets(everyone, module="customers", org_id=OTHER)
