"""Declarative descriptions of the synced modules: the engine is generic over these.

A module (customers, vendors, items) has one or more record *kinds*; each kind pairs one CRM
module with one Books resource through one section of the module's mapping file. A new module
should be a :class:`ModuleSpec` plus a mapping file, not a new pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Side = Literal["crm", "books"]
#: What Books assumes when a field is absent (a customer without sub type is a business).
BOOKS_DEFAULTS = {"customer_sub_type": "business"}


@dataclass(frozen=True)
class KindSpec:
    """One record kind: a CRM module ↔ a Books resource (one mapping section)."""

    name: str  # also the mapping section name
    crm_module: str  # CRM API module name
    books_resource: str  # contacts | items | contact_persons
    crm_name_fields: tuple[str, ...]  # joined with a space: the name duplicates match on
    books_name_field: str  # Books display name field
    books_id_field: str  # contact_id | item_id | contact_person_id
    books_filter: Mapping[str, str] = field(default_factory=dict)  # which Books records belong
    parent: str | None = None  # kind of the parent record (contact persons → accounts)
    currency_field: str | None = None  # CRM field whose value must be the Books base currency
    # Zoho's own link on a Books contact (zcrm_account_id …): Books' "CRM" filter lists the
    # contacts that carry it, so every record we link carries it too.
    books_link_field: str | None = None

    @property
    def section(self) -> str:
        """The mapping-file section of this kind."""
        return self.name

    def crm_name(self, record: Mapping[str, Any]) -> str:
        """The display name of a CRM record of this kind (for duplicates and reports)."""
        parts = [record.get(f) for f in self.crm_name_fields]
        return " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())

    def books_name(self, record: Mapping[str, Any]) -> str:
        """The display name of a Books record of this kind."""
        if self.books_resource == "contact_persons":
            parts = (record.get("first_name"), record.get("last_name"))
            return " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())
        value = record.get(self.books_name_field)
        return value.strip() if isinstance(value, str) else ""

    def owns_books(self, record: Mapping[str, Any]) -> bool:
        """True if a Books record belongs to this kind (e.g. business vs individual)."""
        for key, want in self.books_filter.items():
            got = record.get(key) or BOOKS_DEFAULTS.get(key)
            if got != want:
                return False
        return True


@dataclass(frozen=True)
class ModuleSpec:
    """A synced module: its kinds, which side goes first and which wins conflicts."""

    name: str
    kinds: tuple[KindSpec, ...]
    first_side: Side  # pushed first in two-way mode
    winner: Side  # takes a field changed on both sides and duplicates on overwrite
    mapping_file: str
    books_crm_id_field: str = "cf_crm_id"  # unique Books custom field holding the CRM id
    crm_books_id_field: str = "Books_Id__c"  # unique CRM field holding the Books id

    def kind(self, name: str) -> KindSpec:
        """The kind called ``name``."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(f"module {self.name!r} has no record kind {name!r}")

    def configured_kinds(self, settings: Any = None) -> tuple[KindSpec, ...]:
        """The kinds whose CRM records ``settings`` sync (customers depend on crm_module):
        the CRM modules that feed the module, as the CRM module setting chooses them."""
        if self.name != "customers":
            return self.kinds
        mode = getattr(settings, "crm_module", "accounts")
        names = {"accounts": ("accounts",), "contacts": ("contacts",),
                 "accounts+contacts": ("accounts", "contact_persons")}[mode]
        if syncs_lone_contacts(settings):
            names = (*names, "contacts")
        return tuple(k for k in self.kinds if k.name in names)

    def active_kinds(self, settings: Any = None) -> tuple[KindSpec, ...]:
        """The kinds synced under ``settings``: the configured ones, and for customers in
        two-way mode always individual customers too.

        Two-way, an individual Books customer goes to CRM Contacts and a business one to CRM
        Accounts, whatever the CRM module setting: that setting chooses which CRM records
        are sent to Books, not where a Books customer lands. Which CRM contacts of such a
        mode the individual kind takes (only those linked to an individual customer) is the
        routing's business (``mapping.route_crm_contacts``).
        """
        kinds = self.configured_kinds(settings)
        if self.name == "customers" and getattr(settings, "scope", None) == "both" and all(
                k.name != "contacts" for k in kinds):
            kinds = tuple(k for k in self.kinds if k in kinds or k.name == "contacts")
        return kinds

    def overwrite_winner(self, scope: str) -> Side:
        """Who wins an overwrite of a duplicate: the first side in two-way mode, else CRM."""
        return self.first_side if scope == "both" else "crm"

    def conflict_winner(self, scope: str) -> Side:
        """Who wins a field changed on both sides; CRM when only fetching from CRM."""
        return self.winner if scope == "both" else "crm"


def syncs_lone_contacts(settings: Any) -> bool:
    """True when the customers settings send every CRM contact without an account to Books
    as an individual customer (CRM module contacts, or accounts+contacts with "include
    contacts not associated with any account")."""
    mode = getattr(settings, "crm_module", "accounts")
    return mode == "contacts" or (mode == "accounts+contacts" and bool(
        getattr(settings, "include_unassociated_contacts", False)))


_CONTACT_ID = "contact_id"
CUSTOMERS = ModuleSpec(
    name="customers",
    kinds=(
        KindSpec("accounts", "Accounts", "contacts", ("Account_Name",), "contact_name",
                 _CONTACT_ID, {"contact_type": "customer", "customer_sub_type": "business"},
                 books_link_field="zcrm_account_id"),
        KindSpec("contacts", "Contacts", "contacts", ("First_Name", "Last_Name"),
                 "contact_name", _CONTACT_ID,
                 {"contact_type": "customer", "customer_sub_type": "individual"},
                 books_link_field="zcrm_contact_id"),
        KindSpec("contact_persons", "Contacts", "contact_persons", ("First_Name", "Last_Name"),
                 "contact_name", "contact_person_id", parent="accounts"),
    ),
    first_side="crm", winner="crm", mapping_file="customers",
)
VENDORS = ModuleSpec(
    name="vendors",
    kinds=(KindSpec("vendors", "Vendors", "contacts", ("Vendor_Name",), "contact_name",
                    _CONTACT_ID, {"contact_type": "vendor"},
                    books_link_field="zcrm_vendor_id"),),
    first_side="crm", winner="crm", mapping_file="vendors",
)
ITEMS = ModuleSpec(
    name="items",
    kinds=(KindSpec("products", "Products", "items", ("Product_Name",), "name", "item_id",
                    currency_field="Currency"),),
    first_side="books", winner="books", mapping_file="items",
)
MODULES: dict[str, ModuleSpec] = {m.name: m for m in (CUSTOMERS, VENDORS, ITEMS)}


def module_spec(name: str) -> ModuleSpec:
    """The spec of a synced module; KeyError naming the known ones otherwise."""
    try:
        return MODULES[name]
    except KeyError:
        raise KeyError(f"unknown module {name!r}; modules: {', '.join(MODULES)}") from None
