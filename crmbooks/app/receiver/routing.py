"""Event routing for the receiver: which organizations and flows an event starts, and
when a queued event must wait, or start nothing.

What starts what:
- a CRM Deals event queues its deal ids for the deal-triggers flow of the primary
  organization (a deal's Books quote/invoice fields hold one organization's transaction);
- a CRM Quotes, Sales_Orders, Invoices or Purchase_Orders event queues its records for the
  transactions flow (`crm_module` + `crm_ids`) of every connected organization whose
  transactions are enabled (extra organizations are CRM → Books only);
- a Books estimate, sales order, invoice or purchase order event of the primary organization
  queues its record for the transactions flow (`books_resource` + `books_ids`, Books → CRM);
- a CRM Accounts, Contacts, Vendors or Products event queues its records for a targeted run
  of the record module they feed (customers, vendors, items: `crm_ids`) in every connected
  organization where that module is on and, under its settings, fed by that CRM module;
- a Books invoice, credit note or customer payment event of the primary organization (a
  deletion too) queues its customer for a customers run that refreshes only that customer's
  accounting figures (`figures_of`), on the records worker;
- a Books contact or item event of the primary organization queues its record for a targeted
  run of customers or vendors (by the contact's contact_type) or items (`books_ids`), when
  that module is on and syncs both ways.
  Ignored, with a 200 that says why: other event types, deletions (deletions are not synced),
  events of extra organizations (one-way) and modules (or transactions) turned off.
  Malformed JSON or a record without its id is a 400. The echo of crmbooks' own write (the
  record's `last_modified_time` equals the stamp its link kept right after that write) starts
  no run; this is decided when the run would start, once no run of the organization that
  writes transactions holds its lock, since the webhook may arrive before the link is stored.
  The same holds for contacts (their links keep the stamp too); Books items carry no stamp,
  so the echo of an item write starts a run, which plans nothing (the values are the ones
  its link kept). CRM events of crmbooks' own Books-id write-backs start nothing either
  (their changed fields say so); those of its Books → CRM writes do start a run, which plans
  nothing.

The flows read the records as they are now, so repeated, late or out-of-order events are
harmless. A run refused because another run of the same module holds the store's run lock (a
catch-up run, a manual sync) is requeued (the debounce module beside this one), and tried again
after the debounce delay until the lock is free; a paused or disabled integration drops the
events (the catch-up run after resume covers them).

Kept apart from the HTTP app (the server module beside this one), which only authenticates,
parses and queues: these decisions read the store and start flows, and are tested without HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from crmbooks.app.receiver import intake
from crmbooks.app.receiver.debounce import Requeue
from crmbooks.sync.registry import RECORD_MODULES, deal_triggers, document_types, module_spec, shape

# The receiver's log: one logger name for the server, the routing and the queue.
LOG = logging.getLogger("crmbooks.receiver")
#: Books entity name (event_type prefix, payload key, `<entity>_id`) → API resource.
BOOKS_ENTITIES = {doc.books.record_key: resource for resource, doc in document_types().items()}
#: CRM module → Books resource, per document type.
TRANSACTION_MODULES = {doc.crm.module: resource for resource, doc in document_types().items()}
#: CRM module → the record module (customers, vendors, items) it may feed.
RECORD_CRM_MODULES = {kind.crm_module: name for name in RECORD_MODULES
                      for kind in module_spec(name).kinds}
#: Books entity of a record module's webhook → its resource (contacts: customers or vendors,
#: by the contact's contact_type).
RECORD_ENTITIES = {"contact": "contacts", "item": "items"}
#: Books entities whose events change a customer's accounting figures → their resource
#: (invoices are transactions too; credit notes and payments only move the figures).
FIGURE_ENTITIES = {"invoice": "invoices", "creditnote": "creditnotes",
                   "payment": "customerpayments"}
#: The queue's module name for a figures refresh (a targeted customers run).
FIGURES = "figures"
#: A Books contact's contact_type → its record module.
CONTACT_MODULES = {"customer": "customers", "vendor": "vendors"}
#: Store modules whose links keep the stamp of crmbooks' own Books writes (echo detection).
ECHO_MODULES = ("transactions", "deals", *RECORD_MODULES)
#: CRM fields crmbooks itself writes back (Books ids, stamps): changing only these is an echo.
CRM_WRITE_BACK_FIELDS = frozenset({deal_triggers().quote_field, shape().crm.books_id,
                                   shape().crm.modified})


# ------------------------------------------------------------------------ organizations
def connected_orgs() -> tuple[str, list[str]]:
    """The primary Books organization and the extra ones (CRM → Books only) of the stored
    connection."""
    from crmbooks.runtime import NotConnected, open_store

    row = open_store().connection()
    if row is None or not row.books_org_id:
        raise NotConnected("crmbooks is not connected yet: run `crmbooks connect` first")
    return str(row.books_org_id), [str(o) for o in row.extra_books_org_ids or []]


def org_store(org_id: str):
    """The store of one organization (its settings, links, run locks)."""
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    return Store(open_store().engine, org_id=org_id)


def transactions_enabled(org_id: str) -> bool:
    """Whether this organization syncs transactions (read per event: settings may change)."""
    from crmbooks.settings import SettingsError, parse_module_settings

    raw = (org_store(org_id).active_settings("transactions") or (None, {}))[1]
    try:
        return parse_module_settings("transactions", raw).enabled
    except SettingsError:  # the run would refuse with the reason; let it say so
        return True


def transaction_orgs() -> list[str]:
    """Every connected organization whose transactions are enabled, the primary first."""
    primary, extras = connected_orgs()
    return [org for org in (primary, *extras) if transactions_enabled(org)]


def lock_busy(org_id: str, module: str) -> bool:
    """True while a live run of `module` holds this organization's run lock.

    Checked before starting a flow, so that waiting for a long catch-up run costs one read per
    retry instead of a refused run in the history each time.
    """
    from crmbooks.store import lock_is_stale

    lock = org_store(org_id).run_lock(module)
    return lock is not None and not lock_is_stale(lock)


def own_stamp(org_id: str, books_id: str, stamp: str) -> bool:
    """True when `stamp` is the `last_modified_time` Books answered one of crmbooks' own
    writes of this record with (kept on its link): the event only echoes that write.

    Asked when the run would start, not when the event arrives: Books may deliver the
    webhook before the writing run has stored its link, but that run holds the run lock
    until it has, and the events wait for the lock.
    """
    if not stamp:
        return False
    store = org_store(org_id)
    for module in ECHO_MODULES:
        link = store.find_link(module, books_id=books_id)
        if link is not None and link.books_modified == stamp:
            return True
    return False


# ------------------------------------------------------------------------ Books events
@dataclass(frozen=True)
class BooksEvent:
    """One Books webhook, reduced to what starts a run."""

    resource: str  # estimates | salesorders | invoices | purchaseorders | contacts | items
    record_id: str
    action: str  # created | updated | deleted | "" (not said: Books' default payload)
    modified: str | None = None  # the record's last_modified_time, when sent
    contact_type: str | None = None  # a contact's: customer | vendor
    customer_id: str | None = None  # an invoice's, credit note's or payment's customer

    @property
    def figures_of(self) -> str | None:
        """The Books customer whose accounting figures this event changes (None: none)."""
        return self.customer_id if self.resource in FIGURE_ENTITIES.values() else None

    @property
    def record_module(self) -> str | None:
        """The record module (customers, vendors, items) a contact or item event is about;
        None for a transaction, or a contact that is neither a customer nor a vendor."""
        if self.resource == "items":
            return "items"
        if self.resource == "contacts":
            return CONTACT_MODULES.get(self.contact_type or "")
        return None


def parse_books_event(body: Any) -> BooksEvent | None:
    """The transaction, contact or item a Books webhook is about; None for other events.

    Two shapes are read: the emulator's `{"event_type": "invoice_updated", "data": {…}}` and
    Books' default workflow payload `{"invoice": {…}}` (one key named after the entity). A
    body that is not an object, a record without its id, or a field of the wrong type
    (an id that is not digits, a stamp that is not a date-time string) raises ValueError.
    """
    if not isinstance(body, dict):
        raise ValueError("a JSON object is expected")
    entities = {**FIGURE_ENTITIES, **BOOKS_ENTITIES, **RECORD_ENTITIES}
    if "event_type" in body:
        entity, _, action = (intake.optional_text(body, "event_type") or "").rpartition("_")
        record = body.get("data")
    else:
        entity = next((k for k in body if k in entities), "")
        action, record = "", body.get(entity)
    if entity not in entities:
        return None
    if not isinstance(record, dict):
        raise ValueError(f"the {entity} event carries no {entity} object")
    id_field = (f"{entity}_id" if entity not in BOOKS_ENTITIES
                else document_types()[BOOKS_ENTITIES[entity]].books.id_field)
    value = record.get(id_field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"the {entity} event has no {id_field}")
    contact_type = intake.optional_text(record, "contact_type") if entity == "contact" else None
    customer = record.get("customer_id") if entity in FIGURE_ENTITIES else None
    customer_id = (intake.record_id(customer, "customer_id")
                   if customer not in (None, "") else None)
    return BooksEvent(entities[entity], intake.record_id(value, id_field), action,
                      intake.stamp(record.get(shape().books.modified)), contact_type,
                      customer_id)


def transaction_key(org_id: str, side: str, module: str, record_id: str,
                    stamp: str | None = None) -> str:
    """A queue entry (transactions, records): one record of one organization, from one
    side's event, with the record's modified time a Books event reported (to tell our own
    echoes); `module` is a CRM module or Books resource (transactions) or a record module."""
    return f"{org_id}|{side}|{module}|{record_id}|{stamp or ''}"


def record_of(key: str) -> str:
    """A transactions-queue entry without its stamp: the record it is about."""
    return key.rpartition("|")[0]


def read_key(key: str) -> tuple[str, str, str, str, str]:
    """(org, side, module, record id, stamp) of a transactions-queue entry."""
    org, side, module, record_id, stamp = key.split("|", 4)
    return org, side, module, record_id, stamp


# ------------------------------------------------------------------------ what starts nothing
def changed_fields(affected: Any) -> set[str]:
    """Field names of a notification's `affected_fields` ([{"<id>": ["Stage", …]}, …])."""
    fields: set[str] = set()
    for entry in affected if isinstance(affected, list) else []:
        if isinstance(entry, dict):
            for value in entry.values():
                fields |= {str(f) for f in value} if isinstance(value, list) else set()
        elif isinstance(entry, str):
            fields.add(entry)
    return fields


def crm_echo_only(affected: Any) -> bool:
    """True when a CRM notification changed only fields crmbooks writes back itself (its
    Books-id write-backs): the event echoes crmbooks' own write and starts nothing."""
    fields = changed_fields(affected)
    return bool(fields) and fields <= CRM_WRITE_BACK_FIELDS


def figures_ignored(org_id: str, primary: str, event: BooksEvent | None) -> str | None:
    """Why a Books event refreshes no accounting figures (None: it refreshes its customer's).
    A deletion counts: a deleted payment raises what the customer owes."""
    if event is None or event.figures_of is None:
        return "not an invoice, credit note or payment of a customer"
    if org_id != primary:
        return "an extra organization syncs CRM → Books only"
    return record_module_ignored(org_id, "customers", "books")


def books_webhook_ignored(org_id: str, primary: str, event: BooksEvent | None) -> str | None:
    """Why an authentic Books event of a connected organization starts nothing (or None);
    `primary` is the primary organization the caller has just read (connected_orgs)."""
    if event is None:
        return "not a transaction, contact or item event"
    if event.action == "deleted":
        return "deletions are not synced"
    if org_id != primary:
        return "an extra organization syncs CRM → Books only"
    if event.resource in RECORD_ENTITIES.values():
        if event.record_module is None:
            return "a contact that is neither a customer nor a vendor"
        return record_module_ignored(org_id, event.record_module, "books")
    if event.resource not in BOOKS_ENTITIES.values():
        return "not a transaction: a credit note or payment moves only its customer's figures"
    if not transactions_enabled(org_id):
        return "transactions are off for this organization"
    return None


def record_module_ignored(org_id: str, module: str, side: str,
                          crm_module: str | None = None) -> str | None:
    """Why an event of one side starts no run of a record module in this organization (read
    per event: settings may change), or None: the module is turned off, the CRM module does
    not feed it under its settings (Contacts while customers come from Accounts), or it
    syncs CRM → Books only (a Books event)."""
    from crmbooks.settings import SettingsError, parse_module_settings

    raw = (org_store(org_id).active_settings(module) or (None, {}))[1]
    try:
        settings = parse_module_settings(module, raw)
    except SettingsError:  # the run would refuse with the reason; let it say so
        return None
    if not getattr(settings, "enabled", True):
        return f"{module} are turned off"
    spec = module_spec(module)
    if side == "crm" and crm_module not in {
            kind.crm_module for kind in spec.configured_kinds(settings)} and not (
            _follows_links(org_id, module, spec, settings, crm_module)):
        return f"{crm_module} do not feed {module} under its settings"
    if side == "books" and getattr(settings, "scope", "both") != "both":
        return f"{module} sync CRM → Books only"
    return None


def _follows_links(org_id: str, module: str, spec, settings, crm_module: str) -> bool:
    """True when a CRM module that does not feed the module under its settings still holds
    records linked to it: two-way, individual customers go to CRM Contacts whatever the CRM
    module, and an edit of one follows its link (the run skips the unlinked ones, saying
    why)."""
    kinds = [k for k in spec.active_kinds(settings) if k.crm_module == crm_module]
    return any(org_store(org_id).has_links(module, k.name) for k in kinds)


def record_orgs(crm_module: str) -> list[str]:
    """Every connected organization (the primary first) a CRM event of `crm_module` starts a
    run of its record module in (extra organizations sync CRM → Books too)."""
    primary, extras = connected_orgs()
    module = RECORD_CRM_MODULES[crm_module]
    return [org for org in (primary, *extras)
            if record_module_ignored(org, module, "crm", crm_module) is None]


# ------------------------------------------------------------------------ the runs
def run_deal_triggers(deal_ids: list[str]) -> dict | None:
    """The deal-triggers flow for these deals (primary organization), in this process; its
    summary. Requeues the deals while another deal-triggers run holds the lock."""
    from flows.deal_triggers import sync_deal_triggers

    primary, _ = connected_orgs()
    if lock_busy(primary, "deals"):
        raise Requeue(deal_ids, "a deal-triggers run is in progress")
    summary = _result(sync_deal_triggers(deal_ids=deal_ids, return_state=True), deal_ids)
    if summary is not None:
        LOG.info("deal triggers for %d deal(s): %s", len(deal_ids), summary.get("counts"))
    return summary


def run_transactions(keys: list[str]) -> list[dict]:
    """The transactions flow for queued keys: one run per organization, side and module.

    A group waits (requeued) while a run that writes transactions holds its organization's
    lock; then a Books record all of whose events echo crmbooks' own writes is dropped. Keys
    of a run refused by the run lock are requeued (all together, after the others ran).
    """
    from flows.transactions import sync_transactions

    groups: dict[tuple[str, str, str], list[str]] = {}
    for key in keys:
        org, side, module, _, _ = read_key(key)
        groups.setdefault((org, side, module), []).append(key)
    summaries, again = [], []
    for (org, side, module), group_keys in groups.items():
        writers = ("transactions",) if side == "crm" else ("transactions", "deals")
        if any(lock_busy(org, m) for m in writers):
            again += group_keys
            continue
        stamps: dict[str, set[str]] = {}
        for key in group_keys:
            stamps.setdefault(read_key(key)[3], set()).add(read_key(key)[4])
        ids = [i for i, seen in stamps.items()
               if side == "crm" or not all(own_stamp(org, i, s) for s in seen)]
        if not ids:
            LOG.info("%d Books event(s) of %s only echo crmbooks' own writes: no run",
                     len(group_keys), module)
            continue
        target = ({"crm_module": module, "crm_ids": ids} if side == "crm" else
                  {"books_resource": module, "books_ids": ids})
        try:
            summary = _result(sync_transactions(org_id=org, **target, return_state=True),
                              group_keys)
        except Requeue:
            again += group_keys
            continue
        if summary is not None:
            summaries.append(summary)
    if again:
        raise Requeue(again, "a transactions run is in progress")
    return summaries


def run_records(keys: list[str]) -> list[dict]:
    """The customers, vendors or items flow for queued keys: one run per organization and
    module, for the CRM and Books ids its events named (a targeted run: cursors untouched).

    A group waits (requeued) while a run of its module holds the organization's run lock;
    then a Books record all of whose events echo crmbooks' own writes (their stamp is the one
    its link kept) is left out, and a group left with nothing starts no run. Keys of a run
    refused by the run lock are requeued.
    """
    from flows.customers import sync_customers
    from flows.items import sync_items
    from flows.vendors import sync_vendors

    flows = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items}
    groups: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        org, _, module, _, _ = read_key(key)
        groups.setdefault((org, module), []).append(key)
    summaries, again = [], []
    for (org, module), group_keys in groups.items():
        if lock_busy(org, "customers" if module == FIGURES else module):
            again += group_keys
            continue
        if module == FIGURES:  # a targeted customers run that refreshes only figures
            ids = sorted({read_key(k)[3] for k in group_keys})
            try:
                summary = _result(sync_customers(org_id=org, figures_of=ids,
                                                 return_state=True), group_keys)
            except Requeue:
                again += group_keys
                continue
            if summary is not None:
                LOG.info("figures of %d customer(s): %s", len(ids), summary.get(FIGURES))
                summaries.append(summary)
            continue
        crm_ids: list[str] = []
        stamps: dict[str, set[str]] = {}
        for key in group_keys:
            _, side, _, record_id, stamp = read_key(key)
            if side == "crm":
                crm_ids.append(record_id)
            else:
                stamps.setdefault(record_id, set()).add(stamp)
        books_ids = [i for i, seen in stamps.items()
                     if not all(own_stamp(org, i, s) for s in seen)]
        if not crm_ids and not books_ids:
            LOG.info("%d Books event(s) of %s only echo crmbooks' own writes: no run",
                     len(group_keys), module)
            continue
        try:
            summary = _result(flows[module](org_id=org, crm_ids=sorted(set(crm_ids)) or None,
                                            books_ids=books_ids or None, return_state=True),
                              group_keys)
        except Requeue:
            again += group_keys
            continue
        if summary is not None:
            LOG.info("%s for %d record(s): %s", module, len(set(crm_ids)) + len(books_ids),
                     summary.get("counts"))
            summaries.append(summary)
    if again:
        raise Requeue(again, "a run of the module is in progress")
    return summaries


def _result(state, ids: list[str]) -> dict | None:
    """A run's summary; Requeue when the run lock refused it; None when paused/disabled."""
    from crmbooks.sync.lifecycle import RecordsFailed, RunInProgress, RunRefused

    try:
        return state.result()
    except RecordsFailed as exc:
        return exc.summary
    except RunInProgress as exc:  # another run of the module: run these once it ends
        raise Requeue(ids, str(exc)) from None
    except RunRefused as exc:  # paused or disabled: the catch-up run after resume covers it
        LOG.warning("not run: %s", exc)
        return None


def catch_up() -> None:
    """One catch-up run of the deal triggers (primary organization) and of the transactions
    of every organization that syncs them (at receiver start)."""
    from flows.deal_triggers import sync_deal_triggers
    from flows.transactions import sync_transactions

    runs = [(sync_deal_triggers, {})] + [(sync_transactions, {"org_id": org})
                                         for org in transaction_orgs()]
    for flow, kwargs in runs:
        try:
            flow(**kwargs, return_state=True)
        except Exception as exc:  # the scheduled catch-up tries again
            LOG.warning("catch-up %s did not run: %s", flow.name, exc)
