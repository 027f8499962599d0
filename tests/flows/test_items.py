"""Items ↔ CRM Products end to end (F6–F9, F11): scope × duplicates, views, plan, merge,
history, failures and bad input, checked on both emulators after each run."""

from __future__ import annotations

from vendors_items_support import last_run, written

from flows.items import sync_items


def test_an_inactive_crm_product_stays_inactive_and_a_rerun_writes_nothing(connected, emu_reset):
    """Regression: a product created in Books from CRM got Books' default status (active), the
    link recorded status None, and the next run 'saw' active in Books and wrote it to CRM."""
    store, emu = connected, emu_reset.emu
    products = emu.crm.records("Products")
    inactive = [i for i, p in products.items() if p.get("Product_Active") is False]
    assert inactive, "the seed has inactive products"
    sync_items(return_state=True)
    sync_items(return_state=True)
    assert written(last_run(store, "items")) == {"books": 0, "crm": 0}
    assert all(products[i]["Product_Active"] is False for i in inactive)

