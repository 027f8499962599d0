"""State store tests on SQLite (always) and PostgreSQL (when CRMBOOKS_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crmbooks.store import Store, StoreError, database_url, make_engine


def test_database_url_defaults_to_sqlite_under_crmbooks_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBOOKS_DATABASE_URL", raising=False)
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'crmbooks.db'}"
    assert (tmp_path / "home").is_dir()


@pytest.mark.parametrize("given", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_database_url_rewrites_postgres_to_psycopg(given, monkeypatch):
    monkeypatch.delenv("CRMBOOKS_DATABASE_URL", raising=False)
    assert database_url(given) == "postgresql+psycopg://u@h/db"


def test_database_url_from_environment(monkeypatch):
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", "postgresql://x@y/z")
    assert database_url() == "postgresql+psycopg://x@y/z"


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_link_upsert_keeps_one_row_per_pair_and_ids_as_strings(store):
    store.upsert_link("customers", crm_id=4150868000000002175, books_id="460000000026049",
                      kind="accounts", crm_module="Accounts",
                      crm_values={"Account_Name": "Zylker", "Unit_Price": Decimal("10.50")},
                      books_values={"contact_name": "Zylker"})
    store.upsert_link("customers", crm_id="4150868000000002175", books_id="460000000026049",
                      crm_module="Accounts", books_values={"contact_name": "Zylker Inc"})
    links = store.links("customers")
    assert len(links) == 1
    row = links.iloc[0]
    assert row.crm_id == "4150868000000002175" and isinstance(row.crm_id, str)
    assert row.crm_values == {"Account_Name": "Zylker", "Unit_Price": "10.50"}
    assert row.books_values == {"contact_name": "Zylker Inc"}


def test_relinking_one_side_replaces_the_old_pair(store):
    store.upsert_link("vendors", crm_id="1", books_id="A", crm_module="Vendors")
    store.upsert_link("vendors", crm_id="2", books_id="B", crm_module="Vendors")
    store.upsert_link("vendors", crm_id="1", books_id="B", crm_module="Vendors")
    links = store.links("vendors")
    assert links[["crm_id", "books_id"]].values.tolist() == [["1", "B"]]


def test_link_requires_both_ids_and_known_origin(store):
    with pytest.raises(StoreError, match="both crm_id and books_id"):
        store.upsert_link("items", crm_id="1", books_id=None, crm_module="Products")
    with pytest.raises(StoreError, match="made_by"):
        store.upsert_link("items", crm_id="1", books_id="2", crm_module="Products",
                          made_by="robot")


def test_links_are_scoped_by_organization(store):
    other = Store(store.engine, org_id="20099002")
    store.upsert_link("items", crm_id="1", books_id="2", crm_module="Products")
    other.upsert_link("items", crm_id="1", books_id="9", crm_module="Products")
    assert store.find_link("items", crm_id="1").books_id == "2"
    assert other.find_link("items", books_id="9").crm_id == "1"
    assert store.delete_link("items", crm_id="1") is True
    assert store.links("items").empty and len(other.links("items")) == 1


def test_links_of_reads_only_the_asked_links_in_chunks(store, monkeypatch):
    """The targeted read (an incremental run reads the links of what it fetched):
    by either side's id, each link once, across chunks, scoped by module and organization."""
    monkeypatch.setattr("crmbooks.store.links.ID_CHUNK", 3)  # several IN (...) chunks
    store.upsert_links("customers", [
        {"crm_id": f"c{i}", "books_id": f"b{i}", "kind": "accounts", "crm_module": "Accounts",
         "crm_values": {"Account_Name": f"A{i}"}, "books_values": {"contact_name": f"A{i}"}}
        for i in range(10)])
    store.upsert_link("vendors", crm_id="c1", books_id="b1", crm_module="Vendors")
    Store(store.engine, org_id="20099002").upsert_link("customers", crm_id="c2", books_id="b2",
                                                       crm_module="Accounts")
    found = store.links_of("customers", crm_ids=["c1", "c2", "c3", "c4", "nope", None],
                           books_ids=["b4", "b8", "b9"])
    assert sorted(found["crm_id"]) == ["c1", "c2", "c3", "c4", "c8", "c9"]
    assert list(found.columns) == list(store.links("customers").columns)
    row = found[found["crm_id"] == "c8"].iloc[0]
    assert row.books_values == {"contact_name": "A8"} and row.crm_values == {"Account_Name": "A8"}
    assert store.links_of("customers").empty
    assert store.links_of("customers", crm_ids=["b1"]).empty  # a Books id is not a CRM id


def test_link_ids_are_every_link_without_values(store):
    store.upsert_link("customers", crm_id=7, books_id="b7", kind="accounts",
                      crm_module="Accounts", crm_values={"Account_Name": "Zylker"})
    store.upsert_link("customers", crm_id="p1", books_id="bp1", kind="contact_persons",
                      crm_module="Contacts")
    store.upsert_link("vendors", crm_id="v1", books_id="bv1", crm_module="Vendors")
    ids = store.link_ids("customers")
    assert list(ids.columns) == ["crm_id", "books_id", "kind"]
    assert sorted(ids.values.tolist()) == [["7", "b7", "accounts"],
                                           ["p1", "bp1", "contact_persons"]]
    assert list(store.link_ids("items").columns) == ["crm_id", "books_id", "kind"]


def test_parallel_link_writes_do_not_duplicate(store):
    def write(i: int) -> None:
        store.upsert_link("customers", crm_id=str(i % 5), books_id=f"b{i % 5}",
                          crm_module="Accounts")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.links("customers").crm_id) == ["0", "1", "2", "3", "4"]


def test_cursor_only_moves_forward(store):
    assert store.cursor("customers", "crm") is None
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert store.advance_cursor("customers", "crm", t0) == t0
    assert store.advance_cursor("customers", "crm", t0 - timedelta(hours=1)) == t0
    later = t0 + timedelta(minutes=5)
    store.advance_cursor("customers", "crm", later)
    assert store.cursor("customers", "crm") == later
    assert store.cursor("customers", "books") is None
    with pytest.raises(StoreError, match="timezone-aware"):
        store.advance_cursor("customers", "crm", datetime(2030, 1, 1))


def test_cursors_remember_the_settings_they_settled_under(store):
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    store.advance_cursor("vendors", "crm", t0)
    assert store.cursor_settings("vendors", "crm") is None  # settled before it was kept
    store.settle_cursor_settings("vendors", ("crm", "books"), "f1")
    # Only existing cursors take it; a side never read stays without a cursor.
    assert store.cursor_settings("vendors", "crm") == "f1"
    assert store.cursor_settings("vendors", "books") is None
    assert store.cursor("vendors", "books") is None
    store.advance_cursor("vendors", "crm", t0 + timedelta(seconds=1))
    assert store.cursor_settings("vendors", "crm") == "f1"  # moving keeps it
    store.settle_cursor_settings("vendors", ("crm",), "f2")
    assert store.cursor_settings("vendors", "crm") == "f2"
    assert store.cursor_settings("customers", "crm") is None


def test_runs_events_and_history_newest_first(store):
    first = store.start_run("customers", settings_version=1)
    second = store.start_run("customers", dry_run=True)
    store.add_events(first, "customers", [
        {"side": "books", "record_key": "crm/Accounts/1", "crm_id": "1", "books_id": "b1",
         "action": "updated",
         "changes": [{"field": "rate", "before": Decimal("1.00"), "after": Decimal("2.50")}]},
        {"side": "books", "record_key": "crm/Accounts/2", "action": "skipped",
         "message": "duplicate name, policy skip"},
    ])
    run = store.finish_run(first, "completed", counts={"books": {"updated": 1, "skipped": 1}},
                           api_calls={"crm": 2, "books": 3})
    assert run.finished_at is not None
    assert [r.id for r in store.list_runs("customers")][0] == second
    events = store.events(first)
    assert events.action.tolist() == ["updated", "skipped"]
    assert events.changes[0] == [{"field": "rate", "before": "1.00", "after": "2.50"}]
    assert store.run(first).counts == {"books": {"updated": 1, "skipped": 1}}
    with pytest.raises(StoreError, match="action"):
        store.add_events(first, "customers", [{"record_key": "x", "action": "exploded"}])
    with pytest.raises(StoreError, match="state"):
        store.finish_run(first, "great")


def test_failures_count_attempts_scrub_secrets_and_resolve(store):
    run = store.start_run("items")
    row = {"side": "books", "record_key": "crm/Products/7", "crm_id": "7",
           "payload": {"name": "Widget", "rate": Decimal("9.99"), "access_token": "t0k"},
           "code": "3062", "field": "name", "message": "already exists", "hint": "rename it"}
    store.add_failures(run, "items", [row])
    store.add_failures(store.start_run("items"), "items", [row])
    failures = store.failures(module="items")
    assert len(failures) == 1 and failures.attempts[0] == 2
    assert failures.payload[0] == {"name": "Widget", "rate": "9.99", "access_token": "***"}
    assert store.bump_attempts(failures.id.tolist()) == 1
    assert store.resolve_failures("items", ["crm/Products/7"]) == 1
    assert store.failures(module="items").empty
    assert len(store.failures(module="items", unresolved_only=False)) == 1


def test_settings_are_versioned_and_the_latest_is_active(store):
    assert store.active_settings("customers") is None
    assert store.save_settings("customers", {"scope": "fetch"}) == 1
    assert store.save_settings("customers", {"scope": "both"}, note="two-way") == 2
    assert store.active_settings("customers") == (2, {"scope": "both"})
    history = store.settings_history("customers")
    assert [(h.version, h.active) for h in history] == [(2, True), (1, False)]


def test_connection_stores_no_secrets(store):
    store.save_connection(dc="eu", client_id="crmbooks-demo", books_org_id="20099001",
                          books_org={"name": "Zylker", "currency": "USD"})
    assert store.connection().books_org == {"name": "Zylker", "currency": "USD"}
    with pytest.raises(StoreError, match="unknown connection fields: client_secret"):
        store.save_connection(client_secret="nope")
