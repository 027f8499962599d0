"""Declarative description of the Zoho Books v3 resources the emulator serves.

Each `Resource` says what the generic handlers in `emulators.books.emulator` need: envelope
keys, id field, scopes, number prefix, required and documented body fields, the status machine,
list filters and sort columns. Contacts and items are declared here; every transaction resource
is built from a document type declaration (`emulators.common.documents`), the four Zoho ships
with and any declared at run time. Field names and rules come from Zoho's published Books
OpenAPI files; the field lists below are names only, written out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.common.documents import BUILT_IN, DocumentType, StatusAction

# Body fields Zoho documents for each resource's create/update requests (the request schemas
# of its Books OpenAPI files). A description only: keys outside them are ignored, not refused,
# since Zoho documents no refusal (docs/emulator-refusals.md).
_TXN_COMMON = {
    "currency_id", "custom_fields", "date", "discount", "discount_type", "exchange_rate",
    "is_discount_before_tax", "is_inclusive_tax", "line_items", "location_id", "notes",
    "reference_number", "tags", "template_id", "terms", "contact_persons_associated",
    "gst_no", "gst_treatment", "place_of_supply", "tax_treatment", "vat_treatment",
    "tax_id", "tax_exemption_id", "tax_authority_id", "avatax_use_code", "avatax_exempt_no",
    "is_reverse_charge_applied",
    # Not in the documented request schemas, accepted here on purpose: the list filters of
    # estimates, invoices and sales orders use them, and crmbooks writes them. Unverified
    # against a live org.
    "currency_code", "zcrm_potential_id", "zcrm_potential_name",
}
CONTACT_FIELDS = {
    "avatax_exempt_no", "avatax_use_code", "billing_address", "company_name", "contact_name",
    "contact_number", "contact_persons", "contact_type", "country_code", "credit_limit",
    "currency_id", "custom_fields", "customer_sub_type", "default_templates", "facebook",
    "gst_no", "gst_treatment", "ignore_auto_number_generation", "is_portal_enabled",
    "is_taxable", "is_tds_registered", "language_code", "legal_name", "notes",
    "opening_balances", "owner_id", "payment_terms", "payment_terms_label", "place_of_contact",
    "pricebook_id", "shipping_address", "tags", "tax_authority_id", "tax_authority_name",
    "tax_exemption_certificate_number", "tax_exemption_code", "tax_exemption_id", "tax_id",
    "tax_id_type", "tax_id_value", "tax_reg_no", "tax_regime", "tax_treatment", "tds_tax_id",
    "track_1099", "twitter", "vat_reg_no", "vat_treatment", "website",
    # CRM links (the contacts list filters on them) and currency by code: not in the
    # documented request schema (unverified).
    "zcrm_account_id", "zcrm_contact_id", "zcrm_vendor_id", "currency_code",
}
CONTACT_PERSON_FIELDS = {
    "communication_preference", "contact_id", "department", "designation", "email",
    "enable_portal", "first_name", "is_primary_contact", "last_name", "mobile", "phone",
    "salutation", "skype",
}
ITEM_FIELDS = {
    "account_id", "avatax_tax_code", "avatax_use_code", "custom_fields", "description",
    "hsn_or_sac", "inventory_account_id", "is_taxable", "item_tax_preferences", "item_type",
    "locations", "name", "product_type", "purchase_account_id", "purchase_description",
    "purchase_rate", "purchase_tax_exemption_id", "purchase_tax_rule_id", "rate",
    "reorder_level", "sales_tax_rule_id", "sat_item_key_code", "sku", "tax_exemption_id",
    "tax_id", "tax_percentage", "unitkey_code", "vendor_id", "unit",
}
LINE_ITEM_FIELDS = {
    "bcy_rate", "description", "discount", "discount_amount", "hsn_or_sac", "item_id",
    "item_order", "item_total", "line_item_category", "line_item_id", "location_id", "name",
    "product_type", "quantity", "rate", "sat_item_key_code", "tags", "tax_id", "tax_name",
    "tax_percentage", "tax_treatment_code", "tax_type", "tds_tax_id", "unit", "unitkey_code",
    "item_custom_fields", "project_id", "salesorder_item_id", "account_id", "tax_exemption_id",
    "tax_exemption_code",
}

ADDRESS_FIELDS = ("attention", "address", "street2", "state_code", "city", "state", "zip",
                  "country", "fax", "phone")
PERSON_KEYS = ("salutation", "first_name", "last_name", "email", "phone", "mobile",
               "designation", "department", "skype")


@dataclass(frozen=True)
class Resource:
    """One Books collection and the rules the generic handlers apply to it."""

    key: str  # singular envelope key: "contact"
    plural: str  # collection path and list envelope key: "contacts"
    id_field: str
    label: str  # "Contact" in messages such as "Contact does not exist."
    scope: str  # ZohoBooks.<scope>.<OPERATION>
    fields: frozenset[str]
    required: tuple[str, ...]
    report_name: str
    sort_columns: tuple[str, ...]
    default_sort: tuple[str, str]  # (column, order)
    summary: tuple[str, ...]  # list-item fields
    messages: dict[str, str]
    number_field: str | None = None
    number_prefix: str | None = None
    party: str | None = None  # "customer" or "vendor" for transactions
    initial_status: str | None = None
    # Status endpoints by action: POST /<collection>/{id}/status/<action>.
    transitions: dict[str, StatusAction] = field(default_factory=dict)
    filter_by: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    text_filters: tuple[str, ...] = ()
    exact_filters: tuple[str, ...] = ()
    # Books documents a `last_modified_time` list filter ("modified after") for estimates,
    # invoices, sales orders and purchase orders; contacts and items have none.
    has_lmt_filter: bool = False
    has_date_filters: bool = False
    date_field: str | None = None  # a transaction's second date (expiry_date, due_date, ...)


def _status_filters(*statuses: str, aliases: dict[str, tuple[str, ...]] | None = None,
                    others: tuple[str, ...] = ()) -> dict[str, tuple[str, ...] | None]:
    """filter_by values: Status.<Name> per status, documented aliases, and documented values
    the emulator has no data for (`others`: accepted, they match no record)."""
    table: dict[str, tuple[str, ...] | None] = {"Status.All": None}
    for status in statuses:
        table["Status." + status.title().replace("_", "")] = (status,)
    table.update(aliases or {})
    table.update({name: () for name in others})
    return table


CONTACTS = Resource(
    key="contact", plural="contacts", id_field="contact_id", label="Contact",
    scope="contacts", fields=frozenset(CONTACT_FIELDS), required=("contact_name",),
    report_name="Contacts",
    sort_columns=("contact_name", "first_name", "last_name", "email",
                  "outstanding_receivable_amount", "created_time", "last_modified_time"),
    default_sort=("contact_name", "A"),
    summary=("contact_id", "contact_name", "customer_name", "vendor_name", "company_name",
             "contact_type", "customer_sub_type", "status", "payment_terms",
             "payment_terms_label", "currency_id", "currency_code",
             "outstanding_receivable_amount", "unused_credits_receivable_amount", "first_name",
             "last_name", "email", "phone", "mobile", "is_linked_with_zohocrm",
             "created_time", "last_modified_time"),
    messages={"created": "The contact has been created",
              "updated": "Contact has been updated successfully",
              "deleted": "The contact has been deleted."},
    filter_by={"Status.All": None, "Status.Active": None, "Status.Inactive": None,
               "Status.Crm": None, "Status.Duplicate": None, "Status.PortalEnabled": None,
               "Status.PortalDisabled": None, "Status.CreditLimitExceed": None,
               "Invoice.OverDue": None, "Invoice.Unpaid": None},
    text_filters=("contact_name", "company_name", "first_name", "last_name", "email",
                  "phone", "address"),
    exact_filters=("contact_type", "zcrm_account_id", "zcrm_contact_id", "zcrm_vendor_id"),
)

ITEMS = Resource(
    key="item", plural="items", id_field="item_id", label="Item", scope="settings",
    fields=frozenset(ITEM_FIELDS), required=("name", "rate"), report_name="Items",
    sort_columns=("name", "rate", "tax_name"), default_sort=("name", "A"),
    summary=("item_id", "name", "status", "description", "rate", "unit", "tax_id",
             "tax_name", "tax_percentage", "sku", "product_type", "item_type",
             "custom_fields"),
    messages={"created": "The item has been added.",
              # Zoho's OpenAPI example answers "success"; this wording is unverified.
              "updated": "The item details have been saved.",
              "deleted": "The item has been deleted."},
    filter_by={"Status.All": None, "Status.Active": ("active",),
               "Status.Inactive": ("inactive",)},
    text_filters=("name", "description"), exact_filters=("tax_id",),
)


def transaction_resource(doc: DocumentType) -> Resource:
    """The Books resource of a document type: what the declaration says, and for what it
    leaves out the same rules as Zoho's transactions (required party and line items, sort by
    number, party name, date, total and the two timestamps, list rows of the header fields,
    the modified-after and date filters)."""
    party_name = f"{doc.party}_name"
    common = _TXN_COMMON if doc.party == "customer" else _TXN_COMMON - {
        "zcrm_potential_id", "zcrm_potential_name"}
    own = doc.books_fields if doc.books_fields is not None else frozenset(
        {doc.party_field, doc.number_field, "shipping_charge", "adjustment",
         "adjustment_description", *([doc.date_field] if doc.date_field else [])})
    noun = doc.label.lower()
    return Resource(
        key=doc.key, plural=doc.resource, id_field=doc.id_field, label=doc.label,
        scope=doc.resource, fields=frozenset(common | own),
        required=doc.books_required or (doc.party_field, "line_items"),
        report_name=doc.books_report_name or f"{doc.label}s",
        sort_columns=doc.books_sort_columns or (
            doc.number_field, party_name, "date", "total", "created_time",
            "last_modified_time"),
        default_sort=("created_time", "D"),
        summary=doc.books_summary or (
            doc.id_field, party_name, doc.party_field, "status", doc.number_field,
            "reference_number", "date", *([doc.date_field] if doc.date_field else []),
            "currency_id", "currency_code", "total", "created_time", "last_modified_time"),
        messages=doc.books_messages or {"created": f"The {noun} has been created.",
                                        "updated": f"The {noun} has been updated.",
                                        "deleted": f"The {noun} has been deleted."},
        number_field=doc.number_field, number_prefix=doc.number_prefix, party=doc.party,
        initial_status=doc.initial_status, transitions=dict(doc.actions),
        filter_by=_status_filters(*doc.statuses, aliases=doc.books_filter_aliases,
                                  others=doc.books_filter_others),
        text_filters=doc.books_text_filters or (doc.number_field, party_name, "item_name"),
        exact_filters=doc.books_exact_filters or (
            doc.party_field, "status",
            *(["zcrm_potential_id"] if doc.party == "customer" else []), "reference_number",
            "item_id"),
        has_lmt_filter=True, has_date_filters=True, date_field=doc.date_field,
    )


ESTIMATES, INVOICES, SALESORDERS, PURCHASEORDERS = (transaction_resource(d) for d in BUILT_IN)
TRANSACTIONS = (ESTIMATES, INVOICES, SALESORDERS, PURCHASEORDERS)
ALL = (CONTACTS, ITEMS) + TRANSACTIONS
BY_PLURAL = {r.plural: r for r in ALL}


# --------------------------------------------------------------------------------------------
# Receivables: credit notes and customer payments (served natively, with their effect on
# invoices and on the customer's receivables; see emulators.books.receivables)
# --------------------------------------------------------------------------------------------

# credit-notes.yml: statuses draft/open/closed/void; "closed" is reached when every credit is
# used and left when an application is removed. Messages of the status actions follow the
# wording of Zoho's API pages for credit notes (unverified against a live org).
CREDITNOTE_ACTIONS = {
    "void": StatusAction("void", ("draft", "open"),
                         "The credit note has been voided."),
    "open": StatusAction("open", ("draft", "void"),
                         "The status of the credit note has been changed to open."),
    "draft": StatusAction("draft", ("void",),
                          "The status of the credit note has been changed to draft."),
}

CREDITNOTES = Resource(
    key="creditnote", plural="creditnotes", id_field="creditnote_id", label="Credit Note",
    scope="creditnotes",
    fields=frozenset(_TXN_COMMON | {"customer_id", "creditnote_number", "invoice_id",
                                    "shipping_charge", "adjustment",
                                    "adjustment_description"}),
    required=("customer_id", "line_items"), report_name="Credit Notes",
    # credit-notes.yml documents these sort columns (plus cf_ ones, not served here).
    sort_columns=("customer_name", "creditnote_number", "balance", "total", "date",
                  "created_time", "last_modified_time"),
    default_sort=("created_time", "D"),
    summary=("creditnote_id", "creditnote_number", "status", "customer_id", "customer_name",
             "reference_number", "date", "currency_id", "currency_code", "total", "balance",
             "created_time", "last_modified_time"),
    messages={"created": "The credit note has been created.",
              "updated": "Credit note information has been updated.",
              "deleted": "The credit note has been deleted."},
    number_field="creditnote_number", number_prefix="CN-", party="customer",
    # Books opens a credit note on creation (it is a credit at once); drafts come from the
    # draft action.
    initial_status="open", transitions=CREDITNOTE_ACTIONS,
    filter_by=_status_filters("open", "closed", "void", "draft"),
    text_filters=("creditnote_number", "customer_name", "item_name", "reference_number"),
    exact_filters=("customer_id", "status", "item_id"),
    has_lmt_filter=True, has_date_filters=True,
)

# customer-payments.yml: the list filters customer_id, customer_name, reference_number,
# payment_mode, notes, date and amount, and filter_by PaymentMode.<mode>.
PAYMENT_MODES = ("check", "cash", "creditcard", "banktransfer", "bankremittance",
                 "autotransaction", "others")
CUSTOMERPAYMENTS = Resource(
    key="payment", plural="customerpayments", id_field="payment_id", label="Payment",
    scope="customerpayments",
    fields=frozenset({"customer_id", "payment_mode", "amount", "date", "reference_number",
                      "description", "invoices", "exchange_rate", "payment_form",
                      "bank_charges", "custom_fields", "location_id", "invoice_id",
                      "amount_applied", "tax_amount_withheld", "account_id",
                      "contact_persons", "retainerinvoice_id"}),
    required=("customer_id", "payment_mode", "amount"), report_name="Customer Payments",
    sort_columns=("date", "payment_number", "reference_number", "customer_name", "amount",
                  "created_time", "last_modified_time"),
    default_sort=("created_time", "D"),
    summary=("payment_id", "payment_number", "customer_id", "customer_name", "payment_mode",
             "reference_number", "date", "amount", "bcy_amount", "unused_amount",
             "currency_id", "currency_code", "description", "invoice_numbers",
             "created_time", "last_modified_time"),
    messages={"created": "The payment has been created.",
              "updated": "The payment details have been updated.",
              "deleted": "The payment has been deleted."},
    party="customer",
    filter_by={"PaymentMode.All": None, **{f"PaymentMode.{name}": None for name in (
        "Check", "Cash", "BankTransfer", "Paypal", "CreditCard", "GoogleCheckout", "Credit",
        "Authorizenet", "BankRemittance", "Payflowpro", "Stripe", "TwoCheckout", "Braintree",
        "Others")}, "Status.All": None},
    text_filters=("customer_name", "reference_number", "payment_mode", "description"),
    exact_filters=("customer_id",),
    # Not among the documented list parameters of customer payments; served because the
    # other transaction lists have it and a sync client asks for it (unverified).
    has_lmt_filter=True, has_date_filters=True,
)
RECEIVABLES = (CREDITNOTES, CUSTOMERPAYMENTS)
ALL = ALL + RECEIVABLES
BY_PLURAL = {r.plural: r for r in ALL}
