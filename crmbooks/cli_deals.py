"""Deal commands: link and unlink transactions by hand (F27), run the triggers (F15–F17),
and the event receiver (`crmbooks webhook`).

A deal may link to several quotes, sales orders and invoices; a transaction belongs to one
deal (its Books `zcrm_potential_id`). Links made by a trigger cannot be removed: the trigger
owns that transaction and would only make it again. Exit codes follow the CLI policy: 0 done,
1 some deals failed, 2 a refusal or configuration problem, 3 paused or disabled.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_PAUSED = 0, 1, 2, 3

#: Books resources a deal links to (F27), with the words an operator may use for them.
LINKABLE = {"estimates": ("estimate", "quote"), "salesorders": ("salesorder", "sales-order"),
            "invoices": ("invoice",)}
NUMBER_FIELD = {"estimates": "estimate_number", "salesorders": "salesorder_number",
                "invoices": "invoice_number"}
ID_FIELD = {"estimates": "estimate_id", "salesorders": "salesorder_id",
            "invoices": "invoice_id"}
NOUN = {"estimates": "quote", "salesorders": "sales order", "invoices": "invoice"}

deals_app = typer.Typer(help="Deals and their Books transactions: link, unlink, trigger.",
                        no_args_is_help=True)


transactions_app = typer.Typer(help="CRM transactions → Books (F14).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `crmbooks deals …`, `crmbooks transactions …` and `crmbooks webhook` to the app."""
    app.add_typer(deals_app, name="deals")
    app.add_typer(transactions_app, name="transactions")
    app.command(name="webhook")(webhook)


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """One sentence on stderr, then exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _runtime():
    from crmbooks.runtime import NotConnected, get_runtime
    from crmbooks.secrets import SecretMissing

    try:
        return get_runtime()
    except (NotConnected, SecretMissing) as exc:
        fail(str(exc))


def _resource_of(kind: str | None) -> list[str]:
    if kind is None:
        return list(LINKABLE)
    wanted = kind.strip().lower().rstrip("s")
    for resource, words in LINKABLE.items():
        if wanted in words or wanted == resource.rstrip("s"):
            return [resource]
    fail(f"--type {kind!r}: use quote, salesorder or invoice")
    return []


def find_transaction(books, ref: str, kind: str | None = None) -> tuple[str, dict]:
    """(resource, record) of a Books quote, sales order or invoice given its id or number."""
    resources = _resource_of(kind)
    found: list[tuple[str, dict]] = []
    for resource in resources:
        if ref.isdigit():
            record = books.get(resource, ref)
            if record is not None:
                return resource, record
        for page in books.iter_pages(resource, {NUMBER_FIELD[resource]: ref}):
            found += [(resource, r) for r in page if r.get(NUMBER_FIELD[resource]) == ref]
    if not found:
        words = " or ".join(NOUN[r] for r in resources)
        fail(f"no Books {words} has the id or number {ref!r}")
    if len(found) > 1:
        fail(f"{ref!r} names several transactions; add --type quote|salesorder|invoice")
    resource, summary = found[0]
    return resource, books.get(resource, summary[ID_FIELD[resource]]) or summary


def _deal(crm, deal_id: str) -> dict:
    deal = crm.get_record("Deals", deal_id, ["Deal_Name"])
    if deal is None:
        fail(f"the CRM has no deal {deal_id!r}")
    return deal


def _label(resource: str, record: dict) -> str:
    return f"{NOUN[resource]} {record.get(NUMBER_FIELD[resource]) or record[ID_FIELD[resource]]}"


@deals_app.command("link")
def link(
    deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
    transaction: str = typer.Argument(..., metavar="TRANSACTION",
                                      help="Books quote, sales order or invoice: id or number."),
    kind: str | None = typer.Option(None, "--type", help="quote | salesorder | invoice."),
):
    """Link a deal to a Books quote, sales order or invoice (F27); a deal may have several.

    Example: crmbooks deals link 5725767000000123001 EST-00012
    """
    from tasks.triggers import MODULE, link_crm_id

    runtime = _runtime()
    store, books = runtime.store, runtime.books
    deal = _deal(runtime.crm, deal_id)
    resource, record = find_transaction(books, transaction, kind)
    books_id, label = str(record[ID_FIELD[resource]]), _label(resource, record)
    current = store.find_link(MODULE, books_id=books_id)
    if current is not None and current.parent_crm_id == deal_id:
        console.print(f"{label} is already linked to deal {deal_id} ({current.made_by}).")
        return
    if current is not None and current.made_by == "trigger":
        fail(f"{label} was made by a deal trigger for deal {current.parent_crm_id}: it stays "
             "linked to that deal (F27)")
    result = books.update(resource, books_id, {
        "zcrm_potential_id": deal_id, "zcrm_potential_name": str(deal.get("Deal_Name") or "")})
    if not result.ok:
        fail(f"Books refused to link {label}: {result.code} {result.message}")
    store.upsert_link(MODULE, crm_id=link_crm_id(deal_id, resource, books_id), books_id=books_id,
                      kind=resource, crm_module="Deals", parent_crm_id=deal_id,
                      made_by="manual", books_values={"status": record.get("status")})
    moved = f" (moved from deal {current.parent_crm_id})" if current is not None else ""
    console.print(f"[bold green]Linked[/] {label} to deal {deal_id} "
                  f"{deal.get('Deal_Name') or ''}{moved}.", highlight=False)


@deals_app.command("unlink")
def unlink(
    deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
    transaction: str = typer.Argument(..., metavar="TRANSACTION",
                                      help="Books quote, sales order or invoice: id or number."),
    kind: str | None = typer.Option(None, "--type", help="quote | salesorder | invoice."),
):
    """Remove a deal's link to a transaction; links made by a trigger stay (exit 2)."""
    from tasks.triggers import MODULE

    runtime = _runtime()
    store, books = runtime.store, runtime.books
    resource, record = find_transaction(books, transaction, kind)
    books_id, label = str(record[ID_FIELD[resource]]), _label(resource, record)
    current = store.find_link(MODULE, books_id=books_id)
    linked_in_books = str(record.get("zcrm_potential_id") or "") == deal_id
    if (current is None or current.parent_crm_id != deal_id) and not linked_in_books:
        fail(f"{label} is not linked to deal {deal_id}")
    if current is not None and current.parent_crm_id == deal_id \
            and current.made_by == "trigger":
        fail(f"{label} was made by a deal trigger for deal {deal_id}: links made by a trigger "
             "cannot be removed (F27); void or delete the transaction in Books instead")
    if linked_in_books:
        result = books.update(resource, books_id, {"zcrm_potential_id": "",
                                                   "zcrm_potential_name": ""})
        if not result.ok:
            fail(f"Books refused to unlink {label}: {result.code} {result.message}")
    if current is not None and current.parent_crm_id == deal_id:
        store.delete_link(MODULE, books_id=books_id)
    console.print(f"[bold green]Unlinked[/] {label} from deal {deal_id}.", highlight=False)


@deals_app.command("links")
def links(deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
          json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """The Books transactions linked to a deal, and who linked them."""
    from tasks.triggers import MODULE

    runtime = _runtime()
    frame = runtime.store.links(MODULE)
    rows = [{"type": NOUN.get(r["kind"], r["kind"]), "books_id": r["books_id"],
             "made_by": r["made_by"], "status": (r["books_values"] or {}).get("status")}
            for r in frame.to_dict("records") if r["parent_crm_id"] == deal_id]
    if json_out:
        print(json.dumps({"deal": deal_id, "links": rows}, indent=2))
        return
    if not rows:
        console.print(f"Deal {deal_id} has no linked transactions.")
    for row in rows:
        console.print(f"{row['type']} {row['books_id']}  made by {row['made_by']}"
                      f"  (status {row['status'] or '?'})", highlight=False)


def _run_flow(flow, label: str, json_out: bool, **params) -> None:
    """Run a flow in this process and print its run like `crmbooks sync` does."""
    from crmbooks.cli import _expected_errors, _prepare_local_prefect
    from crmbooks.reporting import run_to_json
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

    _prepare_local_prefect()
    _runtime()
    state = flow(return_state=True, **params)
    try:
        summary = state.result()
    except RecordsFailed as exc:
        summary = exc.summary
    except RunRefused as exc:
        fail(str(exc), EXIT_PAUSED)
    except _expected_errors() as exc:
        fail(f"{label}: {exc}")
    if not summary or not summary.get("run_id"):
        console.print(f"{label} are off: configure them first (`crmbooks configure …`).")
        return
    store = _runtime().store
    report = run_to_json(store, store.run(summary["run_id"]))
    if json_out:
        print(json.dumps(report, indent=2, default=str))
    else:
        books, crm = report["counts"]["books"], report["counts"]["crm"]
        console.print(f"{label} {report['state']}: Books created {books['created']}, updated "
                      f"{books['updated']}, skipped {books['skipped']}, failed "
                      f"{books['failed']}", highlight=False)
        if any(crm.values()):  # transactions also write the CRM side (Books → CRM)
            console.print(f"  CRM created {crm['created']}, updated {crm['updated']}, skipped "
                          f"{crm['skipped']}, failed {crm['failed']}", highlight=False)
        for f in report["failures"]:
            console.print(f"  [red]failed[/] {f['record']}: {f['message']}", highlight=False)
    if report["state"] != "completed":
        raise typer.Exit(EXIT_FAILED_RECORDS)


@transactions_app.command("sync")
def transactions_sync(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only plan (B1)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Sync CRM quotes, sales orders, invoices and purchase orders changed since the last run
    into Books now (F14, CRM → Books)."""
    from flows.transactions import sync_transactions

    _run_flow(sync_transactions, "transactions", json_out, dry_run=dry_run)


@deals_app.command("trigger")
def trigger(
    deal_ids: list[str] = typer.Argument(None, metavar="[DEAL]...",
                                         help="Deal ids; none: every deal changed since the "
                                              "last catch-up."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only plan (B1)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Run the deal triggers now (F15–F17): for these deals, or as a catch-up."""
    from flows.deal_triggers import sync_deal_triggers

    _run_flow(sync_deal_triggers, "deal triggers", json_out,
              deal_ids=list(deal_ids or []) or None, dry_run=dry_run)


def webhook(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL the CRM and Books reach this receiver at "
                                   "(default http://HOST:PORT)."),
):
    """Receive CRM notifications and Books webhooks; run deal triggers and transactions
    within seconds.

    Registers a CRM notification channel (Deals and the transaction modules) with a random
    token kept under CRMBOOKS_HOME, and checks the shared secret of Books webhooks (header
    X-Webhook-Secret; the secret is in CRMBOOKS_HOME/receiver.json), one URL per connected
    Books organization (/books/webhook/ORG_ID): registered with the emulators by itself,
    printed to configure in real Books. Events with a wrong token or secret are rejected.
    With the receiver down, the scheduled catch-up runs pick the changes up.
    """
    from crmbooks.app.receiver.server import serve
    from crmbooks.cli import _prepare_local_prefect

    _prepare_local_prefect()
    serve(host=host, port=port, public_url=public_url)
