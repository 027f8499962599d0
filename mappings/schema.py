"""Schema of the mapping files (mappings/*.yaml): field pairs, named converters, value maps.

Mappings are data: no expressions, only names that this schema checks. Loading
a file with an unknown key, converter, value map or Books field raises :class:`MappingError`
naming the file, the place in it and what to do.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mappings.converters import CONVERTERS, Converter, Ctx, get_converter

MAPPINGS_DIR = Path(__file__).resolve().parent
Direction = Literal["both", "to_books", "to_crm"]
#: How a value reaches Books: in the record body, or (``status_action``) only through
#: ``POST /{resource}/{id}/active|inactive`` after the record's write, because Books refuses
#: ``status`` in a contact's or item's body (docs/zoho-api-notes.md, "Books items").
BooksWrite = Literal["body", "status_action"]
BooksResource = Literal["contacts", "contact_persons", "items"]

_ADDRESS = ("attention", "address", "street2", "city", "state", "state_code", "zip", "country",
            "fax", "phone")
#: Standard Books fields per resource (custom fields are ``custom_fields.cf_<name>``).
_PERSON = ("salutation", "first_name", "last_name", "email", "phone", "mobile", "designation",
           "department", "skype", "is_primary_contact", "enable_portal")
#: Standard Books fields per resource (custom fields are ``custom_fields.cf_<name>``).
#: Books contacts carry email/phone only on their contact persons, so a contact's own
#: email is addressed as ``contact_persons.primary.email`` (the primary person).
BOOKS_FIELDS: dict[str, frozenset[str]] = {
    "contacts": frozenset(
        ["contact_name", "company_name", "contact_type", "customer_sub_type", "status",
         "website", "currency_id", "currency_code", "payment_terms", "payment_terms_label",
         "credit_limit", "notes", "owner_id", "tags", "language_code"]
        + [f"{a}.{f}" for a in ("billing_address", "shipping_address") for f in _ADDRESS]
        + [f"contact_persons.primary.{f}" for f in _PERSON]),
    "contact_persons": frozenset(_PERSON),
    "items": frozenset(
        ["name", "rate", "description", "sku", "unit", "product_type", "item_type", "status",
         "purchase_description", "purchase_rate", "account_id", "purchase_account_id",
         "tax_id", "is_taxable", "reorder_level", "vendor_id"]),
}
CUSTOM_FIELD = re.compile(r"^custom_fields\.cf_[a-z0-9_]+$")
CRM_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class MappingError(ValueError):
    """A mapping file (or an extra field map from the settings) is not valid."""


class FieldPair(BaseModel):
    """One mapped field: a Books path, a CRM API name (or several), direction and converter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    books: str = Field(description="Books path: contact_name | billing_address.city | "
                                   "custom_fields.cf_x")
    crm: str | tuple[str, ...] = Field(description="CRM API name (a list only for full_name)")
    direction: Direction = "both"
    converter: str = "text"
    required: bool = False
    max_length: int | None = Field(default=None, gt=0)
    value_map: str | None = None
    allow_negative: bool = False
    books_write: BooksWrite = "body"

    @field_validator("converter")
    @classmethod
    def _known_converter(cls, name: str) -> str:
        if name not in CONVERTERS:
            raise ValueError(f"unknown converter {name!r}; known converters: "
                             f"{', '.join(sorted(CONVERTERS))}")
        return name

    @field_validator("crm")
    @classmethod
    def _crm_names(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        names = (value,) if isinstance(value, str) else value
        bad = [n for n in names if not CRM_API_NAME.match(n)]
        if bad or not names:
            raise ValueError(f"not a CRM API name: {', '.join(map(repr, bad)) or 'empty'}")
        return value

    @model_validator(mode="after")
    def _converter_fits(self) -> FieldPair:
        conv = self.conv
        if isinstance(self.crm, tuple) and not conv.multi:
            raise ValueError(f"several CRM fields need a joining converter such as full_name, "
                             f"not {self.converter!r}")
        if conv.multi and self.direction != "to_books":
            raise ValueError(f"converter {self.converter!r} only works to_books; "
                             "set direction: to_books")
        if conv.to_crm is None and self.direction != "to_books":
            raise ValueError(f"converter {self.converter!r} cannot write to CRM; "
                             "set direction: to_books")
        if conv.needs_value_map and not self.value_map:
            raise ValueError(f"converter {self.converter!r} needs value_map: <name of a map "
                             "under value_maps>")
        if self.books_write == "status_action" and (
                self.books != "status" or self.converter != "active_status"):
            raise ValueError("books_write: status_action only fits {books: status, converter: "
                             f"active_status}} (Books' active/inactive calls), not {self.books!r}")
        return self

    @property
    def key(self) -> str:
        """The field's key in flat records and link values (its Books path)."""
        return self.books

    @property
    def crm_fields(self) -> tuple[str, ...]:
        """The CRM API names this pair reads."""
        return (self.crm,) if isinstance(self.crm, str) else self.crm

    @property
    def conv(self) -> Converter:
        """The converter object."""
        return get_converter(self.converter)

    def ctx(self, value_maps: dict[str, dict[str, str]], side: str = "") -> Ctx:
        """The converter context for this pair (its name as people read it, limits, value map)."""
        crm = "+".join(self.crm_fields)
        name = f"{crm} → {self.books}" if side != "crm" else f"{self.books} → {crm}"
        return Ctx(name=name, max_length=self.max_length, allow_negative=self.allow_negative,
                   value_map=value_maps.get(self.value_map or "", {}))

    @property
    def by_status_action(self) -> bool:
        """True if Books takes this value only through its active/inactive calls."""
        return self.books_write == "status_action"

    def goes_to(self, side: str) -> bool:
        """True if this pair writes to ``side`` (books|crm)."""
        return self.direction == "both" or self.direction == f"to_{side}"


class Section(BaseModel):
    """One record kind in a mapping file: a CRM module ↔ a Books resource, with field pairs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crm_module: str
    books_resource: BooksResource
    books_defaults: dict[str, str] = Field(default_factory=dict)
    fields: tuple[FieldPair, ...]

    @model_validator(mode="after")
    def _fields_consistent(self) -> Section:
        known = BOOKS_FIELDS[self.books_resource]
        seen: set[str] = set()
        crm_writers: dict[str, str] = {}
        for pair in self.fields:
            if pair.books not in known and not CUSTOM_FIELD.match(pair.books):
                raise ValueError(f"unknown Books field {pair.books!r} for {self.books_resource}; "
                                 "use a standard field or custom_fields.cf_<api_name>")
            if pair.books in seen:
                raise ValueError(f"Books field {pair.books!r} is mapped twice")
            seen.add(pair.books)
            for crm in pair.crm_fields if pair.goes_to("crm") else ():
                if crm in crm_writers:
                    raise ValueError(f"CRM field {crm!r} would be written from both "
                                     f"{crm_writers[crm]!r} and {pair.books!r}; set one of them "
                                     "to direction: to_books")
                crm_writers[crm] = pair.books
        return self

    def status_action_pair(self) -> FieldPair | None:
        """The pair Books writes through its active/inactive calls (items' status), if any."""
        return next((p for p in self.fields if p.by_status_action and p.goes_to("books")), None)


class Mapping(BaseModel):
    """A whole mapping file: its module, value maps and sections (record kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str
    description: str = ""
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    sections: dict[str, Section]

    @model_validator(mode="after")
    def _value_maps_exist(self) -> Mapping:
        for name, section in self.sections.items():
            for pair in section.fields:
                if pair.value_map and pair.value_map not in self.value_maps:
                    raise ValueError(f"sections.{name}: field {pair.books!r} uses value_map "
                                     f"{pair.value_map!r}, which is not under value_maps")
        return self

    def section(self, name: str) -> Section:
        """The named section; MappingError naming the ones that exist otherwise."""
        if name not in self.sections:
            raise MappingError(f"mapping {self.module!r} has no section {name!r} "
                               f"(sections: {', '.join(self.sections)})")
        return self.sections[name]

    def with_extra_fields(self, section: str, pairs: list[FieldPair | dict[str, Any]]) -> Mapping:
        """A new Mapping with ``pairs`` (e.g. the user's custom field maps) added to ``section``.

        A pair for a Books field already mapped replaces the default one.
        """
        try:
            extra = [p if isinstance(p, FieldPair) else FieldPair(**p) for p in pairs]
        except ValidationError as exc:
            raise MappingError(f"extra field map for {self.module}.{section}: "
                               + "; ".join(_describe(e) for e in exc.errors())) from None
        sec = self.section(section)
        replaced = {p.books for p in extra}
        fields = tuple(p for p in sec.fields if p.books not in replaced) + tuple(extra)
        data = self.model_dump()
        data["sections"][section]["fields"] = [f.model_dump() for f in fields]
        return _validate(data, f"{self.module} (with extra field maps)")

    def with_value_map(self, books: str, entries: dict[str, str]) -> Mapping:
        """A new Mapping where the pairs of Books field ``books`` translate values through
        ``entries`` ({CRM value: Books value}): merged over the pair's own value map, or, for
        a pair without one (a text map), the pair becomes a picklist map with this one.
        MappingError when no section maps ``books``."""
        data = self.model_dump()
        found = False
        for section in data["sections"].values():
            for pair in section["fields"]:
                if pair["books"] != books:
                    continue
                found = True
                name = pair.get("value_map") or books
                data["value_maps"][name] = {**data["value_maps"].get(name, {}), **entries}
                pair["value_map"] = name
                pair["converter"] = "picklist"
        if not found:
            raise MappingError(f"value map for {books}: no field map of {self.module} writes "
                               f"{books}; map it first with --map")
        return _validate(data, f"{self.module} (with value maps)")



def _describe(err: dict[str, Any]) -> str:
    """One pydantic error as a sentence a person can act on."""
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key {err['loc'][-1]!r} (remove it or check its spelling)"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def _validate(data: Any, source: str) -> Mapping:
    """Validate raw data into a Mapping, raising MappingError that names ``source``."""
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        lines = "; ".join(_describe(e) for e in exc.errors())
        raise MappingError(f"{source}: {lines}") from None


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Load and validate a mapping by module name ("customers") or by file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = MAPPINGS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise MappingError(f"no mapping file {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from None
    return _validate(data, path.name)


@lru_cache(maxsize=16)
def default_mapping(module: str) -> Mapping:
    """The shipped mapping of ``module`` (cached; Mapping objects are immutable)."""
    return load_mapping(module)


#: The shipped files that declare document types rather than a record module's field pairs.
DOCUMENT_FILES = ("transactions.yaml", "deal_triggers.yaml")


def mapping_files() -> list[Path]:
    """The shipped mapping files of the record modules (customers, vendors, items)."""
    return sorted(p for p in MAPPINGS_DIR.glob("*.yaml") if p.name not in DOCUMENT_FILES)


# ------------------------------------------------------------------------ document types
# mappings/transactions.yaml declares every transaction document type; mappings/
# deal_triggers.yaml what a deal trigger takes from the deal. A folder named by the
# environment variable CRMBOOKS_MAPPINGS_DIR may hold a transactions.yaml of its own: its
# document types are added to (or replace) the shipped ones, so a new document type needs no
# code.

MAPPINGS_DIR_VARIABLE = "CRMBOOKS_MAPPINGS_DIR"
Party = Literal["customer", "vendor"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmLines(_Data):
    """The CRM fields of one row of a transaction's line-item subform."""

    product: str
    quantity: str
    price: str
    discount: str
    description: str


class BooksLines(_Data):
    """The Books fields of one line item of a transaction."""

    item: str
    name: str
    quantity: str
    rate: str
    discount: str
    description: str
    total: str


class CrmShape(_Data):
    """The CRM fields every transaction module shares."""

    subject: str
    status: str
    currency: str
    adjustment: str
    deal: str
    modified: str
    books_id: str
    books_number: str  # text field: the Books number (EST-00012 …)
    books_url: str  # URL field: the record's page in the Books web app
    lines: CrmLines


class LinkedBy(_Data):
    """Which crmbooks module's links (and which kind of link) pair a record across sides."""

    module: str
    kind: str


class BooksShape(_Data):
    """The Books fields every transaction resource shares."""

    reference: str
    status: str
    currency: str
    adjustment: str
    deal_id: str
    deal_name: str
    salesperson: str
    total: str
    modified: str
    crm_id: str
    lines: BooksLines
    lines_linked_by: LinkedBy


class Shape(_Data):
    """The fields every document type has, on both sides."""

    crm: CrmShape
    books: BooksShape


class PartyFields(_Data):
    """How a transaction names its party (customer or vendor) on each side."""

    books_id: str
    books_name: str
    module: str  # the crmbooks module whose links pair the party across sides
    crm: dict[str, str]  # kind of link (accounts, contacts, vendors) -> CRM lookup field


class BooksDocument(_Data):
    """A document type's Books resource."""

    resource: str
    record_key: str
    id_field: str
    number_field: str
    party: Party
    date_field: str
    status_actions: tuple[str, ...] = ()
    # The record's page in the Books web app: <books web>/app/<org id>#/<web_path>/<id>
    # (default: the resource's own name).
    web_path: str | None = None


class CrmDocument(_Data):
    """A document type's CRM module and its line-item subform."""

    module: str
    subform: str
    date_field: str


class DocumentType(_Data):
    """One transaction document type: a Books resource <-> a CRM module with line items."""

    noun: str  # what people call it: quote, sales order, invoice …
    books: BooksDocument
    crm: CrmDocument
    deal: bool = True  # carries its deal (the deal's id and name on the Books record)
    adjustment: bool = True  # Books takes the CRM's adjustment on it
    status_to_crm: dict[str, str] = Field(default_factory=dict)
    closed_statuses: frozenset[str] = frozenset()
    uneditable_statuses: frozenset[str] = frozenset()
    synced_by_default: bool = True  # on when transactions are turned on without --types

    @property
    def name(self) -> str:
        """The document type's key: its Books resource (estimates, invoices …)."""
        return self.books.resource


class TransactionsMapping(_Data):
    """mappings/transactions.yaml: the shared shape, the parties and every document type."""

    module: Literal["transactions"]
    description: str = ""
    shape: Shape
    parties: dict[Party, PartyFields]
    closed_statuses: tuple[str, ...] = ()  # shared lists the document types refer to
    uneditable_statuses: tuple[str, ...] = ()
    document_types: dict[str, DocumentType]

    @model_validator(mode="after")
    def _consistent(self) -> TransactionsMapping:
        crm_modules: dict[str, str] = {}
        for key, doc in self.document_types.items():
            if key != doc.books.resource:
                raise ValueError(f"document_types.{key}: the key must be its Books resource "
                                 f"({doc.books.resource!r})")
            if doc.crm.module in crm_modules:
                raise ValueError(f"document_types.{key}: CRM module {doc.crm.module!r} is "
                                 f"already {crm_modules[doc.crm.module]!r}'s")
            crm_modules[doc.crm.module] = key
        return self


class Take(_Data):
    """One value a triggered transaction takes from its deal."""

    from_: str = Field(alias="from")
    max_length: int | None = Field(default=None, gt=0)
    lookup: Literal["name"] | None = None  # take the lookup's name, not its id
    trim: bool = False  # strip surrounding spaces (names)


class Make(_Data):
    """A document type a deal trigger makes."""

    document_type: str
    key_suffix: str
    managed: tuple[str, ...]
    # The Books field of this type naming the quote it was made from (an invoice made on a
    # quote's acceptance), if any.
    from_quote_field: str | None = None


class DealTriggersMapping(_Data):
    """mappings/deal_triggers.yaml: what a triggered transaction takes from its deal."""

    module: Literal["deals"]
    description: str = ""
    crm_module: str
    deal_fields: tuple[str, ...]
    name: str
    stage: str
    account: str
    contact: str
    amount: str
    currency: str
    modified: str
    quote_field: str
    takes: dict[Literal["item_name", "description", "salesperson_name", "deal_name"], Take]
    makes: dict[Literal["quote", "invoice"], Make]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from None


def _validated(model: type[BaseModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) \
            from None


def extra_mappings_dir() -> Path | None:
    """The operator's folder of extra mapping files (CRMBOOKS_MAPPINGS_DIR), if set."""
    import os

    folder = os.environ.get(MAPPINGS_DIR_VARIABLE)
    return Path(folder).expanduser() if folder else None


@lru_cache(maxsize=4)
def _transactions(extra: Path | None) -> TransactionsMapping:
    data = _read_yaml(MAPPINGS_DIR / "transactions.yaml")
    source = "transactions.yaml"
    if extra is not None and (extra / "transactions.yaml").exists():
        more = _read_yaml(extra / "transactions.yaml") or {}
        unknown = set(more) - {"document_types"}
        if unknown:
            raise MappingError(f"{extra / 'transactions.yaml'}: only document_types may be "
                               f"added, not {', '.join(sorted(unknown))}")
        data = {**data, "document_types": {**data["document_types"],
                                           **(more.get("document_types") or {})}}
        source = f"transactions.yaml with {extra / 'transactions.yaml'}"
    return _validated(TransactionsMapping, data, source)


def transactions_mapping() -> TransactionsMapping:
    """The document types: the shipped file plus those of CRMBOOKS_MAPPINGS_DIR (cached)."""
    return _transactions(extra_mappings_dir())


@lru_cache(maxsize=1)
def deal_triggers_mapping() -> DealTriggersMapping:
    """What deal triggers take from the deal (mappings/deal_triggers.yaml), checked against
    the document types they make."""
    mapping = _validated(DealTriggersMapping, _read_yaml(MAPPINGS_DIR / "deal_triggers.yaml"),
                         "deal_triggers.yaml")
    known = transactions_mapping().document_types
    for name, make in mapping.makes.items():
        if make.document_type not in known:
            raise MappingError(f"deal_triggers.yaml: makes.{name}: no document type "
                               f"{make.document_type!r} in transactions.yaml")
    return mapping


def books_resource_facts(resource: str) -> BooksDocument | None:
    """What the document types declare of a Books resource (record key, id field, status
    actions), or None when no document type uses it."""
    doc = transactions_mapping().document_types.get(resource)
    return doc.books if doc else None


def reload_mappings() -> None:
    """Forget every cached mapping file, so the next read sees the files (and
    CRMBOOKS_MAPPINGS_DIR) as they are now."""
    _transactions.cache_clear()
    deal_triggers_mapping.cache_clear()
    default_mapping.cache_clear()
