"""Pair and unpair records by hand, and decide about records queued for review.

What `crmbooks link`, `unlink` and `duplicates pair|separate|skip` do, checked before anything
is written: both records exist (read by id), they are of the same type (an account with a
business customer, a CRM contact with an individual one, a vendor with a Books vendor, a
product with an item), and neither is linked to another record. A pair is written as a link
made by hand with no synced values: the next run reads both records by id and merges them as
a first pairing (the CRM wins differing fields). Each pair and unpair is a run of its own in
history, with one record event.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmbooks.runtime import Runtime
from crmbooks.store import ReviewEntry, Store
from crmbooks.sync.mapping import books_key, crm_key
from crmbooks.sync.modules import KindSpec, ModuleSpec, module_spec
from crmbooks.sync.values import build_payload

#: The modules whose records pair one to one.
PAIRED_MODULES = ("customers", "vendors", "items")
#: Books contact types per module (customers and vendors are both Books contacts).
CONTACT_TYPE = {"customers": "customer", "vendors": "vendor"}
#: How an operator reads each record kind.
NOUN = {"accounts": "an account (business customer)", "contacts": "a contact (individual "
        "customer)", "vendors": "a vendor", "products": "a product (item)"}


class PairingError(ValueError):
    """A pair, unpair or decision that cannot be made; the message is one sentence."""


@dataclass
class Found:
    """A record read by id on one side, with the record kind it belongs to."""

    kind: KindSpec
    record_id: str
    name: str
    record: dict


def spec_of(module: str) -> ModuleSpec:
    """The module's description; PairingError for a module whose records do not pair."""
    module = module.strip().lower()
    if module not in PAIRED_MODULES:
        raise PairingError(f"unknown module {module!r}: use {', '.join(PAIRED_MODULES)}")
    return module_spec(module)


def _top_kinds(spec: ModuleSpec) -> list[KindSpec]:
    # Contact persons pair inside their account, never by hand.
    return [k for k in spec.kinds if not k.parent]


def crm_record(runtime: Runtime, spec: ModuleSpec, crm_id: str) -> Found:
    """The CRM record ``crm_id`` of the module (tried in each of its CRM modules)."""
    tried = []
    for kind in _top_kinds(spec):
        if kind.crm_module in tried:
            continue
        tried.append(kind.crm_module)
        fields = ["id", spec.crm_books_id_field, *kind.crm_name_fields]
        if kind.crm_module == "Contacts":
            fields.append("Account_Name")
        record = runtime.crm.get_record(kind.crm_module, str(crm_id), fields)
        if record is None:
            continue
        if kind.crm_module == "Contacts" and spec.name == "customers" and record.get(
                "Account_Name"):
            raise PairingError(f"CRM contact {crm_id} belongs to an account: it syncs as a "
                               "contact person of that account's Books customer, not as a "
                               "customer of its own")
        return Found(kind, str(crm_id), kind.crm_name(record), record)
    raise PairingError(f"the CRM has no {' or '.join(tried)} record with id {crm_id!r}")


def books_record(runtime: Runtime, spec: ModuleSpec, books_id: str) -> Found:
    """The Books record ``books_id`` of the module, with the kind its type says."""
    resource = _top_kinds(spec)[0].books_resource
    record = runtime.books.get(resource, str(books_id))
    noun = "contact" if resource == "contacts" else "item"
    if record is None:
        raise PairingError(f"Books has no {noun} with id {books_id!r}")
    wanted = CONTACT_TYPE.get(spec.name)
    if wanted and record.get("contact_type") != wanted:
        raise PairingError(f"Books contact {books_id} is a {record.get('contact_type')}, not a "
                           f"{wanted}: pair it in the {record.get('contact_type')}s module")
    for kind in _top_kinds(spec):
        if kind.owns_books(record):
            return Found(kind, str(books_id), kind.books_name(record), record)
    raise PairingError(f"Books {noun} {books_id} belongs to no record type of {spec.name}")


def check_pair(runtime: Runtime, module: str, crm_id: str,
               books_id: str) -> tuple[Found, Found, bool]:
    """Both records, read and checked: (CRM, Books, already linked together)."""
    spec = spec_of(module)
    crm, books = crm_record(runtime, spec, crm_id), books_record(runtime, spec, books_id)
    if crm.kind.name != books.kind.name:
        raise PairingError(
            f"CRM record {crm_id} is {NOUN.get(crm.kind.name, crm.kind.name)} but Books "
            f"record {books_id} is {NOUN.get(books.kind.name, books.kind.name)}: pair records "
            "of the same type")
    store = runtime.store
    by_crm = store.find_link(spec.name, crm_id=crm.record_id)
    by_books = store.find_link(spec.name, books_id=books.record_id)
    if by_crm is not None and by_crm.books_id == books.record_id:
        return crm, books, True
    if by_crm is not None:
        raise PairingError(f"CRM record {crm_id} is already linked to Books record "
                           f"{by_crm.books_id}: unlink it first (`crmbooks unlink {spec.name} "
                           f"{crm_id}`)")
    if by_books is not None:
        raise PairingError(f"Books record {books_id} is already linked to CRM record "
                           f"{by_books.crm_id}: unlink it first (`crmbooks unlink {spec.name} "
                           f"{books_id}`)")
    return crm, books, False


def link_records(runtime: Runtime, module: str, crm_id: str, books_id: str, *,
                 entry: ReviewEntry | None = None) -> tuple[str, str | None]:
    """Pair a CRM record with a Books record; return (what was done, the history run id).

    ``entry`` is the queued record this pair decides (``duplicates pair``). Nothing is
    written when a check fails (PairingError).
    """
    crm, books, already = check_pair(runtime, module, crm_id, books_id)
    spec, store = spec_of(module), runtime.store
    if already:
        return f"CRM {crm_id} and Books {books_id} are already linked", None
    # No synced values: the next run merges both records as a first pairing.
    store.upsert_link(spec.name, crm_id=crm.record_id, books_id=books.record_id,
                      kind=crm.kind.name, crm_module=crm.kind.crm_module, made_by="manual",
                      crm_values={}, books_values={})
    key = crm_key(crm.kind.crm_module, crm.record_id)
    if entry is not None:
        store.decide_review(entry.id, "pair", books.record_id if entry.side == "crm"
                            else crm.record_id)
    else:
        store.queue_pair(spec.name, record_key=key, kind=crm.kind.name, crm_id=crm.record_id,
                         books_id=books.record_id, name=crm.name)
    # The Books record may wait in the queue under its own key: this pair decides it too.
    for waiting in store.review(books_key(books.kind.books_resource, books.record_id),
                                spec.name):
        if waiting.decision == "pending":
            store.decide_review(waiting.id, "pair", crm.record_id)
    text = (f"linked CRM {crm.record_id} {crm.name!r} with Books {books.record_id} "
            f"{books.name!r} by hand")
    run_id = _history(store, spec.name, "linked", key, crm.record_id, books.record_id,
                      crm.name, text)
    return text, run_id


def _history(store: Store, module: str, action: str, key: str, crm_id: str, books_id: str,
             name: str, text: str) -> str:
    """A run of its own in history for a change made by hand, with its one record event."""
    run_id = store.start_run(module, message=text)
    store.add_events(run_id, module, [{"side": "books", "record_key": key, "crm_id": crm_id,
                                       "books_id": books_id, "name": name, "action": action,
                                       "message": text}])
    store.finish_run(run_id, "completed", counts={}, api_calls={}, message=text)
    return run_id


def _id_of(key: str) -> str:
    """The id in a record key (``crm/Accounts/1`` → ``1``), or the key itself."""
    return key.rsplit("/", 1)[-1].strip()


def unlink_record(runtime: Runtime, module: str, key: str) -> tuple[str, str]:
    """Undo a pair: the link, and the ids each side stores of the other (else the next run
    pairs them again by those ids). Return (what was done, the history run id)."""
    spec, store = spec_of(module), runtime.store
    wanted = _id_of(key)
    side = "books" if key.startswith("books/") else "crm" if key.startswith("crm/") else None
    link = store.find_link(spec.name, crm_id=wanted) if side != "books" else None
    if link is None and side != "crm":
        link = store.find_link(spec.name, books_id=wanted)
    if link is None:
        raise PairingError(f"no {spec.name} link holds {key!r}: `crmbooks linked` lists them")
    kind = spec.kind(link.kind) if link.kind else _top_kinds(spec)[0]
    if kind.parent:
        raise PairingError(f"{key!r} is a contact person: it follows its account's link")
    books_body = build_payload({f"custom_fields.{spec.books_crm_id_field}": ""})
    if kind.books_link_field:
        books_body[kind.books_link_field] = ""
    result = runtime.books.update(kind.books_resource, link.books_id, books_body)
    if not result.ok and str(result.code) not in ("1002",):  # 1002: gone in Books already
        raise PairingError(f"Books refused to clear the CRM id on record {link.books_id}: "
                           f"{result.code} {result.message} (nothing was unlinked)")
    [crm_result] = runtime.crm.update(kind.crm_module, [{"id": link.crm_id,
                                                        spec.crm_books_id_field: None}])
    if not crm_result.ok and crm_result.code != "INVALID_DATA":  # gone in the CRM already
        raise PairingError(f"the CRM refused to clear the Books id on record {link.crm_id}: "
                           f"{crm_result.code} {crm_result.message}")
    store.delete_link(spec.name, crm_id=link.crm_id)
    record_key = crm_key(kind.crm_module, link.crm_id)
    store.drop_review(spec.name, record_key)
    store.drop_review(spec.name, books_key(kind.books_resource, link.books_id))
    text = f"unlinked CRM {link.crm_id} from Books {link.books_id} by hand"
    return text, _history(store, spec.name, "unlinked", record_key, link.crm_id,
                          link.books_id, "", text)


def queued(store: Store, key: str, module: str | None = None) -> ReviewEntry:
    """The queued entry of a record key; PairingError when none, or several modules have one."""
    found = store.review(key.strip(), module)
    if not found:
        raise PairingError(f"nothing is queued under {key!r}: `crmbooks duplicates` lists the "
                           "queue")
    if len(found) > 1:
        raise PairingError(f"{key!r} is queued in {', '.join(e.module for e in found)}: add "
                           "--module")
    return found[0]


def decide(runtime: Runtime, key: str, decision: str, other_id: str | None = None,
           module: str | None = None) -> str:
    """Apply a person's decision on a queued record; return what was done.

    ``pair`` links it with ``other_id`` (checked like ``crmbooks link``), ``separate``
    creates it as a copy on the next run, ``skip`` leaves it out of every run.
    """
    entry = queued(runtime.store, key, module)
    if decision == "pair":
        if not other_id:
            raise PairingError("say which record to pair it with: `crmbooks duplicates pair "
                               "KEY OTHER_ID`")
        crm_id, books_id = (entry.record_id, other_id) if entry.side == "crm" else (
            other_id, entry.record_id)
        text, _ = link_records(runtime, entry.module, crm_id, books_id, entry=entry)
        return f"{text}; the next {entry.module} run syncs them as a pair"
    runtime.store.decide_review(entry.id, decision)
    if decision == "separate":
        return (f"{entry.record_key} will be created as a separate record by the next "
                f"{entry.module} run")
    return f"{entry.record_key} is left out of every {entry.module} run"
