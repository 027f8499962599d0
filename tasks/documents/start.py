"""The start of a transactions run: which document types it syncs, in which directions, and
the checks before any write — the unique fields exactly-once writes need, and every
custom-field map against both sides' live fields.
"""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from crmbooks.metadata import books_custom_fields, cached, crm_field_metadata, is_unique_key
from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.sync.label_pairs import pair_module
from crmbooks.sync.registry import document_of_crm_module, document_type, shape
from crmbooks.sync.transactions import crm_fields
from crmbooks.sync.transactions_crm import CRM_MAPPABLE, books_web_base

MODULE = "transactions"


def named_modules(targets: dict[str, list[str]]) -> list[str]:
    """The CRM modules an event or retry run is about (targets "crm:Quotes" or
    "books:estimates"), or none for a catch-up over every synced type."""
    out = []
    for key in targets:
        side, _, name = key.partition(":")
        out.append(name if side == "crm" else document_type(name).crm.module)
    return list(dict.fromkeys(out))


def directions(targets: dict[str, list[str]]) -> tuple[bool, bool]:
    """(CRM → Books, Books → CRM): a CRM event runs the first only, a Books webhook the
    second only, the catch-up both."""
    if not targets:
        return True, True
    sides = {key.partition(":")[0] for key in targets}
    return "crm" in sides, "books" in sides


def synced_modules(settings, targets: dict[str, list[str]]) -> list[str]:
    """The CRM modules this run syncs (empty when the targeted one is not synced)."""
    modules = [document_type(r).crm.module for r in settings.modules]
    named = named_modules(targets)
    return [m for m in modules if m in named] if named else modules


def facts(runtime, settings, targets: dict[str, list[str]]) -> dict:
    """Check the unique fields and the maps against the live systems (SettingsError, nothing
    written, otherwise) and return what the steps use."""
    modules = synced_modules(settings, targets)
    to_books, to_crm = directions(targets)
    unique = shape().books.crm_id
    for module in modules:
        resource = document_of_crm_module(module).books.resource
        if not is_unique_key(runtime, resource, unique):
            raise SettingsError(f"Books {resource} have no unique custom field {unique}: "
                                "create it so transactions write exactly once")
    meta = {m: {f.get("api_name"): f for f in crm_field_metadata(runtime, m)} for m in modules}
    if to_crm:
        _check_books_id_unique(meta)
        check_shown_fields(meta)
    maps = field_maps(runtime, settings.maps, modules, meta)
    fields = {m: list(dict.fromkeys(crm_fields(m, set(meta[m])) + [x["crm"] for x in maps[m]]))
              for m in modules}
    currencies = cached(runtime, "books-currencies",
                        lambda: [c.get("currency_code") for c in runtime.books.currencies()])
    customers = parse_module_settings(
        "customers", (runtime.store.active_settings("customers") or (None, {}))[1])
    return {"modules": modules, "to_books": to_books, "to_crm": to_crm, "fields": fields,
            "present": {m: sorted(k for k in meta[m] if k) for m in modules},
            "statuses": {m: _picklist(meta[m].get(shape().crm.status)) for m in modules},
            "maps": maps, "currencies": [c for c in currencies if c],
            "web_base": books_web_base(runtime.config.accounts_url, runtime.org_id),
            "customers_mode": customers.crm_module}


def _log():
    """The run's logger, or this module's outside a run (a check called on its own)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _picklist(field: dict | None) -> list[str] | None:
    if not field:
        return None
    return [str(v.get("actual_value") or v.get("display_value"))
            for v in field.get("pick_list_values") or []]


def _check_books_id_unique(meta: dict[str, dict[str, dict]]) -> None:
    """Books → CRM creates upsert by Books_Id__c: it must exist and be unique (exactly once)."""
    books_id = shape().crm.books_id
    for module, fields in meta.items():
        field = fields.get(books_id)
        if not field or not field.get("unique"):
            raise SettingsError(f"CRM {module} need a unique field {books_id} (Books Id): "
                                "create it (mark it unique) so Books transactions are copied to "
                                "the CRM exactly once")


#: What the CRM records show of their Books record besides its id, and the CRM field types
#: that can hold it.
SHOWN = {"books_number": ("Books Number", "single line", {"text"}),
         "books_url": ("Books URL", "URL", {"website"})}


def check_shown_fields(meta: dict[str, dict[str, dict]]) -> None:
    """The Books number and web address go to custom fields of every synced CRM module: each
    must exist, be writable and of its type, or SettingsError names what to create (nothing
    is written)."""
    problems = []
    for module, fields in meta.items():
        for key, (label, kind, types) in SHOWN.items():
            name = getattr(shape().crm, key)
            field = fields.get(name)
            if not field:
                problems.append(f"CRM {module} have no field {name}: create a {kind} field "
                                f"{label!r} (API name {name})")
            elif field.get("data_type") not in types:
                problems.append(f"CRM field {module}.{name} is of type "
                                f"{field.get('data_type')}: it must be a {kind} field")
            elif field.get("read_only") or field.get("field_read_only"):
                problems.append(f"CRM field {module}.{name} is read-only: make it editable")
    if problems:
        raise SettingsError("; ".join(problems) + " — crmbooks shows each Books transaction's "
                            "number and its page in Books there; nothing was written")


def field_maps(runtime, maps, modules: list[str], meta: dict[str, dict[str, dict]]
               ) -> dict[str, list[dict]]:
    """The custom-field maps of each CRM module with both fields' types, checked against the
    live metadata of both sides (SettingsError naming every bad map, nothing written), then
    the custom fields that pair themselves by label among those no map names."""
    out: dict[str, list[dict]] = {m: [] for m in modules}
    problems = []
    for module in modules:
        doc = document_of_crm_module(module)
        resource = doc.books.resource
        wanted = [m for m in maps if m.section in (None, resource)]
        # Read for the label pairs too (from the metadata cache: no request on most runs).
        books_list = books_custom_fields(runtime, resource)
        books = {f.get("api_name"): f for f in books_list}
        for m in wanted:
            cf = m.books.removeprefix("custom_fields.")
            crm = meta[module].get(m.crm)
            if crm is None:
                problems.append(f"{m.books}={m.crm}: CRM {module} have no field {m.crm}")
            elif crm.get("data_type") not in CRM_MAPPABLE:
                problems.append(f"{m.books}={m.crm}: CRM field {m.crm} is a "
                                f"{crm.get('data_type')} field, which cannot carry a Books "
                                "custom field value")
            elif m.direction != "to_books" and (crm.get("read_only")
                                                or crm.get("field_read_only")):
                problems.append(f"{m.books}={m.crm}: CRM field {m.crm} is read-only")
            if cf not in books:
                problems.append(f"{m.books}={m.crm}: Books {resource} have no custom field "
                                f"{cf} (create it in Books — crmbooks reads the custom fields "
                                f"off the newest {doc.noun}, so give it a value there — "
                                "or fix the map)")
            if crm is not None and cf in books:
                out[module].append({"crm": m.crm, "books": cf, "direction": m.direction,
                                    "crm_type": crm.get("data_type"),
                                    "books_type": books[cf].get("data_type")})
        pairs, unpaired = pair_module(module, resource, meta[module].values(), books_list, maps)
        out[module].extend(pairs)
        if unpaired:
            # Said in the run's log; `crmbooks status` lists them with their reasons.
            _log().info("%s: custom fields with no partner of the same label: %s", module,
                        "; ".join(f"{'CRM' if u['side'] == 'crm' else 'Books'} {u['field']} "
                                  f"({u['reason']})" for u in unpaired))
    if problems:
        raise SettingsError("transactions maps do not fit the live fields: "
                            + "; ".join(problems) + " (`crmbooks configure transactions "
                            "--unmap cf_…` removes a map); nothing was written")
    return out
