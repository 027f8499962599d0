"""Items ↔ CRM Products end to end: scope × duplicates, views, plan, merge,
history, failures and bad input, checked on both emulators after each run.

Items: Books is pushed first in two-way mode and wins both conflicts and overwrites (so
duplicates land in CRM); in scope "fetch" CRM data goes to Books only. The seed has one Books
item named exactly like a CRM product (the duplicate every policy test acts on).
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest

from emulators import books_error
from emulators.books.state import INVALID
from flows.items import sync_items
from support.customers import next_second
from support.vendors_items import (
    books_update,
    by_name,
    cf,
    crm_create,
    crm_update,
    data_of,
    events_of,
    failures_of,
    last_run,
    money,
    org_of,
    runner,
    written,
)

run = runner("items", sync_items)


def products(emu) -> dict[str, dict]:
    return emu.crm.records("Products")


def items(emu) -> dict[str, dict]:
    return emu.books.org().records["items"]


def assert_same_product(product: dict, item: dict) -> None:
    """The Books item carries the CRM product's mapped values (money exactly equal)."""
    assert item["name"] == product["Product_Name"]
    assert money(item["rate"]) == money(product["Unit_Price"])
    assert (item.get("sku") or None) == product.get("Product_Code")
    assert (item.get("unit") or None) == product.get("Usage_Unit")
    crm_type = product.get("Product_Type__c")  # none: Books' default, goods
    assert item["product_type"] == {"Goods": "goods", "Services": "service", None: "goods"}[
        crm_type]


def test_an_inactive_crm_product_stays_inactive_and_a_rerun_writes_nothing(store, emu_reset):
    """Regression: a product created in Books from CRM got Books' default status (active), the
    link recorded status None, and the next run 'saw' active in Books and wrote it to CRM."""
    inactive = [i for i, p in products(emu_reset.emu).items() if p.get("Product_Active") is False]
    assert inactive, "the seed has inactive products"
    run(store)
    assert written(run(store)) == {"books": 0, "crm": 0}
    assert all(products(emu_reset.emu)[i]["Product_Active"] is False for i in inactive)


# --------------------------------------------------------------------- scope × duplicates
@pytest.mark.parametrize("scope", ["both", "fetch"])
@pytest.mark.parametrize("policy", ["clone", "overwrite", "skip"])
def test_scope_and_duplicates_policy(store, emu_reset, scope, policy):
    emu = emu_reset.emu
    crm_before = {i: dict(p) for i, p in products(emu).items()}
    books_before = {i: dict(it) for i, it in items(emu).items()}
    dup = ({p["Product_Name"] for p in crm_before.values()}
           & {it["name"] for it in books_before.values()})
    assert len(dup) == 1
    dup_name = dup.pop()
    crm_dup = next(p for p in crm_before.values() if p["Product_Name"] == dup_name)
    books_dup = next(it for it in books_before.values() if it["name"] == dup_name)

    first = run(store, scope=scope, duplicates=policy)

    books_now, crm_now = by_name(items(emu), "name"), by_name(products(emu), "Product_Name")
    # Every CRM product other than the duplicate is now a Books item with its values.
    for product in crm_before.values():
        if product["Product_Name"] != dup_name:
            [item] = books_now[product["Product_Name"]]
            assert_same_product(product, item)
            assert cf(item, "cf_crm_id") == product["id"]
    # Books items other than the duplicate reach CRM in two-way mode only.
    for item in books_before.values():
        if item["name"] == dup_name:
            continue
        if scope == "both":
            [product] = crm_now[item["name"]]
            assert money(product["Unit_Price"]) == money(item["rate"])
            assert product["Books_Id__c"] == item["item_id"]
            assert product["Product_Active"] is True  # Books status active
        else:
            assert item["name"] not in crm_now
    if scope == "fetch":
        assert written(first)["crm"] == 0
        assert all(products(emu)[i] == p for i, p in crm_before.items())  # CRM untouched

    crm_dups, books_dups = crm_now[dup_name], books_now[dup_name]
    assert len(books_dups) == 1  # Books item names are unique: never two
    books_item = books_dups[0]
    failures = failures_of(store, first)
    if policy == "skip":
        assert data_of(books_item) == data_of(books_dup) and crm_dups == [crm_dup]
        assert not failures
        [event] = [e for e in events_of(store, first) if e["name"] == dup_name]
        assert event["action"] == "skipped" and "duplicates: skip" in event["message"]
    elif policy == "overwrite" and scope == "both":
        # Books pushes first and wins: its data replaces the CRM product; Books is unchanged.
        assert data_of(books_item) == data_of(books_dup)
        [product] = crm_dups
        assert product["id"] == crm_dup["id"]
        assert money(product["Unit_Price"]) == money(books_dup["rate"])
        assert product["Product_Code"] == books_dup["sku"]
        assert product["Product_Active"] is True and crm_dup["Product_Active"] is False
        assert product["Books_Id__c"] == books_dup["item_id"]
        assert not failures
    elif policy == "overwrite":
        # Fetch from CRM: the CRM product replaces the Books item; CRM is unchanged.
        assert crm_dups == [crm_dup]
        assert books_item["item_id"] == books_dup["item_id"]
        assert_same_product(crm_dup, books_item)
        assert cf(books_item, "cf_crm_id") == crm_dup["id"]
        assert not failures
    else:  # clone
        # Books cannot hold a second item of that name: the copy takes the clone suffix
        assert data_of(books_item) == data_of(books_dup) and not failures
        [copy_] = books_now[f"{dup_name} (2)"]
        assert cf(copy_, "cf_crm_id") == crm_dup["id"]
        if scope == "both":  # the Books item is cloned into CRM next to the original
            original, clone = sorted(crm_dups, key=lambda p: p["id"])
            assert original == crm_dup
            assert money(clone["Unit_Price"]) == money(books_dup["rate"])
            assert clone["Books_Id__c"] == books_dup["item_id"]
        else:
            assert crm_dups == [crm_dup]

    second = run(store)
    assert written(second) == {"books": 0, "crm": 0}
    assert second.counts["books"]["failed"] == 0  # a clone no longer fails on every run
    if policy != "clone":  # a quiet run: one items scan, one CRM request (304) and one
        # read of the CRM's deleted-records list ...
        lookups = 1 if (scope, policy) == ("both", "skip") else 0
        # ... plus, for a Books item left unlinked by skip, one CRM name lookup every run:
        # items carry no modified stamp, so nothing says it did not change.
        assert second.api_calls == {"books": 1, "crm": 2 + lookups}


# ---------------------------------------------------------------------------------- views
def test_a_view_limits_the_synced_products(store, emu_reset, crm_http):
    emu = emu_reset.emu
    new = crm_create(crm_http, "Products",
                     {"Product_Name": "Fresh Gadget", "Unit_Price": 19.99,
                      "Product_Type__c": "Goods"},
                     {"Product_Name": "Fresh Service", "Unit_Price": 250,
                      "Product_Type__c": "Services", "Usage_Unit": "Hour(s)"})
    first = run(store, scope="fetch", view="Recently Created Products")
    assert first.counts["books"]["created"] == 2
    synced = {cf(it, "cf_crm_id") for it in items(emu).values()} - {None}
    assert synced == set(new)


def test_in_two_way_mode_a_view_does_not_hide_duplicates(store, emu_reset, crm_http):
    """A Books item named like a CRM product outside the view is still a duplicate."""
    emu = emu_reset.emu
    crm_create(crm_http, "Products", {"Product_Name": "Fresh Gadget", "Unit_Price": 19.99})
    before = len(products(emu))
    first = run(store, scope="both", duplicates="skip", view="Recently Created Products")
    dup = {p["Product_Name"] for p in products(emu).values()} & {
        it["name"] for it in items(emu).values()}
    names = [p["Product_Name"] for p in products(emu).values()]
    assert all(names.count(n) == 1 for n in dup), "a duplicate was created in CRM"
    assert len(products(emu)) == before + 2  # the two Books items without a CRM namesake
    assert first.counts["crm"]["skipped"] == 1


def test_an_unknown_view_fails_before_any_write(store, emu_reset):
    emu = emu_reset.emu
    crm_before, books_before = len(products(emu)), len(items(emu))
    store.save_settings("items", {"view": "No Such View"})
    state = sync_items(return_state=True)
    assert state.is_failed()
    history = last_run(store, "items")
    assert history.state == "failed" and "No Such View" in (history.message or "")
    assert (len(products(emu)), len(items(emu))) == (crm_before, books_before)
    assert store.links("items").empty


# ------------------------------------------------------------------------ plan (dry run)
def test_a_dry_run_plans_and_writes_nothing(store, emu_reset):
    emu = emu_reset.emu
    crm_before = {i: dict(p) for i, p in products(emu).items()}
    books_before = {i: dict(it) for i, it in items(emu).items()}
    store.save_settings("items", {"scope": "both", "duplicates": "overwrite"})
    sync_items(dry_run=True, return_state=True)
    plan = last_run(store, "items")
    assert plan.dry_run
    assert products(emu) == crm_before and items(emu) == books_before
    assert store.links("items").empty and store.cursor("items", "crm") is None
    real = run(store)
    assert not real.dry_run
    assert plan.counts == real.counts  # the plan said exactly what the run then did
    assert plan.counts["books"]["created"] == 7 and plan.counts["crm"]["updated"] == 1


# ------------------------------------------------------------ three-way merge, history
def test_three_way_merge_books_wins_a_field_changed_on_both_sides(store_any_db, emu_reset, crm_http,
                                                                 books_http):
    store = store_any_db
    emu = emu_reset.emu
    seeded = set(products(emu))
    run(store, scope="both", duplicates="skip")
    links = store.links("items")
    link = links[links["crm_id"].isin(seeded)].iloc[0]  # a product created in Books
    crm_id, books_id = link["crm_id"], link["books_id"]
    next_second()
    crm_update(crm_http, "Products", crm_id, {"Unit_Price": 111.11, "Description": "from CRM"})
    books_update(books_http, org_of(emu_reset), "items", books_id,
                 {"rate": "222.22", "sku": "SKU-BOOKS-1"})
    second = run(store)
    product, item = products(emu)[crm_id], items(emu)[books_id]
    assert money(item["rate"]) == money(product["Unit_Price"]) == Decimal("222.22")  # Books
    assert item["description"] == product["Description"] == "from CRM"  # merged
    assert item["sku"] == product["Product_Code"] == "SKU-BOOKS-1"  # merged
    assert second.counts["crm"]["conflicts"] == 1
    [event] = [e for e in events_of(store, second) if e["books_id"] == books_id
               and e["side"] == "crm"]
    assert event["action"] == "conflict"
    assert event["conflicts"] == [{"field": "rate", "crm": "111.11", "books": "222.22",
                                   "winner": "books"}]
    # History per record: created, then this run's changes, from what to what.
    history = [e for e in store.events().to_dict("records") if e["crm_id"] == crm_id]
    assert sorted(h["action"] for h in history) == ["conflict", "conflict", "created"]
    changes = {(c["side"], c["field"]): (c["before"], c["after"])
               for h in history for c in h["changes"]}
    assert changes[("crm", "Unit_Price")] == ("111.11", "222.22")
    assert changes[("books", "description")][1] == "from CRM"
    assert changes[("crm", "Product_Code")][1] == "SKU-BOOKS-1"
    assert written(run(store)) == {"books": 0, "crm": 0}


# ------------------------------------------------------------------ bad input and failures
BAD_PRODUCTS = {
    "no price": ({"Product_Name": "No Price"}, "MISSING_REQUIRED", "Unit_Price"),
    "negative": ({"Product_Name": "Negative", "Unit_Price": -5}, "NEGATIVE_AMOUNT", "-5"),
    "absurd": ({"Product_Name": "Absurd", "Unit_Price": 10**13}, "ABSURD_AMOUNT",
               "implausibly large"),
}


def test_bad_products_fail_with_reasons_and_the_rest_syncs(store, emu_reset, crm_http):
    emu = emu_reset.emu
    good = crm_create(crm_http, "Products",
                      {"Product_Name": "Exact Money", "Unit_Price": 999999999999.99},
                      {"Product_Name": "Cheap", "Unit_Price": 0.1},
                      {"Product_Name": "Odd Unit", "Unit_Price": 5, "Usage_Unit": "Spiral Binder"})
    bad = dict(zip(BAD_PRODUCTS, crm_create(crm_http, "Products",
                                             *[b[0] for b in BAD_PRODUCTS.values()]),
                   strict=True))
    # Values the CRM API itself would not take: a price with more decimals than cents (a CRM
    # currency with 3 decimals) and a Product Type picklist value added after the mapping.
    [many, odd_type] = crm_create(crm_http, "Products",
                                  {"Product_Name": "Many Decimals", "Unit_Price": 1},
                                  {"Product_Name": "Digital Thing", "Unit_Price": 1})
    products(emu)[many]["Unit_Price"] = 12.345
    products(emu)[odd_type]["Product_Type__c"] = "Digital"
    bad |= {"decimals": many, "picklist": odd_type}

    first = run(store, scope="fetch")

    failures = {f["crm_id"]: f for f in failures_of(store, first)}
    expected = {**{k: (v[1], v[2]) for k, v in BAD_PRODUCTS.items()},
                "decimals": ("TOO_MANY_DECIMALS", "more than 2 decimal places"),
                "picklist": ("INVALID_RECORD", "'Digital'")}
    assert set(failures) == set(bad.values())
    for key, crm_id in bad.items():
        code, text = expected[key]
        failure = failures[crm_id]
        assert text in failure["message"], (key, failure)
        assert failure["hint"]
    synced = {cf(it, "cf_crm_id"): it for it in items(emu).values()}
    assert not set(bad.values()) & set(synced)
    for crm_id in good:  # money exact, unit passed through (Books takes any unit text)
        assert_same_product(products(emu)[crm_id], synced[crm_id])
    assert money(synced[good[0]]["rate"]) == Decimal("999999999999.99")
    assert synced[good[2]]["unit"] == "Spiral Binder"
    assert first.counts["books"]["created"] == len(products(emu)) - len(bad) - 1  # - dup
    assert first.counts["books"]["failed"] == len(bad)

    # Nothing is lost: fixed at the source, the next run syncs it and resolves the failure.
    next_second()
    crm_update(crm_http, "Products", bad["negative"], {"Unit_Price": 5})
    second = run(store)
    assert second.counts["books"]["created"] == 1
    assert cf(by_name(items(emu), "name")["Negative"][0], "cf_crm_id") == bad["negative"]
    open_keys = set(store.failures(module="items")["crm_id"])
    assert bad["negative"] not in open_keys and bad["absurd"] in open_keys


@pytest.fixture
def multi_currency(emu_reset):
    emu_reset.emu.config.crm_multi_currency = True
    yield
    emu_reset.emu.config.crm_multi_currency = False


def test_a_product_in_another_currency_fails(multi_currency, store, emu_reset, crm_http):
    emu = emu_reset.emu
    [euro, dollar] = crm_create(crm_http, "Products",
                                {"Product_Name": "Euro Thing", "Unit_Price": 10,
                                 "Currency": "EUR"},
                                {"Product_Name": "Dollar Thing", "Unit_Price": 10,
                                 "Currency": "USD"})
    first = run(store, scope="fetch")
    [failure] = failures_of(store, first)
    assert failure["crm_id"] == euro
    assert "Currency is EUR, not the Books base currency USD" in failure["message"]
    synced = {cf(it, "cf_crm_id") for it in items(emu).values()}
    assert dollar in synced and euro not in synced


# ------------------------------------------------------------------------- cost (API calls)
def test_a_quiet_run_writes_nothing_and_costs_one_scan_of_the_items(store, emu_reset):
    """Books items have no modified-time filter: each run lists them all (200 a page) and the
    links tell which changed. With every item linked, a quiet run costs ceil(items / 200)
    Books requests and one CRM request (If-Modified-Since → 304) — plus, because the cursor
    is inclusive and stamps are whole seconds, one page per 200 of our own CRM writes stamped
    in the cursor's very second (they come back once as echoes; how many depends on how fast
    the first run wrote)."""
    emu = emu_reset.emu
    emu.reset(seed=7, sizes=dataclasses.replace(emu.config.sizes, books_items=205))
    first = run(store, scope="both", duplicates="overwrite")
    assert first.state == "completed"
    cursor = store.cursor("items", "crm").isoformat()
    at_boundary = sum(1 for p in emu.crm.records("Products").values()
                      if p["Modified_Time"] == cursor)
    quiet = run(store)
    count = len(items(emu))
    assert count > 200
    assert written(quiet) == {"books": 0, "crm": 0}
    assert quiet.api_calls == {"books": math.ceil(count / 200),  # + the deleted-records list
                               "crm": max(1, math.ceil(at_boundary / 200)) + 1}



# ------------------------------------------------------- status both ways (Books' actions)
def _active_linked(store, emu) -> tuple[str, str]:
    """(CRM id, Books id) of a linked product that is active on both sides."""
    links = store.links("items")
    for crm_id, books_id in zip(links["crm_id"], links["books_id"], strict=True):
        if products(emu)[crm_id].get("Product_Active") is True and \
                items(emu)[books_id]["status"] == "active":
            return crm_id, books_id
    raise AssertionError("no active linked product")


def _status_calls(emu, books_id: str) -> list[str]:
    """The active/inactive calls the Books emulator served for one item."""
    return [e["path"].rsplit("/", 1)[1] for e in list(emu.stats.log)
            if e["method"] == "POST" and e["path"].startswith(f"/books/v3/items/{books_id}/")]


def test_crm_deactivates_and_reactivates_a_product_books_follows_once(store, emu_reset,
                                                                     crm_http):
    emu = emu_reset.emu
    run(store, scope="both", duplicates="skip")
    crm_id, books_id = _active_linked(store, emu)
    next_second()
    crm_update(crm_http, "Products", crm_id, {"Product_Active": False})
    emu.stats.clear()
    off = run(store)
    assert items(emu)[books_id]["status"] == "inactive"
    assert written(off) == {"books": 1, "crm": 0} and off.state == "completed"
    # One scan page, the currency check before writing, the inactive call: no item update.
    assert off.api_calls["books"] == 3
    quiet = run(store)
    assert written(quiet) == {"books": 0, "crm": 0}  # the link holds the new status
    assert products(emu)[crm_id]["Product_Active"] is False
    assert _status_calls(emu, books_id) == ["inactive"]  # exactly once over both runs
    next_second()
    crm_update(crm_http, "Products", crm_id, {"Product_Active": True, "Unit_Price": 12.5})
    on = run(store)
    item = items(emu)[books_id]
    assert item["status"] == "active" and money(item["rate"]) == Decimal("12.5")
    assert on.api_calls["books"] == 4  # scan, currency check, item update, active call
    assert written(run(store)) == {"books": 0, "crm": 0}
    assert _status_calls(emu, books_id) == ["inactive", "active"]


def test_a_new_inactive_crm_product_becomes_an_inactive_books_item(store, emu_reset, crm_http):
    emu = emu_reset.emu
    run(store, scope="both", duplicates="skip")
    [crm_id] = crm_create(crm_http, "Products", {"Product_Name": "Retired Widget",
                                                 "Unit_Price": 9, "Product_Active": False})
    created = run(store)
    [item] = [it for it in items(emu).values() if cf(it, "cf_crm_id") == crm_id]
    assert item["status"] == "inactive" and created.state == "completed"
    assert written(run(store)) == {"books": 0, "crm": 0}
    assert products(emu)[crm_id]["Product_Active"] is False


def test_a_books_status_change_still_reaches_crm(store, emu_reset, books_http):
    emu = emu_reset.emu
    run(store, scope="both", duplicates="skip")
    crm_id, books_id = _active_linked(store, emu)
    next_second()
    answer = books_http.post(f"/books/v3/items/{books_id}/inactive",
                             params={"organization_id": org_of(emu_reset)}).json()
    assert answer["code"] == 0
    second = run(store)
    assert products(emu)[crm_id]["Product_Active"] is False
    assert written(second) == {"books": 0, "crm": 1}
    assert written(run(store)) == {"books": 0, "crm": 0}


def test_a_refused_status_call_is_a_failure_row_and_the_rerun_fixes_it(store, emu_reset,
                                                                       crm_http, monkeypatch):
    emu = emu_reset.emu
    run(store, scope="both", duplicates="skip")
    crm_id, books_id = _active_linked(store, emu)
    next_second()
    crm_update(crm_http, "Products", crm_id, {"Product_Active": False, "Description": "old"})
    real_org_of = emu.books._org_of

    def refusing(request):  # the emulator refuses this one item's inactive call
        if request.url.path.endswith(f"/items/{books_id}/inactive"):
            raise books_error(INVALID, "The item cannot be marked as inactive right now.")
        return real_org_of(request)

    monkeypatch.setattr(emu.books, "_org_of", refusing)
    failed = run(store)
    item = items(emu)[books_id]
    assert item["description"] == "old" and item["status"] == "active"  # the write stands
    [failure] = failures_of(store, failed)
    assert failure["books_id"] == books_id and failure["field"] == "status"
    assert "marking it inactive failed" in failure["message"]
    assert "cannot be marked as inactive" in failure["message"]
    monkeypatch.setattr(emu.books, "_org_of", real_org_of)
    fixed = run(store)
    assert items(emu)[books_id]["status"] == "inactive" and fixed.state == "completed"
    assert not store.failures(module="items").to_dict("records")  # resolved
    assert written(run(store)) == {"books": 0, "crm": 0}
