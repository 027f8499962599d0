"""The Books accounting figures on linked CRM customers: the last step of a customers run.

Which customers to refresh: the catch-up reads the invoices, credit notes and customer
payments modified since the figures cursor (three list scans, 200 rows a page: the lists carry
the customer id) and refreshes the linked customers they name; a targeted run (a Books webhook
of an invoice, credit note or payment) refreshes the customers it names. Per customer it then
reads what only Books' lists carry — its invoices (totals by date) and its payments (the last
one) — and its receivables and currency from the contacts list when that is fewer pages than
reading each changed contact by id. The CRM's current figures are read 100 records per call
and only the figures that changed are written, 100 records per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from math import ceil

from prefect import get_run_logger

from crmbooks.connectors.zoho_books import books_time
from crmbooks.sync import figures as fig
from crmbooks.sync.cursors import earliest, later, newest_stamp, past_its_second
from tasks.context import RunContext

CURSOR = "figures"
#: Books list scans whose rows name the customer whose figures they change.
LEDGER = ("invoices", "creditnotes", "customerpayments")
PAGE = 200  # Books list page size
CRM_BATCH = 100  # CRM records per read by ids and per write


def refresh(run: RunContext, customer_ids: Iterable[str] | None = None,
            also: Iterable[str] = ()) -> dict:
    """Refresh the figures of the linked customers ``customer_ids`` (Books contact ids), or,
    given None, of those whose invoices, credit notes or payments changed since the figures
    cursor (then the cursor moves) and those of ``also`` (the customers the run just wrote:
    one linked now may have an older ledger). Returns what was done: {read, written,
    skipped}."""
    runtime = run.runtime()
    store, books = runtime.store, runtime.books
    log = get_run_logger()
    newest = ledger = None
    if customer_ids is None:
        since = store.cursor(CURSOR, "books")
        changed, newest, ledger = _changed_customers(books, since)
        if since is None:
            # The first catch-up has no cursor: it read the whole ledger, which already
            # carries every customer's invoices and payments, and refreshes every linked one.
            changed = None
        else:
            ledger = None
            changed |= {str(i) for i in also}
    else:
        changed = {str(i) for i in customer_ids}
    links = store.link_ids("customers")
    links = links[links["kind"].isin(list(fig.FIGURE_KINDS))]
    linked = dict(zip(links["books_id"], zip(links["crm_id"], links["kind"], strict=True),
                      strict=True))
    wanted = sorted(linked) if changed is None else sorted(changed & set(linked))
    skipped = [{"books_id": i, "reason": "the Books customer is not linked to a CRM record: "
                "its figures have nowhere to go"} for i in sorted((changed or set())
                                                                  - set(linked))]
    for row in skipped:
        log.info("figures of Books customer %s skipped: %s", row["books_id"], row["reason"])
    written = _refresh(run, wanted, linked, ledger) if wanted else 0
    if newest is not None:
        store.advance_cursor(CURSOR, "books", newest)
    return {"read": len(wanted), "written": written, "skipped": skipped}


def _changed_customers(books, since: datetime | None
                       ) -> tuple[set[str], datetime | None, dict[str, dict[str, list]]]:
    """The customers named by the invoices, credit notes and payments modified since, the
    newest modified stamp among them, and the rows read ({resource: {customer: rows}})."""
    found: set[str] = set()
    newest = None
    rows_of: dict[str, dict[str, list]] = {r: {} for r in LEDGER}
    began = []
    for resource in LEDGER:
        with books.http.watch() as read:
            # Credit notes and payments are no synced resource of the Books client: their
            # lists are read with Books' last_modified_time filter directly.
            query = {"last_modified_time": books_time(since)} if since is not None else {}
            for rows in books.iter_pages(resource, query):
                for row in rows:
                    if row.get("customer_id"):
                        found.add(str(row["customer_id"]))
                        rows_of[resource].setdefault(str(row["customer_id"]), []).append(row)
                newest = later(newest, newest_stamp("books", rows, "last_modified_time"))
        began.append(read.began)
    # Past the newest stamp's second when every read began after it (by Books' clock):
    # otherwise a quiet run would recompute the customers of that second every time.
    start = earliest(began)
    if newest is None and start is not None:
        # Nothing changed (or an empty ledger): start from the second the reads began in, so
        # the next catch-up reads only what changes from then on.
        return found, start.replace(microsecond=0), rows_of
    return found, past_its_second(newest, start), rows_of


def _refresh(run: RunContext, wanted: list[str], linked: dict,
             ledger: dict[str, dict[str, list]] | None) -> int:
    """Compute the figures of ``wanted`` and write those that differ in the CRM; ``ledger``:
    every invoice and payment row already read, by customer (None: read each customer's)."""
    runtime = run.runtime()
    books, crm = runtime.books, runtime.crm
    contacts = _contacts(books, wanted, linked_count=len(linked))
    year_start = fig.fiscal_year_start(date.today(), _fiscal_start(run, books))
    computed = {}
    for books_id in wanted:
        contact = contacts.get(books_id)
        if contact is None:  # deleted in Books since: its figures stay as they were
            continue
        if ledger is not None:
            invoices = ledger["invoices"].get(books_id, [])
            payments = ledger["customerpayments"].get(books_id, [])
        else:
            invoices = [r for rows in books.iter_pages("invoices", {"customer_id": books_id})
                        for r in rows]
            payments = next(books.iter_pages("customerpayments", {
                "customer_id": books_id, "sort_column": "date", "sort_order": "D"},
                per_page=1), [])
        computed[books_id] = fig.compute(contact, invoices, payments, year_start)
    written = 0
    for kind, module in fig.FIGURE_KINDS.items():
        pairs = {linked[b][0]: computed[b] for b in computed if linked[b][1] == kind}
        updates = []
        for part in _chunks(sorted(pairs), CRM_BATCH):
            for record in _crm_records(crm, module, part):
                delta = fig.changes(record, pairs[str(record["id"])])
                if delta:
                    updates.append({"id": str(record["id"]), **delta})
        for part in _chunks(updates, CRM_BATCH):
            results = crm.update(module, part)
            written += sum(1 for r in results if getattr(r, "ok", True))
    return written


def _contacts(books, wanted: list[str], linked_count: int) -> dict[str, dict]:
    """The Books contacts of ``wanted``: from the customers list when its pages are fewer
    than the reads by id, else one read each."""
    # The customers list also holds unlinked customers: its pages are counted by the linked
    # ones, a lower bound, so the list is chosen only when it clearly costs fewer calls.
    if ceil(linked_count / PAGE) < len(wanted):
        keep = set(wanted)
        return {str(r["contact_id"]): r for rows in books.iter_pages(
            "contacts", {"contact_type": "customer"}) for r in rows
            if str(r["contact_id"]) in keep}
    found = {}
    for books_id in wanted:
        contact = books.get("contacts", books_id)
        if contact is not None:
            found[books_id] = contact
    return found


def _fiscal_start(run: RunContext, books) -> int:
    """Books' fiscal_year_start_month (0 = January), as connect kept it, else read once."""
    connection = run.runtime().store.connection(run.connection)
    kept = dict(getattr(connection, "books_org", None) or {})
    if kept.get("fiscal_year_start_month") is not None:
        return int(kept["fiscal_year_start_month"])
    return int(books.organization().get("fiscal_year_start_month") or 0)


def _crm_records(crm, module: str, ids: list[str]) -> list[dict]:
    """The CRM records ``ids`` with their figure fields: one call for up to 100."""
    return crm.records_by_ids(module, ids, fig.FIELDS)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
