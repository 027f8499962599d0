"""Field metadata of the emulated Zoho CRM org: the single source of truth for validation,
`/settings/fields`, `/settings/modules`, search and COQL.

Field API names are those of Zoho's v8 SDK field catalogue. Data types use the names that
`/settings/fields` reports (`text`, `email`, `phone`, `website`, `textarea`, `picklist`, `integer`,
`currency`, `double`, `boolean`, `date`, `datetime`, `lookup`, `ownerlookup`, `subform`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.common.documents import BUILT_IN, DocumentType

TEXT_MAX = 255
TEXTAREA_MAX = 32000


@dataclass(frozen=True)
class CrmModule:
    """One module of the org as `/settings/modules` names it."""

    singular: str  # "Sales Order"
    plural: str  # "Sales Orders"
    # The lower-case form used in OAuth scopes (ZohoCRM.modules.salesorders.READ).
    scope: str
    number: int  # the numeric suffix of the module's id (and of its fields' and views' ids)
    # The field whose value is a record's display name: lookups render it as {"id","name"},
    # the deleted-records list shows it as `display_name`, and upsert checks it for duplicates.
    name_field: str
    # Upsert's system duplicate-check fields: Email for Contacts, the name field elsewhere.
    duplicate_fields: tuple[str, ...]
    subform: str | None = None  # the line-item subform of a document module
    custom: bool = False  # a module an administrator added, not one Zoho ships


def _module(singular: str, plural: str, number: int, name_field: str,
            duplicate: str | None = None) -> CrmModule:
    scope = plural.lower().replace(" ", "")
    return CrmModule(singular, plural, scope, number, name_field, (duplicate or name_field,))


# The modules every org has that are not document modules (those come from the document
# type declarations, see `document_module`).
BASE_MODULES: dict[str, CrmModule] = {
    "Accounts": _module("Account", "Accounts", 2, "Account_Name"),
    "Contacts": _module("Contact", "Contacts", 3, "Full_Name", "Email"),
    "Vendors": _module("Vendor", "Vendors", 4, "Vendor_Name"),
    "Products": _module("Product", "Products", 5, "Product_Name"),
    "Deals": _module("Deal", "Deals", 6, "Deal_Name"),
}


def document_module(doc: DocumentType, number: int) -> CrmModule:
    """The CRM module of a document type: named by its Subject, with a line-item subform."""
    return CrmModule(doc.crm_singular, doc.crm_plural, doc.crm_module.lower().replace("_", ""),
                     number, "Subject", ("Subject",), doc.crm_subform, doc.crm_custom)


# Deal stages: (name, probability %, forecast_type (deal category), forecast_category).
# Zoho's defaults are org configuration and not published (unverified); these are the
# commonly quoted ones. Connectors must read them from /settings/fields, never hard-code them.
DEAL_STAGES: list[tuple[str, int, str, str]] = [
    ("Qualification", 10, "Open", "Pipeline"),
    ("Needs Analysis", 20, "Open", "Pipeline"),
    ("Value Proposition", 40, "Open", "Pipeline"),
    ("Identify Decision Makers", 60, "Open", "Pipeline"),
    ("Proposal/Price Quote", 75, "Open", "Pipeline"),
    ("Negotiation/Review", 90, "Open", "Pipeline"),
    ("Closed Won", 100, "Closed Won", "Closed"),
    ("Closed Lost", 0, "Closed Lost", "Omitted"),
    ("Closed Lost to Competition", 0, "Closed Lost", "Omitted"),
]
STAGE_PROBABILITY = {name: prob for name, prob, _, _ in DEAL_STAGES}

CURRENCIES = ["USD", "EUR", "GBP", "INR", "JPY", "AUD", "CAD"]


@dataclass
class Field:
    """One field of a module, as `/settings/fields` describes it."""

    api_name: str
    label: str
    data_type: str
    length: int | None = None
    mandatory: bool = False
    read_only: bool = False
    custom: bool = False
    unique: bool = False
    picklist: list[str] | None = None
    lookup_module: str | None = None
    subform_fields: list[Field] = field(default_factory=list)
    decimal_place: int | None = None


def _t(api: str, label: str, length: int = TEXT_MAX, **kw) -> Field:
    return Field(api, label, "text", length=length, **kw)


def _pick(api: str, label: str, values: list[str], **kw) -> Field:
    return Field(api, label, "picklist", picklist=["-None-", *values], **kw)


def _cur(api: str, label: str, **kw) -> Field:
    return Field(api, label, "currency", length=16, decimal_place=2, **kw)


def _lk(api: str, label: str, module: str, **kw) -> Field:
    return Field(api, label, "lookup", lookup_module=module, **kw)


def _figures() -> list[Field]:
    """The Books accounting figures crmbooks writes on a customer (its README names them):
    offered by default so that the demo and the tests need no setup."""
    return [
        _cur("Books_Outstanding__c", "Books Outstanding Receivables", custom=True),
        _cur("Books_Unused_Credits__c", "Books Unused Credits", custom=True),
        _cur("Books_Invoiced_This_Year__c", "Books Invoiced This Fiscal Year", custom=True),
        _cur("Books_Invoiced_Total__c", "Books Invoiced All Time", custom=True),
        Field("Books_Last_Payment_Date__c", "Books Last Payment Date", "date", custom=True),
        _cur("Books_Last_Payment_Amount__c", "Books Last Payment Amount", custom=True),
        _t("Books_Currency__c", "Books Currency", 10, custom=True),
    ]


def _audit() -> list[Field]:
    return [
        Field("Owner", "Owner", "ownerlookup"),
        Field("Created_By", "Created By", "ownerlookup", read_only=True),
        Field("Modified_By", "Modified By", "ownerlookup", read_only=True),
        Field("Created_Time", "Created Time", "datetime", read_only=True),
        Field("Modified_Time", "Modified Time", "datetime", read_only=True),
        _pick("Currency", "Currency", CURRENCIES),
        Field("Exchange_Rate", "Exchange Rate", "double", length=16, decimal_place=9),
        Field("Description", "Description", "textarea", length=TEXTAREA_MAX),
    ]


def _address(prefix: str, label: str, zip_name: str = "Code") -> list[Field]:
    return [
        _t(f"{prefix}_Street", f"{label} Street"),
        _t(f"{prefix}_City", f"{label} City", 100),
        _t(f"{prefix}_State", f"{label} State", 100),
        _t(f"{prefix}_{zip_name}", f"{label} Code", 30),
        _t(f"{prefix}_Country", f"{label} Country", 100),
    ]


INDUSTRIES = [
    "Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education",
    "Government", "Consulting", "Telecommunications", "Transportation",
]
USAGE_UNITS = ["Box", "Carton", "Dozen", "Each", "Hour(s)", "Impressions", "Lb", "M", "Pack",
               "Pages", "Pieces", "Quantity", "Reams", "Sheet", "Spiral Binder", "Sq Ft"]


def _line_items() -> list[Field]:
    return [
        _lk("Product_Name", "Product Name", "Products", mandatory=True),
        Field("Quantity", "Quantity", "double", length=16, decimal_place=2, mandatory=True),
        _cur("List_Price", "List Price"),
        _cur("Discount", "Discount"),
        _cur("Total", "Total", read_only=True),
        Field("Description", "Description", "textarea", length=2000),
    ]


def document_fields(doc: DocumentType) -> list[Field]:
    """The fields of a document type's CRM module: the same shapes for every document (a
    Subject, the party lookup, a status picklist, totals, billing address, the line items, a
    unique Books_Id__c), plus the declaration's own extra fields."""
    party = (_lk("Vendor_Name", "Vendor Name", "Vendors", mandatory=True)
             if doc.party == "vendor"
             else _lk("Account_Name", "Account Name", "Accounts", mandatory=True))
    date = [Field(doc.crm_date_field, doc.crm_date_label, "date")] if doc.crm_date_field else []
    extra = [_extra(spec) for spec in doc.crm_extra_fields]
    return [
        _t("Subject", "Subject", mandatory=True),
        party,
        _lk("Deal_Name", "Deal Name", "Deals"),
        _lk("Contact_Name", "Contact Name", "Contacts"),
        _pick("Status", doc.crm_status_label, list(doc.crm_statuses)),
        *date,
        _cur("Sub_Total", "Sub Total", read_only=True),
        _cur("Grand_Total", "Grand Total", read_only=True),
        _cur("Adjustment", "Adjustment"),
        *_address("Billing", "Billing"),
        Field(doc.crm_subform, "Product Details", "subform", mandatory=True,
              subform_fields=_line_items()),
        _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
        # what crmbooks shows of the Books record: its number and its page in the Books app
        _t("Books_Number__c", "Books Number", 100, custom=True),
        Field("Books_URL__c", "Books URL", "website", length=TEXT_MAX, custom=True),
        *extra,
        *_audit(),
    ]


def _extra(spec: dict) -> Field:
    """A declared extra field; picklists get the "-None-" entry Zoho puts first."""
    values = dict(spec)
    values.setdefault("data_type", "text")
    values.setdefault("label", values["api_name"].replace("_", " "))
    if values["data_type"] == "picklist":
        values["picklist"] = ["-None-", *values.get("picklist", [])]
    if values["data_type"] == "text":
        values.setdefault("length", TEXT_MAX)
    return Field(values.pop("api_name"), values.pop("label"), values.pop("data_type"),
                 custom=True, **values)


def _build() -> dict[str, list[Field]]:
    return {
        "Accounts": [
            _t("Account_Name", "Account Name", 200, mandatory=True),
            _t("Account_Number", "Account Number", 40),
            _pick("Account_Type", "Account Type",
                  ["Analyst", "Competitor", "Customer", "Distributor", "Integrator",
                   "Investor", "Other", "Partner", "Press", "Prospect", "Reseller", "Supplier",
                   "Vendor"]),
            _lk("Parent_Account", "Parent Account", "Accounts"),
            Field("Phone", "Phone", "phone", length=30),
            Field("Fax", "Fax", "phone", length=30),
            Field("Website", "Website", "website", length=TEXT_MAX),
            _pick("Industry", "Industry", INDUSTRIES),
            Field("Employees", "Employees", "integer", length=9),
            _cur("Annual_Revenue", "Annual Revenue"),
            *_address("Billing", "Billing"),
            *_address("Shipping", "Shipping"),
            _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
            _pick("Tier__c", "Tier", ["Gold", "Silver", "Bronze"], custom=True),
            *_figures(),
            *_audit(),
        ],
        "Contacts": [
            _pick("Salutation", "Salutation", ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof."]),
            _t("First_Name", "First Name", 40),
            _t("Last_Name", "Last Name", 80, mandatory=True),
            _t("Full_Name", "Full Name", read_only=True),
            Field("Email", "Email", "email", length=100),
            Field("Secondary_Email", "Secondary Email", "email", length=100),
            Field("Phone", "Phone", "phone", length=30),
            Field("Mobile", "Mobile", "phone", length=30),
            _t("Title", "Title", 100),
            _t("Department", "Department", 100),
            _lk("Account_Name", "Account Name", "Accounts"),
            _lk("Vendor_Name", "Vendor Name", "Vendors"),
            Field("Date_of_Birth", "Date of Birth", "date"),
            Field("Email_Opt_Out", "Email Opt Out", "boolean"),
            *_address("Mailing", "Mailing", "Zip"),
            _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
            *_figures(),
            *_audit(),
        ],
        "Vendors": [
            _t("Vendor_Name", "Vendor Name", 100, mandatory=True),
            Field("Email", "Email", "email", length=100),
            Field("Phone", "Phone", "phone", length=30),
            Field("Website", "Website", "website", length=TEXT_MAX),
            _pick("Category", "Category", ["Hardware", "Software", "Services", "Logistics"]),
            _t("GL_Account", "GL Account", 100),
            _t("Street", "Street"),
            _t("City", "City", 100),
            _t("State", "State", 100),
            _t("Zip_Code", "Zip Code", 30),
            _t("Country", "Country", 100),
            Field("Email_Opt_Out", "Email Opt Out", "boolean"),
            _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
            *_audit(),
        ],
        "Products": [
            _t("Product_Name", "Product Name", 200, mandatory=True),
            _t("Product_Code", "Product Code", 40),
            _pick("Product_Category", "Product Category",
                  ["Hardware", "Software", "CRM Applications", "Services"]),
            Field("Product_Active", "Product Active", "boolean"),
            _cur("Unit_Price", "Unit Price"),
            Field("Taxable", "Taxable", "boolean"),
            _t("Manufacturer", "Manufacturer", 100),
            _lk("Vendor_Name", "Vendor Name", "Vendors"),
            _pick("Usage_Unit", "Usage Unit", USAGE_UNITS),
            Field("Qty_in_Stock", "Qty in Stock", "double", length=16, decimal_place=2),
            _pick("Product_Type__c", "Product Type", ["Goods", "Services"], custom=True),
            _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
            *_audit(),
        ],
        "Deals": [
            _t("Deal_Name", "Deal Name", 120, mandatory=True),
            _lk("Account_Name", "Account Name", "Accounts"),
            _lk("Contact_Name", "Contact Name", "Contacts"),
            _cur("Amount", "Amount"),
            Field("Stage", "Stage", "picklist", mandatory=True,
                  picklist=["-None-", *[s[0] for s in DEAL_STAGES]]),
            Field("Probability", "Probability (%)", "integer", length=3),
            _cur("Expected_Revenue", "Expected Revenue", read_only=True),
            Field("Closing_Date", "Closing Date", "date"),
            _pick("Type", "Type", ["Existing Business", "New Business"]),
            _pick("Lead_Source", "Lead Source",
                  ["Advertisement", "Cold Call", "Employee Referral", "Online Store", "Partner",
                   "Web Download", "Trade Show"]),
            _t("Next_Step", "Next Step", 100),
            _t("Books_Estimate_Id__c", "Books Estimate Id", 100, custom=True),
            *_audit(),
        ],
        **{doc.crm_module: document_fields(doc) for doc in _BY_NUMBER},
    }


# The built-in document modules in the order of their module numbers (Quotes first).
_BY_NUMBER = sorted(BUILT_IN, key=lambda doc: doc.crm_number or 0)

# Every module the org starts with, in module-number order.
MODULES: dict[str, CrmModule] = {
    **BASE_MODULES,
    **{doc.crm_module: document_module(doc, doc.crm_number or 0) for doc in _BY_NUMBER},
}
# Fields of the built-in modules. The emulator reads these tables each time it needs them, so
# a test may add a field to a module (monkeypatch.setitem) while an emulator runs.
FIELDS: dict[str, list[Field]] = _build()
FIELD_MAP: dict[str, dict[str, Field]] = {
    m: {f.api_name: f for f in fs} for m, fs in FIELDS.items()
}
TEXT_TYPES = {"text", "email", "phone", "website", "textarea"}
NUMBER_TYPES = {"integer", "currency", "double"}
