"""The one registry of what crmbooks syncs: the five modules, in dependency order, the record
modules' specs and the transaction document types (both declared in mappings/).

Customers, vendors and items are record modules (a ModuleSpec plus a mapping file);
transactions sync every document type of mappings/transactions.yaml; deal triggers make the
document types of mappings/deal_triggers.yaml. Everything else asks here.
"""

from __future__ import annotations

from crmbooks.sync.modules import MODULES as RECORD_MODULES
from crmbooks.sync.modules import ModuleSpec, module_spec
from mappings.schema import (
    DealTriggersMapping,
    DocumentType,
    PartyFields,
    Shape,
    deal_triggers_mapping,
    reload_mappings,
    transactions_mapping,
)

#: Every module, in the order `sync all` runs them: a module's records may need the links of
#: the ones before it (transactions need customers, vendors and items; deals need customers).
MODULE_ORDER: tuple[str, ...] = ("customers", "vendors", "items", "transactions", "deals")
TRANSACTIONS, DEALS = "transactions", "deals"
#: The other names a person may type for a module in `crmbooks sync` and sync-now: the deal
#: triggers are the `deals` module (`configure deals`), but their flow and deployment say
#: "deal triggers".
MODULE_ALIASES: dict[str, str] = {"deal-triggers": DEALS, "deal_triggers": DEALS,
                                  "deal triggers": DEALS, "triggers": DEALS}

__all__ = ["MODULE_ORDER", "RECORD_MODULES", "ModuleSpec", "module_spec", "document_types",
           "document_type", "document_of_crm_module", "shape", "party", "deal_triggers",
           "is_document_source", "reload", "MODULE_ALIASES", "modules_to_sync"]


def modules_to_sync(names: list[str] | None) -> list[str]:
    """The modules `names` ask for, in dependency order; `all` (or nothing) is every module.

    Names are the modules' own (customers, vendors, items, transactions, deals) or an alias of
    one (deal-triggers …), in any case. ValueError naming every valid name otherwise.
    """
    words = [" ".join(str(n).split()).lower() for n in names or [] if n and str(n).strip()]
    if not words or "all" in words:
        return list(MODULE_ORDER)
    wanted = {MODULE_ALIASES.get(w, w) for w in words}
    unknown = [w for w in dict.fromkeys(words) if MODULE_ALIASES.get(w, w) not in MODULE_ORDER]
    if unknown:
        raise ValueError(f"unknown module {', '.join(map(repr, unknown))}: use "
                         f"{', '.join(MODULE_ORDER)} (or {', '.join(MODULE_ALIASES)} for deals)"
                         " or all")
    return [m for m in MODULE_ORDER if m in wanted]


def document_types() -> dict[str, DocumentType]:
    """Every transaction document type, by its Books resource (estimates, invoices …)."""
    return dict(transactions_mapping().document_types)


def document_type(resource: str) -> DocumentType:
    """The document type of a Books resource; KeyError naming the known ones otherwise."""
    docs = transactions_mapping().document_types
    if resource not in docs:
        raise KeyError(f"no document type {resource!r}; known: {', '.join(docs)}")
    return docs[resource]


def document_of_crm_module(crm_module: str) -> DocumentType:
    """The document type synced with a CRM module (Quotes → estimates …)."""
    for doc in transactions_mapping().document_types.values():
        if doc.crm.module == crm_module:
            return doc
    raise KeyError(f"no document type syncs the CRM module {crm_module!r}")


def is_document_source(name: str) -> bool:
    """True for a document type's Books resource or CRM module (a transaction key's head)."""
    return any(name in (d.books.resource, d.crm.module)
               for d in transactions_mapping().document_types.values())


def shape() -> Shape:
    """The fields every document type shares, on both sides."""
    return transactions_mapping().shape


def party(doc: DocumentType) -> PartyFields:
    """How a document type names its party (customer or vendor) on each side."""
    return transactions_mapping().parties[doc.books.party]


def deal_triggers() -> DealTriggersMapping:
    """What a deal trigger takes from the deal, and which document types it makes."""
    return deal_triggers_mapping()


def reload() -> None:
    """Read the mapping files again (after CRMBOOKS_MAPPINGS_DIR or a file changed)."""
    reload_mappings()
