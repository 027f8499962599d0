"""Field metadata of the emulated Zoho CRM org: the single source of truth for validation,
`/settings/fields`, `/settings/modules`, search and COQL.

Field API names follow the v8 SDK field catalogue (reference §3.12). Data types use the names that
`/settings/fields` reports (`text`, `email`, `phone`, `website`, `textarea`, `picklist`, `integer`,
`currency`, `double`, `boolean`, `date`, `datetime`, `lookup`, `ownerlookup`, `subform`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT_MAX = 255
TEXTAREA_MAX = 32000

# Module API name -> (singular label, plural label, scope name, numeric module id suffix).
# The scope name is the lower-case form used in OAuth scopes (ZohoCRM.modules.salesorders.READ).
MODULES: dict[str, tuple[str, str, str, int]] = {
    "Accounts": ("Account", "Accounts", "accounts", 2),
    "Contacts": ("Contact", "Contacts", "contacts", 3),
    "Vendors": ("Vendor", "Vendors", "vendors", 4),
    "Products": ("Product", "Products", "products", 5),
    "Deals": ("Deal", "Deals", "deals", 6),
    "Quotes": ("Quote", "Quotes", "quotes", 7),
    "Sales_Orders": ("Sales Order", "Sales Orders", "salesorders", 8),
    "Invoices": ("Invoice", "Invoices", "invoices", 9),
    "Purchase_Orders": ("Purchase Order", "Purchase Orders", "purchaseorders", 10),
}

# The field whose value is a record's display name (used for lookup {"id","name"} rendering,
# the deleted-records `display_name` and upsert's system duplicate check, reference §3.4).
NAME_FIELD = {
    "Accounts": "Account_Name",
    "Contacts": "Full_Name",
    "Vendors": "Vendor_Name",
    "Products": "Product_Name",
    "Deals": "Deal_Name",
    "Quotes": "Subject",
    "Sales_Orders": "Subject",
    "Invoices": "Subject",
    "Purchase_Orders": "Subject",
}

# System duplicate-check fields for upsert (reference §3.4: Contacts Email, others the name).
SYSTEM_DUPLICATE_FIELDS = {
    "Accounts": ["Account_Name"],
    "Contacts": ["Email"],
    "Vendors": ["Vendor_Name"],
    "Products": ["Product_Name"],
    "Deals": ["Deal_Name"],
    "Quotes": ["Subject"],
    "Sales_Orders": ["Subject"],
    "Invoices": ["Subject"],
    "Purchase_Orders": ["Subject"],
}

# Deal stages: (name, probability %, forecast_type (deal category), forecast_category).
# Zoho's defaults are org configuration and not published (reference §3.13 [U]); these are the
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

LINE_ITEM_SUBFORM = {
    "Quotes": "Quoted_Items",
    "Sales_Orders": "Ordered_Items",
    "Invoices": "Invoiced_Items",
    "Purchase_Orders": "Purchase_Items",
}

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
ORDER_STATUS = {
    "Quotes": ["Draft", "Negotiation", "Delivered", "On Hold", "Confirmed", "Closed Won",
               "Closed Lost"],
    "Sales_Orders": ["Created", "Approved", "Delivered", "Cancelled"],
    "Invoices": ["Created", "Approved", "Delivered", "Cancelled"],
    "Purchase_Orders": ["Created", "Approved", "Delivered", "Cancelled"],
}


def _line_items() -> list[Field]:
    return [
        _lk("Product_Name", "Product Name", "Products", mandatory=True),
        Field("Quantity", "Quantity", "double", length=16, decimal_place=2, mandatory=True),
        _cur("List_Price", "List Price"),
        _cur("Discount", "Discount"),
        _cur("Total", "Total", read_only=True),
        Field("Description", "Description", "textarea", length=2000),
    ]


def _order_fields(module: str) -> list[Field]:
    party = (_lk("Vendor_Name", "Vendor Name", "Vendors", mandatory=True)
             if module == "Purchase_Orders"
             else _lk("Account_Name", "Account Name", "Accounts", mandatory=True))
    fields = [
        _t("Subject", "Subject", mandatory=True),
        party,
        _lk("Deal_Name", "Deal Name", "Deals"),
        _lk("Contact_Name", "Contact Name", "Contacts"),
        _pick("Status", _status_label(module), ORDER_STATUS[module]),
        Field("Due_Date" if module != "Quotes" else "Valid_Till",
              "Due Date" if module != "Quotes" else "Valid Till", "date"),
        _cur("Sub_Total", "Sub Total", read_only=True),
        _cur("Grand_Total", "Grand Total", read_only=True),
        _cur("Adjustment", "Adjustment"),
        *_address("Billing", "Billing"),
        Field(LINE_ITEM_SUBFORM[module], "Product Details", "subform", mandatory=True,
              subform_fields=_line_items()),
        _t("Books_Id__c", "Books Id", 100, custom=True, unique=True),
        *_audit(),
    ]
    return fields


def _status_label(module: str) -> str:
    return {"Quotes": "Quote Stage", "Sales_Orders": "Status", "Invoices": "Status",
            "Purchase_Orders": "Status"}[module]


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
        **{m: _order_fields(m) for m in LINE_ITEM_SUBFORM},
    }


FIELDS: dict[str, list[Field]] = _build()
FIELD_MAP: dict[str, dict[str, Field]] = {
    m: {f.api_name: f for f in fs} for m, fs in FIELDS.items()
}
TEXT_TYPES = {"text", "email", "phone", "website", "textarea"}
NUMBER_TYPES = {"integer", "currency", "double"}


def module_id(module: str) -> str:
    """Stable numeric id of a module (used in /settings/modules and notification resource ids)."""
    return f"57257670000000{MODULES[module][3]:05d}"


def field_id(module: str, api_name: str) -> str:
    """Stable numeric id of a field, derived from its position in the module's field list."""
    names = list(FIELD_MAP[module])
    return f"5725767{MODULES[module][3]:03d}{names.index(api_name) + 1:09d}"


def json_type(f: Field) -> str:
    """The `json_type` reported for a field's data type."""
    if f.data_type in ("lookup", "ownerlookup"):
        return "jsonobject"
    if f.data_type == "subform":
        return "jsonarray"
    if f.data_type == "integer":
        return "integer"
    if f.data_type in ("currency", "double"):
        return "double"
    if f.data_type == "boolean":
        return "boolean"
    return "string"


def picklist_values(module: str, f: Field) -> list[dict]:
    """`pick_list_values` of a picklist field; Deal Stage values carry probability/categories."""
    stages = {s[0]: s for s in DEAL_STAGES}
    out = []
    for i, value in enumerate(f.picklist or []):
        item = {
            "display_value": value,
            "actual_value": value,
            "reference_value": value,
            "sequence_number": i + 1,
            "id": f"{field_id(module, f.api_name)}{i:03d}",
            "type": "used",
            "colour_code": None,
        }
        if module == "Deals" and f.api_name == "Stage" and value in stages:
            _, prob, forecast_type, category = stages[value]
            item["probability"] = prob
            item["forecast_type"] = forecast_type
            item["forecast_category"] = {"name": category, "id": f"57257670000001{i:05d}"}
            item["deal_category"] = forecast_type
        out.append(item)
    return out


UI_TYPES = {"text": 1, "textarea": 3, "email": 25, "phone": 33, "website": 21, "picklist": 2,
            "integer": 32, "currency": 36, "double": 38, "boolean": 301, "date": 24,
            "datetime": 333, "lookup": 133, "ownerlookup": 8, "subform": 501}


def _mini(module: str | None = None) -> dict:
    return {"api_name": module, "id": module_id(module) if module else None}


def field_meta(module: str, f: Field) -> dict:
    """The `/settings/fields` representation of one field (every key the v8 OAS requires)."""
    fid = field_id(module, f.api_name)
    editable = not f.read_only
    meta = {
        "associated_module": _mini(), "webhook": True,
        "operation_type": {"web_update": editable, "api_create": editable,
                           "web_create": editable, "api_update": editable},
        "colour_code_enabled_by_system": False, "field_label": f.label,
        "tooltip": {"name": "", "value": ""}, "type": "used", "field_read_only": f.read_only,
        "customizable_properties": [], "display_label": f.label, "read_only": f.read_only,
        "association_details": {"related_field": _mini(), "lookup_field": _mini()},
        "businesscard_supported": not f.read_only, "multi_module_lookup": None, "id": fid,
        "created_time": None, "filterable": True, "visible": True,
        "refer_from_field": {"id": "", "api_name": ""},
        "profiles": [{"permission_type": "read_write" if editable else "read_only",
                      "name": "Administrator", "id": "5725767000000099100"}],
        "view_type": {"view": True, "edit": editable, "quick_create": f.mandatory,
                      "create": editable},
        "separator": False, "searchable": f.data_type != "subform",
        "external": {"show": False, "type": "", "allow_multiple_config": False},
        "api_name": f.api_name, "unique": {"casesensitive": "false"} if f.unique else {},
        "enable_colour_code": False,
        "pick_list_values": picklist_values(module, f) if f.picklist else [],
        "system_mandatory": f.mandatory, "virtual_field": False, "json_type": json_type(f),
        "crypt": {"mode": "", "status": 0}, "created_source": "custom" if f.custom else "default",
        "display_type": -1, "ui_type": UI_TYPES.get(f.data_type, 1), "modified_time": None,
        "email_parser": {"fields_update_supported": False, "record_operations_supported": False},
        "currency": ({"rounding_option": "normal", "precision": f.decimal_place or 2}
                     if f.data_type == "currency" else None),
        "custom_field": f.custom, "lookup": None, "convert_mapping": {},
        "rollup_summary": None, "length": f.length or 0,
        "display_field": f.api_name == NAME_FIELD[module],
        "pick_list_values_sorted_lexically": False,
        "sortable": f.data_type not in ("subform", "textarea"),
        "history_tracking": {"module": {}, "duration_configured_field": _mini()},
        "data_type": f.data_type, "formula": None, "decimal_place": f.decimal_place,
        "mass_update": editable, "multiselectlookup": None, "multiuserlookup": _msl(),
        "auto_number": None, "autonumber": {"starting_number_length": 0, "prefix": "",
                                            "suffix": "", "start_number": 0},
        "subform": None, "sub_module": _mini(), "file_upolad_optionlist": [],
        "layout_associations": [{"api_name": "Standard", "name": "Standard",
                                 "id": f"57257670000000{MODULES[module][3]:02d}091"}],
        "allowed_modules": [], "additional_column": None, "common.picklist": None,
        "hipaa_compliance_enabled": False,
        "hipaa_compliance": {"restricted_in_export": False, "restricted": False},
        "_update_existing_records": False, "number_separator": f.data_type in (
            "integer", "currency", "double"), "textarea": {"type": "large"}
        if f.data_type == "textarea" else {}, "static_field": False,
        "quick_sequence_number": "1", "available_in_user_layout": True,
        "blueprint_supported": editable, "show_type": 7, "category": 0,
        "column_name": f.api_name.upper(), "sharing_properties": {
            "scheduler_status": "", "share_preference_enabled": False,
            "share_permission": "read-write"},
    }
    if f.lookup_module:
        meta["lookup"] = {
            "display_label": f.label, "api_name": f.api_name, "id": fid,
            "module": {"api_name": f.lookup_module, "id": module_id(f.lookup_module)},
            "query_details": {}, "revalidate_filter_during_edit": False, "show_fields": [],
        }
    if f.data_type == "subform":
        meta["associated_module"] = {"api_name": f.api_name, "id": module_id(module)}
        meta["subform"] = {"module": f.api_name, "id": fid}
    return meta


def _msl() -> dict:
    return {"display_label": "", "linking_module": _mini(), "connected_module": _mini(),
            "lookup_apiname": "", "api_name": "", "connectedfield_apiname": "",
            "connectedlookup_apiname": "", "id": "", "record_access": False}
