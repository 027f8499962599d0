"""Transactions as a family of the one pipeline: every document type of
mappings/transactions.yaml (quotes, sales orders, invoices, purchase orders …) both ways.

CRM records of a document type's module become Books transactions for linked customers,
vendors and items; Books status, totals, custom fields and new transactions of linked parties
come back to the CRM. A CRM notification runs CRM → Books for its records, a Books webhook
Books → CRM for its records (both leave the cursors alone); the schedule's catch-up runs both
ways over every record changed since the cursors.
"""

from __future__ import annotations

from crmbooks.sync.cursors import credible, parse_stamp, past_handled
from crmbooks.sync.registry import document_of_crm_module, shape
from crmbooks.sync.transactions_plan import id_of
from tasks.documents import fetch as fetching
from tasks.documents import plan as planning
from tasks.documents import push as pushing
from tasks.documents.start import MODULE, facts, synced_modules
from tasks.family import Family


class TransactionsFamily(Family):
    """Every transaction document type, CRM ↔ Books."""

    module = MODULE
    off_message = ("transactions are off (or this document type is not synced): run "
                   "`crmbooks configure transactions --enable`")
    failure_hint = ("link what the reason names (sync that module first) or fix the record "
                    "or the map; the next run picks it up")

    def enabled(self, settings, targets):
        """Transactions on, and the targeted document type among the synced ones."""
        return bool(settings.enabled and synced_modules(settings, targets))

    def start(self, runtime, settings, targets):
        """Unique fields and custom-field maps checked; the run's modules and fields."""
        return facts(runtime, settings, targets)

    def cursors(self, store, settings, facts, targets):
        """One cursor per CRM module and one per Books resource."""
        out = {}
        for module in facts["modules"]:
            resource = document_of_crm_module(module).books.resource
            out[f"crm:{module}"] = store.cursor(f"{MODULE}:{module}", "crm")
            out[f"books:{resource}"] = store.cursor(f"{MODULE}:{resource}", "books")
        return out

    def fetch(self, run, side):
        """CRM records of the synced modules, or Books records of the synced types."""
        return fetching.fetch_crm(run) if side == "crm" else fetching.fetch_books(run)

    def map(self, run, crm, books):
        """Bodies both ways."""
        return planning.map_records(run, crm, books)

    def dedupe(self, run, crm, books, mapped):
        """Books twins of changed CRM records, accounts of contacts."""
        return planning.dedupe(run, crm, books, mapped)

    def plan(self, run, mapped, found):
        """CRM → Books, then Books → CRM."""
        return planning.plan(run, mapped, found)

    def units(self, run, plan, side, outcomes):
        """Books: CRM records and CRM ids; CRM: Books records and Books ids."""
        if side == "books":
            return pushing.books_units(plan)
        return pushing.crm_units(run, plan, [o for o in outcomes if o["side"] == "books"])

    def batch_group(self, side, unit):
        """CRM: one call per CRM module and kind of write (upsert, update, Books id shown)."""
        return (unit["crm_module"], unit["action"]) if side == "crm" else None

    def write(self, run, side, units):
        """One batch to one side."""
        return pushing.push_books(run, units) if side == "books" else pushing.push_crm(run,
                                                                                      units)

    def settle(self, run, crm, books, outcomes, failed):
        """Each cursor past what was read, never past the first record that failed."""
        moved = {}
        modified = shape().crm.modified
        for module, records in crm.frames.items():
            stamps = {f"{module}:{r['id']}": parse_stamp("crm", r.get(modified))
                      for r in records}
            moved[(f"{MODULE}:{module}", "crm")] = past_handled(stamps, failed)
        modified = shape().books.modified
        for resource, records in books.frames.items():
            stamps = {f"{resource}:{id_of(r, resource)}":
                      credible(parse_stamp("books", r.get(modified))) for r in records}
            moved[(f"{MODULE}:{resource}", "books")] = past_handled(stamps, failed)
        return {key: value for key, value in moved.items() if value is not None}

