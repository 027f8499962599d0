"""Declarative description of the Zoho Books v3 resources the emulator serves.

Each `Resource` says what the generic handlers in `emulators.books` need: envelope keys, id
field, scopes, number prefix, required and accepted body fields, the status machine, list
filters and sort columns. Field names and rules come from Zoho's published Books OpenAPI files
(ref §4.3-4.8, "BK-OAS"); the field lists below are names only, written out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Body fields Zoho documents for each resource's create/update requests (BK-OAS request
# schemas). Anything else in a body is answered with an error (see books.py, _check_fields).
_TXN_COMMON = {
    "currency_id", "custom_fields", "date", "discount", "discount_type", "exchange_rate",
    "is_discount_before_tax", "is_inclusive_tax", "line_items", "location_id", "notes",
    "reference_number", "tags", "template_id", "terms", "contact_persons_associated",
    "gst_no", "gst_treatment", "place_of_supply", "tax_treatment", "vat_treatment",
    "tax_id", "tax_exemption_id", "tax_authority_id", "avatax_use_code", "avatax_exempt_no",
    "is_reverse_charge_applied",
    # Not in the BK-OAS request schemas, accepted here on purpose (ref §4.5-4.7 list filters
    # use them; the brief asks for them to be writable). Unverified against a live org.
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
    # CRM links (ref §4.3 list filters) and currency by code: not in the request schema. [U]
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
class Transition:
    """A status endpoint: POST /<collection>/{id}/status/<action> (or a bare action path)."""

    to: str
    allowed_from: tuple[str, ...]
    message: str
    http_status: int = 200


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
    transitions: dict[str, Transition] = field(default_factory=dict)
    filter_by: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    text_filters: tuple[str, ...] = ()
    exact_filters: tuple[str, ...] = ()
    # ref §4.9: estimates/invoices/salesorders/purchaseorders document a `last_modified_time`
    # list filter ("modified after"); contacts and items do not, so they get none here.
    has_lmt_filter: bool = False
    has_date_filters: bool = False


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
              "updated": "The item details have been saved.",  # [U] OAS shows "success"
              "deleted": "The item has been deleted."},
    filter_by={"Status.All": None, "Status.Active": ("active",),
               "Status.Inactive": ("inactive",)},
    text_filters=("name", "description"), exact_filters=("tax_id",),
)

_TXN_SORT = ("customer_name", "date", "total", "created_time", "last_modified_time")

ESTIMATES = Resource(
    key="estimate", plural="estimates", id_field="estimate_id", label="Estimate",
    scope="estimates", fields=frozenset(_TXN_COMMON | {
        "customer_id", "estimate_number", "expiry_date", "salesperson_name", "shipping_charge",
        "adjustment", "adjustment_description", "custom_body", "custom_subject",
        "accept_retainer", "retainer_percentage", "project_id"}),
    required=("customer_id", "line_items"), report_name="Estimates",
    sort_columns=("estimate_number",) + _TXN_SORT, default_sort=("created_time", "D"),
    summary=("estimate_id", "customer_name", "customer_id", "status", "estimate_number",
             "reference_number", "date", "currency_id", "currency_code", "total",
             "created_time", "last_modified_time", "accepted_date", "declined_date",
             "expiry_date"),
    messages={"created": "The estimate has been created",
              "updated": "Estimate information has been updated.",
              "deleted": "The estimate has been deleted."},
    number_field="estimate_number", number_prefix="EST-", party="customer",
    initial_status="draft",
    transitions={
        "sent": Transition("sent", ("draft",), "Estimate status has been changed to Sent"),
        "accepted": Transition("accepted", ("draft", "sent", "declined", "expired"),
                               "Estimate status has been changed to Accepted."),
        "declined": Transition("declined", ("draft", "sent", "accepted", "expired"),
                               "Estimate status has been changed to Declined."),
    },
    filter_by=_status_filters(  # BK-OAS estimates filter_by enum
        "sent", "draft", "invoiced", "accepted", "declined", "expired",
        others=("Status.Pending", "Status.Approved", "Status.Viewed",
                "Status.AvalaraSyncFailed", "Status.TaxAutomationFailed", "Status.MyApprovals",
                "WithAttachment", "WithoutAttachment", "ExceptionList", "EmailScheduled",
                "Type.NewSubscription", "Type.Invoice")),
    text_filters=("estimate_number", "customer_name", "item_name"),
    exact_filters=("customer_id", "status", "zcrm_potential_id", "reference_number",
                   "item_id"),
    has_lmt_filter=True, has_date_filters=True,
)

INVOICES = Resource(
    key="invoice", plural="invoices", id_field="invoice_id", label="Invoice",
    scope="invoices", fields=frozenset(_TXN_COMMON | {
        "customer_id", "invoice_number", "due_date", "payment_terms", "payment_terms_label",
        "salesperson_name", "shipping_charge", "adjustment", "adjustment_description",
        "invoiced_estimate_id", "allow_partial_payments", "custom_body", "custom_subject",
        "payment_options", "reason", "recurring_invoice_id", "billing_address_id",
        "shipping_address_id", "send", "contact_persons"}),
    required=("customer_id", "line_items"), report_name="Invoices",
    # BK-OAS lists no last_modified_time sort for invoices (the filter exists, §4.6).
    sort_columns=("customer_name", "invoice_number", "date", "due_date", "total", "balance",
                  "created_time"),
    default_sort=("created_time", "D"),
    summary=("invoice_id", "customer_name", "customer_id", "status", "invoice_number",
             "reference_number", "date", "due_date", "currency_id", "currency_code", "total",
             "balance", "created_time", "last_modified_time"),
    messages={"created": "The invoice has been created.",
              "updated": "Invoice information has been updated.",
              "deleted": "The invoice has been deleted."},
    number_field="invoice_number", number_prefix="INV-", party="customer",
    initial_status="draft",
    transitions={
        "sent": Transition("sent", ("draft",), "Invoice status has been changed to Sent."),
        "void": Transition("void", ("draft", "sent", "overdue", "unpaid"),
                           "Invoice status has been changed to Void."),
        "draft": Transition("draft", ("void",), "Status of invoice changed from void to draft"),
    },
    filter_by=_status_filters(  # BK-OAS: Status.* and Date.PaymentExpectedDate
        "sent", "draft", "paid", "void", "partially_paid", "viewed",
        # every issued invoice not paid in full is unpaid (the emulator records no payments)
        aliases={"Status.OverDue": ("overdue",),
                 "Status.Unpaid": ("sent", "overdue", "unpaid", "partially_paid", "viewed")},
        others=("Date.PaymentExpectedDate",)),
    text_filters=("invoice_number", "customer_name", "item_name"),
    exact_filters=("customer_id", "status", "zcrm_potential_id", "reference_number",
                   "item_id"),
    has_lmt_filter=True, has_date_filters=True,
)

SALESORDERS = Resource(
    key="salesorder", plural="salesorders", id_field="salesorder_id", label="Sales Order",
    scope="salesorders", fields=frozenset(_TXN_COMMON | {
        "customer_id", "salesorder_number", "shipment_date", "delivery_method",
        "salesperson_id", "salesperson_name", "shipping_charge", "adjustment",
        "adjustment_description", "estimate_id", "crm_owner_id", "crm_custom_reference_id",
        "billing_address_id", "shipping_address_id", "pricebook_id", "notes_default",
        "terms_default", "is_update_customer", "merchant_id", "documents",
        "tax_authority_name", "tax_exemption_code"}),
    required=("customer_id",), report_name="Sales Orders",
    sort_columns=("salesorder_number", "shipment_date", "reference_number",
                  "subscription_number", "first_name", "company_name") + _TXN_SORT,
    default_sort=("created_time", "D"),
    summary=("salesorder_id", "customer_name", "customer_id", "status", "salesorder_number",
             "reference_number", "date", "shipment_date", "currency_id", "currency_code",
             "total", "zcrm_potential_id", "zcrm_potential_name", "created_time",
             "last_modified_time"),
    messages={"created": "Sales Order has been created.",  # [U] OAS shows "success"
              "updated": "Sales Order has been updated.",  # [U]
              "deleted": "Sales Order has been deleted."},  # [U]
    number_field="salesorder_number", number_prefix="SO-", party="customer",
    initial_status="draft",
    transitions={  # BK-OAS declares the status actions with HTTP 201
        "open": Transition("open", ("draft",), "Sales order status has been changed to Open.",
                           201),
        "void": Transition("void", ("draft", "open"),
                           "Sales order status has been changed to Void.", 201),
    },
    filter_by=_status_filters(  # BK-OAS sales order filter_by enum
        "draft", "open", "invoiced", "partially_invoiced", "void", "closed",
        aliases={"Status.OverDue": ("overdue",), "Status.Confirmed": ("open",)},
        others=("Status.InvoicedNotShipped", "Status.UnFulfilled",
                "Status.MarketPlaceSalesOrder", "Status.ThisCycle", "Status.PreviousCycle",
                "Status.Pending", "Status.Approved", "Status.Shipped",
                "Status.ShippedNotInvoiced", "Status.ToBeShipped", "Status.ToBeInvoiced",
                "Status.Fulfilled", "Status.ManuallyFulfilled", "Status.BackOrdered")),
    text_filters=("salesorder_number", "customer_name", "item_name"),
    exact_filters=("customer_id", "status", "zcrm_potential_id", "reference_number",
                   "item_id"),
    has_lmt_filter=True, has_date_filters=True,
)

PURCHASEORDERS = Resource(
    key="purchaseorder", plural="purchaseorders", id_field="purchaseorder_id",
    label="Purchase Order", scope="purchaseorders", fields=frozenset(
        (_TXN_COMMON - {"zcrm_potential_id", "zcrm_potential_name"}) | {
            "vendor_id", "purchaseorder_number", "delivery_date", "due_date", "ship_via",
            "attention", "delivery_customer_id", "delivery_org_address_id", "salesorder_id",
            "crm_owner_id", "crm_custom_reference_id", "billing_address_id", "pricebook_id",
            "notes_default", "terms_default", "is_update_customer", "documents",
            "destination_of_supply", "source_of_supply", "discount_account_id"}),
    required=("vendor_id", "line_items"), report_name="Purchase Orders",
    sort_columns=("purchaseorder_number", "vendor_name", "delivery_date",
                  "expected_delivery_date", "date", "total", "created_time",
                  "last_modified_time"),
    default_sort=("created_time", "D"),
    summary=("purchaseorder_id", "vendor_id", "vendor_name", "status",
             "purchaseorder_number", "reference_number", "date", "delivery_date",
             "currency_id", "currency_code", "total", "created_time", "last_modified_time"),
    messages={"created": "Purchase Order has been added.",
              "updated": "Purchase Order has been updated.",
              "deleted": "The purchase order has been deleted."},
    number_field="purchaseorder_number", number_prefix="PO-", party="vendor",
    initial_status="draft",
    transitions={
        "open": Transition("open", ("draft",), "The purchase order has been marked as open.",
                           201),
        "billed": Transition("billed", ("open",),
                             "The purchase order has been marked as billed.", 201),
        "cancelled": Transition("cancelled", ("draft", "open"),
                                "The purchase order has been cancelled.", 201),
    },
    filter_by=_status_filters(  # BK-OAS purchase order filter_by enum ("Issued" = open)
        "draft", "open", "billed", "cancelled",
        aliases={"Status.Issued": ("open",)},
        others=("Status.PartiallyBilled", "Status.BilledNotReceived", "Status.Received",
                "Status.ReceivedNotBilled", "Status.PartiallyReceived", "Status.DropShipped",
                "Status.BackOrdered", "Status.ReplenishedOrder", "Status.Closed",
                "Status.UnbilledBackOrder", "Status.ToBeReceived", "Status.Pending",
                "Status.Approved", "Status.ApprovalOverdue", "Status.MyApprovals",
                "Status.Accepted", "Status.CancelledByVendor", "Status.CancelledByUser")),
    text_filters=("purchaseorder_number", "vendor_name", "item_name"),
    exact_filters=("vendor_id", "status", "reference_number", "item_id"),
    has_lmt_filter=True, has_date_filters=True,
)

TRANSACTIONS = (ESTIMATES, INVOICES, SALESORDERS, PURCHASEORDERS)
ALL = (CONTACTS, ITEMS) + TRANSACTIONS
BY_PLURAL = {r.plural: r for r in ALL}
