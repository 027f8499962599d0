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

__all__ = ["MODULE_ORDER", "RECORD_MODULES", "ModuleSpec", "module_spec", "document_types",
           "document_type", "document_of_crm_module", "shape", "party", "deal_triggers",
           "is_document_source", "reload"]


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
