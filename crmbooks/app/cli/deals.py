"""`crmbooks deals …`: link and unlink a deal's Books transactions by hand, list them, and
run the deal triggers now.

A deal may link to several quotes, sales orders and invoices; a transaction belongs to one
deal (its Books `zcrm_potential_id`). Links made by a trigger cannot be removed: the trigger
owns that transaction and would only make it again. Exit codes follow the CLI policy: 0 done,
1 some deals failed, 2 a refusal or configuration problem, 3 paused or disabled, 4 Zoho or
the network failed (try again later).
"""

from __future__ import annotations

import json

import typer

from crmbooks.app.cli.common import Command, Group, console, fail, run_flow, runtime_or_fail
from crmbooks.sync.registry import deal_triggers, document_types, shape

#: Books resources a deal links to, with the words an operator may use for them.
LINKABLE = {resource: tuple(dict.fromkeys((doc.books.record_key, doc.noun.replace(" ", "-"))))
            for resource, doc in document_types().items() if doc.deal}
NUMBER_FIELD = {r: document_types()[r].books.number_field for r in LINKABLE}
ID_FIELD = {r: document_types()[r].books.id_field for r in LINKABLE}
NOUN = {r: document_types()[r].noun for r in LINKABLE}

deals_app = typer.Typer(help="Deals and their Books transactions: link, unlink, trigger.",
                        no_args_is_help=True, cls=Group)


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


@deals_app.command("link", cls=Command)
def link(
    deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
    transaction: str = typer.Argument(..., metavar="TRANSACTION",
                                      help="Books quote, sales order or invoice: id or number."),
    kind: str | None = typer.Option(None, "--type", help="quote | salesorder | invoice."),
):
    """Link a deal to a Books quote, sales order or invoice; a deal may have several.

    With transactions on, its CRM record shows in the deal's related list right away.

    Example: crmbooks deals link 5725767000000123001 EST-00012
    """
    from crmbooks.sync.registry import DEALS as MODULE
    from crmbooks.sync.triggers import link_crm_id

    runtime = runtime_or_fail()
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
             "linked to that deal")
    result = books.update(resource, books_id, {
        shape().books.deal_id: deal_id,
        shape().books.deal_name: str(deal.get(deal_triggers().name) or "")})
    if not result.ok:
        fail(f"Books refused to link {label}: {result.code} {result.message}")
    store.upsert_link(MODULE, crm_id=link_crm_id(deal_id, resource, books_id), books_id=books_id,
                      kind=resource, crm_module="Deals", parent_crm_id=deal_id,
                      made_by="manual", books_values={"status": record.get("status")})
    moved = f" (moved from deal {current.parent_crm_id})" if current is not None else ""
    console.print(f"[bold green]Linked[/] {label} to deal {deal_id} "
                  f"{deal.get('Deal_Name') or ''}{moved}.", highlight=False)
    show_in_crm(resource, books_id, label)


@deals_app.command("unlink", cls=Command)
def unlink(
    deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
    transaction: str = typer.Argument(..., metavar="TRANSACTION",
                                      help="Books quote, sales order or invoice: id or number."),
    kind: str | None = typer.Option(None, "--type", help="quote | salesorder | invoice."),
):
    """Remove a deal's link to a transaction; links made by a trigger stay (exit 2).

    With transactions on, its CRM record leaves the deal's related list (it stays on its
    account)."""
    from crmbooks.sync.registry import DEALS as MODULE

    runtime = runtime_or_fail()
    store, books = runtime.store, runtime.books
    resource, record = find_transaction(books, transaction, kind)
    books_id, label = str(record[ID_FIELD[resource]]), _label(resource, record)
    current = store.find_link(MODULE, books_id=books_id)
    linked_in_books = str(record.get(shape().books.deal_id) or "") == deal_id
    if (current is None or current.parent_crm_id != deal_id) and not linked_in_books:
        fail(f"{label} is not linked to deal {deal_id}")
    if current is not None and current.parent_crm_id == deal_id \
            and current.made_by == "trigger":
        fail(f"{label} was made by a deal trigger for deal {deal_id}: links made by a trigger "
             "cannot be removed; void or delete the transaction in Books instead")
    if linked_in_books:
        result = books.update(resource, books_id, {shape().books.deal_id: "",
                                                   shape().books.deal_name: ""})
        if not result.ok:
            fail(f"Books refused to unlink {label}: {result.code} {result.message}")
    if current is not None and current.parent_crm_id == deal_id:
        store.delete_link(MODULE, books_id=books_id)
    console.print(f"[bold green]Unlinked[/] {label} from deal {deal_id}.", highlight=False)
    show_in_crm(resource, books_id, label)


def show_in_crm(resource: str, books_id: str, label: str) -> None:
    """Bring the CRM record of a transaction whose deal changed up to date now (its deal in
    Deal_Name, so it shows in, or leaves, the deal's related list): a transactions run of the
    Books → CRM side for this one record. Transactions off for this type, or syncing paused,
    leave it to the next run, and say so; the link itself is kept either way."""
    from crmbooks.app.cli.common import prepare_local_prefect, use_prefect_server
    from crmbooks.runtime import open_store
    from crmbooks.settings import parse_module_settings

    store = runtime_or_fail().store
    settings = parse_module_settings("transactions",
                                     (store.active_settings("transactions") or (None, {}))[1])
    if not settings.enabled or resource not in settings.modules:
        console.print(f"The CRM shows {label} on the deal once transactions sync "
                      f"{resource} (`crmbooks configure transactions --enable`).",
                      highlight=False)
        return
    row = open_store().connection()
    if row is not None and (row.paused or row.disabled):
        console.print(f"Syncing is {'disabled' if row.disabled else 'paused'}: the CRM shows "
                      "the change once transactions run again.", highlight=False)
        return
    from crmbooks.sync.lifecycle import RecordsFailed, RunRefused
    from flows.transactions import sync_transactions

    prepare_local_prefect()
    use_prefect_server()
    state = sync_transactions(books_resource=resource, books_ids=[books_id],
                              return_state=True)
    try:
        summary = state.result()
    except (RecordsFailed, RunRefused) as exc:
        console.print(f"The CRM is not updated yet ({exc}); the next transactions run does "
                      "it.", highlight=False)
        return
    crm = (summary or {}).get("counts", {}).get("crm", {})
    if crm.get("created") or crm.get("updated"):
        console.print("The CRM record shows it now.")


@deals_app.command("links", cls=Command)
def links(deal_id: str = typer.Argument(..., metavar="DEAL", help="CRM deal id."),
          json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """The Books transactions linked to a deal, and who linked them."""
    from crmbooks.sync.registry import DEALS as MODULE

    runtime = runtime_or_fail()
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


@deals_app.command("trigger", cls=Command)
def trigger(
    deal_ids: list[str] = typer.Argument(None, metavar="[DEAL]...",
                                         help="Deal ids; none: every deal changed since the "
                                              "last catch-up."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only plan: write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Run the deal triggers now: for these deals, or as a catch-up."""
    from flows.deal_triggers import sync_deal_triggers

    run_flow(sync_deal_triggers, "deal triggers", json_out,
             deal_ids=list(deal_ids or []) or None, dry_run=dry_run)

