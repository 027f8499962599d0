"""Typed integration settings (pydantic), validated before anything is stored or written.

Per-module settings are saved as versions in the store (``Store.save_settings``); a run reads
the active version when it starts, so an edit applies from the next run. Secrets are
not settings: the connection models forbid unknown keys, so a client secret or refresh token
passed here is refused with a message pointing at the environment variables.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crmbooks.sync.registry import document_types
from mappings.schema import FieldPair

Scope = Literal["fetch", "both"]
Duplicates = Literal["clone", "overwrite", "skip", "review"]
#: What a run does to a record's twin when the record is deleted on one side.
OnDelete = Literal["ignore", "deactivate", "delete"]
DataCentre = Literal["us", "eu", "in", "au", "cn", "jp", "ca", "sa"]
MODULES = ("customers", "vendors", "items", "transactions", "deals")

#: Zoho's API and accounts hosts per data centre (docs/zoho-api-notes.md, "Hosts and data
#: centres").
DC_HOSTS: dict[str, tuple[str, str]] = {
    "us": ("https://www.zohoapis.com", "https://accounts.zoho.com"),
    "eu": ("https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    "in": ("https://www.zohoapis.in", "https://accounts.zoho.in"),
    "au": ("https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    "cn": ("https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
    "jp": ("https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    "ca": ("https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    "sa": ("https://www.zohoapis.sa", "https://accounts.zoho.sa"),
}
SECRET_HINT = ("secrets are not stored in settings; set CRMBOOKS_CLIENT_SECRET and "
               "CRMBOOKS_REFRESH_TOKEN (or a Prefect Secret block)")


class SettingsError(ValueError):
    """Settings that cannot be used; the message says which setting and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ConnectionSettings(_Strict):
    """How to reach both products (non-secret part): data centre or explicit URLs, org ids."""

    dc: DataCentre | None = None
    api_url: str | None = None
    accounts_url: str | None = None
    crm_api_url: str | None = None  # when CRM and Books are served from different hosts
    books_api_url: str | None = None
    client_id: str = Field(min_length=1)
    books_org_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    extra_books_org_ids: tuple[str, ...] = ()  # synced one way only, CRM → Books

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            secret = [k for k in data if k in ("client_secret", "refresh_token", "access_token")]
            if secret:
                raise ValueError(f"{', '.join(secret)}: {SECRET_HINT}")
        return data

    @model_validator(mode="after")
    def _where(self) -> ConnectionSettings:
        if self.dc is None and not (self.api_url and self.accounts_url):
            raise ValueError("give a data centre (dc: us|eu|in|au|cn|jp|ca|sa) or both "
                             "api_url and accounts_url")
        for name in ("api_url", "accounts_url", "crm_api_url", "books_api_url"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must start with http:// or https://, got {value!r}")
        return self

    def urls(self) -> dict[str, str]:
        """Resolved base URLs: accounts, crm and books (explicit URLs win over the DC)."""
        api, accounts = DC_HOSTS[self.dc] if self.dc else (self.api_url, self.accounts_url)
        api = self.api_url or api
        accounts = self.accounts_url or accounts
        return {"accounts": accounts.rstrip("/"),
                "crm": (self.crm_api_url or api).rstrip("/"),
                "books": (self.books_api_url or api).rstrip("/")}


class FieldMapSetting(_Strict):
    """A user's extra field map (custom fields on either side), added to the default mapping."""

    books: str
    crm: str
    direction: Literal["both", "to_books", "to_crm"] = "both"
    converter: str = "text"
    section: str | None = None  # which mapping section; default: the module's main one

    @classmethod
    def parse(cls, text: str) -> FieldMapSetting:
        """Parse the CLI form ``BOOKS_FIELD=CRM_FIELD`` (e.g. ``custom_fields.cf_tier=Tier__c``)."""
        books, sep, crm = text.partition("=")
        if not sep or not books.strip() or not crm.strip():
            raise SettingsError(f"--map {text!r}: write it as BOOKS_FIELD=CRM_FIELD, e.g. "
                                "custom_fields.cf_tier=Tier__c")
        books = books.strip()
        if books.startswith("cf_"):  # accept the short form of a Books custom field
            books = f"custom_fields.{books}"
        return cls(books=books, crm=crm.strip())

    @staticmethod
    def parse_value(text: str) -> tuple[str, str, str]:
        """Parse the CLI form ``BOOKS_FIELD:CRM_VALUE=BOOKS_VALUE`` (e.g.
        ``product_type:Goods=goods``) into (Books field, CRM value, Books value)."""
        books, sep, rest = text.partition(":")
        crm_value, eq, books_value = rest.partition("=")
        if not sep or not eq or not books.strip() or not crm_value.strip() \
                or not books_value.strip():
            raise SettingsError(f"--value-map {text!r}: write it as BOOKS_FIELD:CRM_VALUE="
                                "BOOKS_VALUE, e.g. product_type:Goods=goods")
        books = books.strip()
        if books.startswith("cf_"):
            books = f"custom_fields.{books}"
        return books, crm_value.strip(), books_value.strip()

    def pair(self) -> FieldPair:
        """This map as a mapping-file field pair."""
        return FieldPair(books=self.books, crm=self.crm, direction=self.direction,
                         converter=self.converter)


def _named(view: str | None) -> str | None:
    """A view setting must name a view: an empty one would silently sync every record."""
    if view is not None and not view.strip():
        raise ValueError("the view is empty: name a CRM custom view (or give its id), or "
                         "leave the setting out to sync every record")
    return view


class _SyncModule(_Strict):
    """Settings shared by the record modules: scope, duplicates policy, view, extra maps."""

    enabled: bool = True
    scope: Scope = "both"  # two-way by default
    # Never overwrite or clone unless asked. "skip" stays the default of a module never
    # configured, so that existing connections keep what they did; `crmbooks connect` saves
    # "review" for the modules of a new connection.
    duplicates: Duplicates = "skip"
    # Added, after a space, to the name of a copy where the other side demands unique names
    # (Books contacts and items): duplicates "clone" and `crmbooks duplicates separate`.
    clone_suffix: str = "(2)"
    view: str | None = None  # CRM custom view name or id: only its records sync
    maps: tuple[FieldMapSetting, ...] = ()
    # Value maps by Books field ({"product_type": {"Goods": "goods"}}): CRM picklist value →
    # Books value, merged over the mapping file's map of that field (or making an extra map
    # of a CRM picklist a picklist map). Books → CRM takes the first CRM value of a Books
    # value, so a map is reversible only where no two CRM values share a Books value.
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    # A record deleted in the CRM (its deleted-records list) or in Books (an event, a retry,
    # an update its twin no longer takes): what happens to the twin on the other side.
    # "ignore" keeps it, as before these settings existed; the link is retired either way.
    on_delete_in_crm: OnDelete = "ignore"
    on_delete_in_books: OnDelete = "ignore"
    # The brake: a run that would delete or deactivate more than this many linked records
    # *and* more than this share (percent) of the module's links holds them all for
    # `crmbooks deletions approve RUN`.
    delete_brake_count: int = Field(default=25, ge=0)
    delete_brake_share: float = Field(default=5.0, ge=0, le=100)

    @field_validator("on_delete_in_books")
    @classmethod
    def _crm_has_no_status(cls, value: str) -> str:
        # CRM accounts, contacts and vendors have no active/inactive status a sync could set
        # (a Products flag alone would make the setting mean different things per module).
        if value == "deactivate":
            raise ValueError("the CRM has no inactive status to set on these records: "
                             "--on-delete-in-books takes ignore or delete")
        return value

    @field_validator("view")
    @classmethod
    def _named_view(cls, value: str | None) -> str | None:
        return _named(value)

    @field_validator("value_maps")
    @classmethod
    def _value_maps_named(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        # Keyed like the maps: the full Books path of a custom field, whichever form was typed.
        out: dict[str, dict[str, str]] = {}
        for books, entries in value.items():
            books = books.strip()
            books = f"custom_fields.{books}" if books.startswith("cf_") else books
            if not books or not entries:
                raise ValueError(f"value map {books!r} is empty: give at least one "
                                 "CRM_VALUE=BOOKS_VALUE")
            out[books] = {str(k).strip(): str(v).strip() for k, v in entries.items()}
        return out

    @field_validator("clone_suffix")
    @classmethod
    def _visible_suffix(cls, value: str) -> str:
        # A blank suffix would give the copy the same name, which Books refuses every run.
        if not value.strip():
            raise ValueError("the clone suffix is blank: give one with a visible character, "
                             "e.g. '(2)'")
        return value


class CustomersSettings(_SyncModule):
    """Which CRM module feeds Books customers, and how."""

    crm_module: Literal["accounts", "contacts", "accounts+contacts"] = "accounts"
    include_unassociated_contacts: bool = False
    contact_view: str | None = None

    @field_validator("contact_view")
    @classmethod
    def _named_contact_view(cls, value: str | None) -> str | None:
        return _named(value)

    @model_validator(mode="after")
    def _contacts_options(self) -> CustomersSettings:
        if self.crm_module != "accounts+contacts":
            if self.include_unassociated_contacts:
                raise ValueError("include_unassociated_contacts only applies when crm_module "
                                 "is accounts+contacts")
            if self.contact_view:
                raise ValueError("contact_view only applies when crm_module is "
                                 "accounts+contacts (with contacts, use view)")
        return self


class VendorsSettings(_SyncModule):
    """CRM Vendors ↔ Books vendors."""


class ItemsSettings(_SyncModule):
    """CRM Products ↔ Books items (Books is pushed first and wins in two-way mode)."""


def transaction_resources() -> tuple[str, ...]:
    """The Books resources of the document types (mappings/transactions.yaml): the names of
    `configure transactions --types` and of a map's section (`--map invoices:…`)."""
    return tuple(document_types())


class TransactionsSettings(_Strict):
    """Which transactions sync (both ways, event-driven), and their custom fields.

    ``maps`` pair a CRM field with a Books custom field (``custom_fields.cf_…``) of the
    transactions; ``section`` names one Books resource (estimates …) or, when left out, the
    map applies to every synced one. Values travel CRM → Books and Books → CRM (``direction``).
    """

    enabled: bool = False
    modules: tuple[str, ...] = Field(default_factory=lambda: tuple(
        r for r, doc in document_types().items() if doc.synced_by_default))
    maps: tuple[FieldMapSetting, ...] = ()

    @field_validator("modules")
    @classmethod
    def _known_types(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        known = transaction_resources()
        unknown = [m for m in modules if m not in known]
        if unknown:
            raise ValueError(f"unknown transaction type {', '.join(unknown)}: use "
                             f"{', '.join(known)}")
        return modules

    @model_validator(mode="after")
    def _custom_fields_only(self) -> TransactionsSettings:
        for m in self.maps:
            if not m.books.startswith("custom_fields.cf_") or m.books == "custom_fields.cf_crm_id":
                raise ValueError(f"maps: {m.books}={m.crm}: transactions map Books custom fields "
                                 "only (cf_…, not cf_crm_id, which crmbooks owns)")
            if m.section is not None and m.section not in transaction_resources():
                raise ValueError(f"maps: {m.books}={m.crm}: section must be "
                                 f"{' or '.join(transaction_resources())}, got {m.section!r}")
        return self


class DealTriggerSettings(_Strict):
    """Deal triggers: deal stages that create and accept quotes, or won deals that invoice."""

    enabled: bool = False  # off until configured
    mode: Literal["quote", "invoice"] = "quote"
    create_stage: str | None = None
    accept_stage: str | None = None
    invoice_on_accept: bool = False
    # The Books item id of the triggered transaction's one line (optional): with it, the line
    # has the item's CRM product, so the transaction can be shown in CRM Quotes / Invoices,
    # whose lines need a product.
    item: str | None = Field(default=None, pattern=r"^\d{1,30}$")

    @model_validator(mode="after")
    def _stages(self) -> DealTriggerSettings:
        if self.mode == "quote":
            if self.enabled and not self.create_stage:
                raise ValueError("quote mode needs create_stage: the deal stage at which a "
                                 "draft quote is created (e.g. Proposal/Price Quote)")
            if self.create_stage and self.create_stage == self.accept_stage:
                raise ValueError("accept_stage must differ from create_stage")
        else:
            given = [n for n in ("create_stage", "accept_stage") if getattr(self, n)]
            if given or self.invoice_on_accept:
                extra = given + (["invoice_on_accept"] if self.invoice_on_accept else [])
                raise ValueError(f"{', '.join(extra)}: only used in quote mode; invoice mode "
                                 "invoices won deals (probability 100)")
        return self

    @field_validator("create_stage", "accept_stage")
    @classmethod
    def _not_none_word(cls, value: str | None) -> str | None:
        if value is not None and value.strip() in ("", "-None-"):
            raise ValueError("pick a real deal stage, not an empty one")
        return value


SETTINGS_MODELS: dict[str, type[BaseModel]] = {
    "customers": CustomersSettings,
    "vendors": VendorsSettings,
    "items": ItemsSettings,
    "transactions": TransactionsSettings,
    "deals": DealTriggerSettings,
}
ModuleSettings = (
    CustomersSettings | VendorsSettings | ItemsSettings | TransactionsSettings
    | DealTriggerSettings
)


def describe_errors(exc: ValidationError, prefix: str) -> str:
    """A pydantic error as sentences naming each setting and what is wrong."""
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        if err["type"] == "extra_forbidden":
            out.append(f"{where}: unknown setting (check its spelling)")
        elif err["type"] == "literal_error":
            out.append(f"{where}: {err['msg'].lower()}, got {err['input']!r}")
        else:
            out.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(out)


def parse_module_settings(module: str, data: dict[str, Any] | None = None) -> ModuleSettings:
    """Validate ``data`` as the settings of ``module``; SettingsError with clear text otherwise.

    Missing keys take their defaults, so ``parse_module_settings("customers")`` is the default.
    """
    if module not in SETTINGS_MODELS:
        raise SettingsError(f"unknown module {module!r}; modules: {', '.join(MODULES)}")
    try:
        return SETTINGS_MODELS[module].model_validate(data or {})
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc, module)) from None


def parse_connection(data: dict[str, Any]) -> ConnectionSettings:
    """Validate connection settings; SettingsError with clear text otherwise."""
    try:
        return ConnectionSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc, "connection")) from None
