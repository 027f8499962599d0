"""`crmbooks demo`: the main job on the embedded emulators, with nothing else to set up."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import (
    MODULE_ORDER,
    console,
    prepare_local_prefect,
    run_sync,
    use_prefect_server,
)

#: Books requests per minute the demo's emulators allow (real Books: 100). The clients pace
#: at the limit the emulators are started with, so the demo does not wait a minute and a
#: half for a limit the local emulator does not need; connecting to real Zoho keeps 100.
DEMO_BOOKS_LIMIT = 6000


def demo(
    seed: int = typer.Option(7, help="Seed of the emulators' sample data."),
    accounts: int = typer.Option(40, help="CRM accounts to seed."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
):
    """The main job on the embedded default: emulators, connect, sync every module.

    Transactions and deal triggers, off on a new connection, are turned on first; a deal of a
    new CRM account moves to the quote stage; one `sync all` runs customers, vendors, items,
    transactions and deal triggers in dependency order, and the quote shows on the deal and its
    account in the CRM. Then the customer is invoiced in Books and, after a sync of customers
    and transactions, the CRM account shows its outstanding receivables. State goes to
    CRMBOOKS_HOME/demo; the runs show in the Prefect UI of `crmbooks up`.

    Example: crmbooks demo --accounts 200
    """
    import os
    import shutil
    import time

    from crmbooks.connect import connect_demo
    from crmbooks.store.engine import crmbooks_home

    started = time.monotonic()
    base = crmbooks_home()
    home = base / "demo"
    shutil.rmtree(home, ignore_errors=True)  # the emulators start fresh, so does their state
    # Prefect's home stays the base one: its server is the one later commands and `crmbooks
    # up` use, so the demo neither starts a server of its own nor deletes one's database.
    os.environ.setdefault("PREFECT_HOME", str(base / "prefect"))
    os.environ["CRMBOOKS_HOME"] = str(home)
    os.environ.pop("CRMBOOKS_DATABASE_URL", None)
    prepare_local_prefect()
    from emulators import EmulatorConfig, EmulatorServer, Sizes

    say = (lambda *_a: None) if json_out else (
        lambda text: console.print(text, highlight=False))
    # No seeded deals, so none of the CRM quotes, sales orders and invoices seeded with them:
    # those name the seeded accounts, which the duplicates policy `skip` leaves unlinked (Books
    # has customers of the same names), so each would fail its transactions run. The deal the
    # demo shows is the one it makes.
    config = EmulatorConfig(seed=seed, sizes=Sizes(accounts=accounts, deals=0),
                            books_rate_limit=DEMO_BOOKS_LIMIT)
    codes = []
    with EmulatorServer(config) as server:
        store = connect_demo(server)
        say(f"[bold]1. Zoho emulators[/] (CRM, Books, Accounts) at {server.base_url} with "
            f"{accounts} CRM accounts and their contacts, vendors and products; connected "
            f"as an operator would (`crmbooks connect`). Books allows {DEMO_BOOKS_LIMIT} "
            f"requests a minute here (real Books: 100), and crmbooks paces at it.")
        use_prefect_server()
        deal = set_the_scene(store, say)
        say(f"[bold]3. Sync all[/]: every module in dependency order "
            f"({', '.join(MODULE_ORDER)}), CRM ↔ Books, as `crmbooks sync all` does (a module "
            "turned off would be listed as skipped, with what turns it on):")
        runs: list[dict] = []
        codes.append(run_sync(list(MODULE_ORDER), False, json_out, into=runs))
        if not json_out:
            tell(runs)
            tell_quote(deal)
        invoice = invoice_in_books(store, deal, say)
        say("[bold]5. Sync the two modules an invoice concerns[/] (`crmbooks sync customers "
            "transactions`: customers refresh the Books figures of the customers whose "
            "invoices changed, transactions copy the invoice to the CRM):")
        runs = []
        codes.append(run_sync(list(INVOICE_MODULES), False, json_out, into=runs))
        if not json_out:
            tell(runs)
            tell_receivables(deal, invoice)
    if not json_out:
        epilogue(home, time.monotonic() - started)
    raise typer.Exit(max(codes))


#: What the demo turns on before it syncs, as `crmbooks configure` would save it: every
#: transaction type that syncs by default, and quote-mode deal triggers whose one line is the
#: demo's own Books item (CRM quote lines need a product: the items sync links it first).
DEMO_QUOTE_STAGE, DEMO_WON_STAGE = "Proposal/Price Quote", "Closed Won"
DEMO_DEAL_AMOUNT = "1250.50"
#: Names no seeded record has, so that the duplicates policy links them instead of skipping.
DEMO_ACCOUNT, DEMO_ITEM = "Northwind Traders (crmbooks demo)", "Seat licence, one year (demo)"
#: What the demo's last sync runs: the modules a new Books invoice changes something in.
INVOICE_MODULES = ("customers", "transactions")


def set_the_scene(store, say) -> dict:
    """Step 2: transactions enabled and deal triggers configured (as `crmbooks configure`
    saves them) for the demo's Books item; in the CRM a new account whose deal a salesperson
    moves to the quote stage. Returns the deal and account the later steps tell about."""
    from decimal import Decimal

    from crmbooks.runtime import get_runtime
    from crmbooks.settings import parse_module_settings

    runtime = get_runtime()
    crm, books = runtime.crm, runtime.books
    item = books.create("items", {"name": DEMO_ITEM, "rate": Decimal(DEMO_DEAL_AMOUNT)})
    [account] = crm.create("Accounts", [{"Account_Name": DEMO_ACCOUNT}])
    for made, what in ((item, "item"), (account, "account")):
        if not made.ok:
            raise RuntimeError(f"the emulators refused the demo's {what}: {made}")
    for module, settings in (
            ("transactions", {"enabled": True}),
            ("deals", {"enabled": True, "mode": "quote", "create_stage": DEMO_QUOTE_STAGE,
                       "accept_stage": DEMO_WON_STAGE, "invoice_on_accept": True,
                       "item": item.id})):
        store.save_settings(module, parse_module_settings(module, settings).model_dump(
            mode="json"), note="crmbooks demo")
    name = "Northwind: 40 seats"
    [deal] = crm.create("Deals", [{"Deal_Name": name, "Stage": "Qualification",
                                   "Amount": Decimal(DEMO_DEAL_AMOUNT),
                                   "Account_Name": {"id": account.id}}])
    # the salesperson's move: what the trigger acts on
    moved = crm.update("Deals", [{"id": deal.id, "Stage": DEMO_QUOTE_STAGE}]) if deal.ok else []
    if not deal.ok or not moved[0].ok:
        raise RuntimeError(f"the CRM emulator refused the demo's deal: {deal} {moved}")
    say(f"[bold]2. Transactions and deal triggers on[/] (off on a new connection): as "
        f"`crmbooks configure transactions --enable` and `crmbooks configure deals --mode "
        f"quote --create-stage \"{DEMO_QUOTE_STAGE}\" --accept-stage \"{DEMO_WON_STAGE}\" "
        f"--invoice-on-accept --item {item.id}` save them ({item.id}: the Books item "
        f"'{DEMO_ITEM}'). In the CRM, a salesperson adds the account '{DEMO_ACCOUNT}' and its "
        f"deal '{name}' ({DEMO_DEAL_AMOUNT}), and moves the deal to the quote stage, "
        f"{DEMO_QUOTE_STAGE}.")
    return {"id": deal.id, "name": name, "account": account.id, "account_name": DEMO_ACCOUNT,
            "item": item.id}


def tell_quote(deal: dict) -> None:
    """Where the deal's quote shows in the CRM: the deal's and the account's Quotes lists,
    read back through the CRM API."""
    from crmbooks.runtime import get_runtime

    crm, fields = get_runtime().crm, ["Subject", "Books_Number__c", "Status", "Grand_Total"]
    on_deal = crm.related("Deals", deal["id"], "Quotes", fields)
    on_account = {q["id"] for q in crm.related("Accounts", deal["account"], "Quotes", fields)}
    if not on_deal:
        console.print(f"  The deal '{deal['name']}' has no quote in the CRM yet (see "
                      "`crmbooks history --failures`).", highlight=False)
        return
    for quote in on_deal:
        where = ("the Quotes list of the deal and the Quotes list of the account "
                 f"'{deal['account_name']}'" if quote["id"] in on_account
                 else "the Quotes list of the deal (not of its account)")
        console.print(f"  The deal '{deal['name']}' reached {DEMO_QUOTE_STAGE}, so Books has "
                      f"its draft quote {quote.get('Books_Number__c')} "
                      f"({money(quote.get('Grand_Total'))}); in the CRM that quote (status "
                      f"{quote.get('Status')}) is in {where}.", highlight=False)


#: The CRM fields of the figures the demo shows (README: "Accounting figures on the CRM
#: customer").
OUTSTANDING, INVOICED = "Books_Outstanding__c", "Books_Invoiced_Total__c"


def invoice_in_books(store, deal: dict, say) -> dict:
    """Step 4: the deal's customer (linked by the sync) invoiced in Books and the invoice
    sent, as the accounts team would; returns the invoice and the account's outstanding
    figure before it."""
    from decimal import Decimal

    from crmbooks.runtime import get_runtime

    runtime = get_runtime()
    before = (runtime.crm.get_record("Accounts", deal["account"], [OUTSTANDING]) or {}).get(
        OUTSTANDING)
    links = store.link_ids("customers")
    customer = links[links["crm_id"] == str(deal["account"])]["books_id"]
    if customer.empty:
        raise RuntimeError(f"the sync did not link the account '{deal['account_name']}' to a "
                           "Books customer: see `crmbooks history --failures`")
    made = runtime.books.create("invoices", {
        "customer_id": str(customer.iloc[0]),
        "line_items": [{"item_id": deal["item"], "quantity": 1,
                        "rate": Decimal(DEMO_DEAL_AMOUNT)}]})
    if not made.ok:
        raise RuntimeError(f"the Books emulator refused the demo's invoice: {made}")
    invoice = made.record
    runtime.books.mark("invoices", invoice["invoice_id"], "sent")
    say(f"[bold]4. In Books[/], the accounts team invoices '{deal['account_name']}' "
        f"{DEMO_DEAL_AMOUNT} (invoice {invoice.get('invoice_number')}, sent). The CRM "
        f"account's {OUTSTANDING} (outstanding receivables) is {money(before)} before the "
        f"next sync.")
    return {**invoice, "outstanding_before": before}


def tell_receivables(deal: dict, invoice: dict) -> None:
    """The account's Books figures in the CRM after the sync, and the invoice on it."""
    from crmbooks.runtime import get_runtime

    crm = get_runtime().crm
    account = crm.get_record("Accounts", deal["account"], [OUTSTANDING, INVOICED]) or {}
    invoices = crm.related("Accounts", deal["account"], "Invoices", ["Books_Number__c"])
    shown = any(i.get("Books_Number__c") == invoice.get("invoice_number") for i in invoices)
    console.print(
        f"  The CRM account '{deal['account_name']}' now shows {OUTSTANDING} (outstanding "
        f"receivables) {money(account.get(OUTSTANDING))}, was "
        f"{money(invoice['outstanding_before'])}, and {INVOICED} "
        f"{money(account.get(INVOICED))}: Books' own figures"
        + (f"; the invoice {invoice.get('invoice_number')} is in the account's Invoices list."
           if shown else "."), highlight=False)


def money(value) -> str:
    """An amount as the CRM shows it, to the cent (a figure never written yet: 0.00)."""
    from decimal import Decimal, InvalidOperation

    try:
        return f"{Decimal(str(value if value is not None else 0)):,.2f}"
    except InvalidOperation:
        return str(value)


def tell(runs: list[dict]) -> None:
    """What each module's run did, in words: what it created and updated on each side, and
    why it skipped what it skipped; a module turned off, with what turns it on."""
    from collections import Counter

    from crmbooks.runtime import open_store

    store = open_store()
    for report in runs:
        module = report["module"]
        if report["state"] == "skipped":
            console.print(f"  {module}: skipped, not failed: {report['reason']}.",
                          highlight=False)
            continue
        books, crm = report["counts"]["books"], report["counts"]["crm"]
        line = (f"  {module}: {books['created']} created and {books['updated']} updated in "
                f"Books, {crm['created']} created and {crm['updated']} updated in the CRM")
        skipped = books["skipped"] + crm["skipped"]
        if skipped:
            events = store.events(run_id=report["run_id"])
            rows = [] if events.empty else events[
                events["action"].isin(["skip", "skipped"])].to_dict("records")
            reasons = Counter(reason_of(row.get("message")) for row in rows)
            why = "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common(3))
            line += f"; {skipped} skipped" + (f": {why}" if why else "")
        failed = books["failed"] + crm["failed"]
        if failed:
            line += f"; {failed} failed (see `crmbooks history --failures`)"
        console.print(line + ".", highlight=False)


def reason_of(message: str | None) -> str:
    """A skip's reason without the record it names (a name, an id), so equal reasons count
    together: "Books already has 1 record(s) named …; duplicates: skip keeps it"."""
    import re

    return re.sub(r"'[^']*'|\b\d{4,}\b", "…", str(message or "no reason given"))


def epilogue(home, seconds: float) -> None:
    """How long it took, where its state is, and the commands to try next."""
    console.print(f"Done in {seconds:.0f} s: every module synced, a deal's quote shown on the "
                  "deal and its account in the CRM, and a customer's Books receivables on its "
                  "CRM account.", highlight=False)
    console.print("Next:", highlight=False)
    for command, what in (
            ("crmbooks up", "the Prefect UI (these runs are in it), the schedules and the "
                            "event receiver, on the emulators until you `connect`"),
            (f"CRMBOOKS_HOME={home} crmbooks history", "these runs; `--failures`: what "
                                                      "failed and what to do"),
            ("crmbooks retry --module customers", "once a failed record is fixed at its "
                                                  "source, sync just it again")):
        console.print(f"  {command}\n      {what}", highlight=False)
