"""Document types: a Books transaction resource paired with the CRM module that mirrors it.

Each `DocumentType` is one declaration of everything both emulators need to serve a kind of
document: on the Books side the collection, its id and number fields, the number prefix, the
party (customer or vendor), the second date, the statuses and the status actions; on the CRM
side the module, its line-item subform, its status picklist and date field. The CRM emulator
builds the module's fields from it and the Books emulator builds the resource's rules from it;
neither needs to know the other.

The four Zoho ships with are `BUILT_IN`. Another one can be declared at run time
(`Emulator.add_document_type`, or `POST /__emulator__/document-types`), which is how a test adds
a document type to crmbooks in configuration alone; `DocumentType.from_dict` reads that JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

PARTIES = ("customer", "vendor")
_RESOURCE = re.compile(r"^[a-z][a-z0-9]*$")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StatusAction:
    """`POST /<resource>/{id}/status/<action>` in Books: the status it sets, the statuses it
    may leave, and the message and HTTP status of its answer."""

    to: str
    allowed_from: tuple[str, ...]
    message: str
    http_status: int = 200


@dataclass(frozen=True)
class DocumentType:
    """One kind of document, as Books and the CRM both serve it (see the module docstring).

    Fields prefixed `books_` tune the Books list and body rules; left as None they are derived
    from the rest (the built-in types set them to what Zoho documents for each).
    """

    # Books
    resource: str  # collection path and list envelope key: "estimates"
    key: str  # singular envelope key: "estimate"
    id_field: str  # "estimate_id"
    number_field: str  # "estimate_number"
    number_prefix: str  # "EST-": auto numbers are EST-00001, EST-00002, ...
    label: str  # "Estimate", as in "Estimate does not exist."
    party: str  # "customer" or "vendor": whose contact the document names
    statuses: tuple[str, ...]  # every documented status; a new document has the first
    actions: dict[str, StatusAction]  # status actions by the last segment of their path
    date_field: str | None  # the second date besides `date` ("expiry_date"), if any
    # CRM
    crm_module: str  # module API name: "Quotes"
    crm_subform: str  # the line-item subform: "Quoted_Items"
    crm_singular: str  # "Quote"
    crm_plural: str  # "Quotes"
    crm_statuses: tuple[str, ...]  # values of the Status picklist
    crm_status_label: str = "Status"
    crm_date_field: str | None = "Due_Date"
    crm_date_label: str = "Due Date"
    crm_number: int | None = None  # the module's numeric id suffix; None: the next free one
    crm_custom: bool = False  # a custom module (one an administrator added) rather than Zoho's
    # Further CRM fields, each the keyword arguments of a CRM field: api_name, label,
    # data_type (text, double, date, picklist, ...) and optionally length, picklist, unique.
    crm_extra_fields: tuple[dict[str, Any], ...] = ()
    # Books details (None: derived)
    books_fields: frozenset[str] | None = None  # documented body fields (others are ignored)
    books_required: tuple[str, ...] | None = None  # body fields a create must carry
    books_report_name: str | None = None
    books_sort_columns: tuple[str, ...] | None = None
    books_summary: tuple[str, ...] | None = None  # the fields of a list row
    books_messages: dict[str, str] | None = None  # created / updated / deleted
    books_filter_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    books_filter_others: tuple[str, ...] = ()  # documented filter_by values with no data here
    books_text_filters: tuple[str, ...] | None = None
    books_exact_filters: tuple[str, ...] | None = None

    @property
    def initial_status(self) -> str:
        """The status of a newly created document."""
        return self.statuses[0]

    @property
    def party_field(self) -> str:
        """The Books field naming the party: customer_id or vendor_id."""
        return f"{self.party}_id"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DocumentType:
        """A declaration from JSON (the test control's body). Only `resource`, `party`,
        `number_prefix`, `statuses`, `crm_module` and `crm_subform` are required; the rest
        follows Zoho's naming (creditnotes -> creditnote, creditnote_id, creditnote_number),
        and without `actions` each status but the first gets an action that reaches it from
        the statuses listed before it. A module declared this way is a custom CRM module
        unless `crm_custom` says otherwise. Unknown keys are an error, not ignored."""
        if not isinstance(raw, dict):
            raise ValueError("a document type is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown document type setting(s): {', '.join(unknown)}")
        missing = [k for k in ("resource", "party", "number_prefix", "statuses", "crm_module",
                               "crm_subform") if not raw.get(k)]
        if missing:
            raise ValueError(f"a document type needs: {', '.join(missing)}")
        resource = _text(raw, "resource")
        key = _text(raw, "key", resource[:-1] if resource.endswith("s") else resource)
        label = _text(raw, "label", key.replace("_", " ").title())
        statuses = _names(raw, "statuses")
        values = {
            "resource": resource, "key": key, "label": label,
            "id_field": _text(raw, "id_field", f"{key}_id"),
            "number_field": _text(raw, "number_field", f"{key}_number"),
            "number_prefix": _text(raw, "number_prefix"),
            "party": _text(raw, "party"), "statuses": statuses,
            "actions": _actions(raw.get("actions"), statuses, label),
            "date_field": raw.get("date_field"),
            "crm_module": _text(raw, "crm_module"), "crm_subform": _text(raw, "crm_subform"),
            "crm_singular": _text(raw, "crm_singular", label),
            "crm_plural": _text(raw, "crm_plural", f"{label}s"),
            "crm_statuses": (_names(raw, "crm_statuses") if raw.get("crm_statuses")
                             else tuple(s.replace("_", " ").title() for s in statuses)),
            "crm_custom": bool(raw.get("crm_custom", True)),
        }
        for name in ("crm_status_label", "crm_date_field", "crm_date_label", "crm_number",
                     "books_report_name", "books_messages", "books_filter_aliases"):
            if name in raw:
                values[name] = raw[name]
        for name in ("books_required", "books_sort_columns", "books_summary",
                     "books_filter_others", "books_text_filters", "books_exact_filters"):
            if raw.get(name) is not None:
                values[name] = _names(raw, name)
        if raw.get("books_fields") is not None:
            values["books_fields"] = frozenset(_names(raw, "books_fields"))
        if raw.get("crm_extra_fields"):
            values["crm_extra_fields"] = tuple(_extra_field(f) for f in raw["crm_extra_fields"])
        doc = cls(**values)
        doc.check()
        return doc

    def check(self) -> None:
        """Raise ValueError when the declaration cannot be served."""
        if not _RESOURCE.match(self.resource):
            raise ValueError(f"resource '{self.resource}' must be lower-case letters and digits")
        if self.party not in PARTIES:
            raise ValueError(f"party must be one of {', '.join(PARTIES)}, not '{self.party}'")
        for name in (self.crm_module, self.crm_subform):
            if not _API_NAME.match(name):
                raise ValueError(f"'{name}' is not a CRM API name (letters, digits, _)")
        for name, action in self.actions.items():
            wrong = [s for s in (action.to, *action.allowed_from) if s not in self.statuses]
            if wrong:
                raise ValueError(f"status action '{name}' names unknown status(es): "
                                 f"{', '.join(wrong)}")
        if self.crm_number is not None and not 11 <= self.crm_number <= 99:
            raise ValueError("crm_number must be between 11 and 99 (lower ones are Zoho's)")

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON-ready values (what the test control lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "actions":
                value = {n: {"to": a.to, "from": list(a.allowed_from), "message": a.message,
                             "http_status": a.http_status} for n, a in value.items()}
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _text(raw: dict, name: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _names(raw: dict, name: str) -> tuple[str, ...]:
    value = raw.get(name)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return tuple(value)


def _actions(raw: Any, statuses: tuple[str, ...], label: str) -> dict[str, StatusAction]:
    """Status actions from JSON ({"void": {"from": ["draft", "open"]}}), or the default
    ladder: each status but the first, reached from the ones listed before it."""
    if raw is None:
        return {to: StatusAction(to, statuses[:i], _moved(label, to))
                for i, to in enumerate(statuses) if i > 0}
    if not isinstance(raw, dict):
        raise ValueError("actions must be an object of action name -> {to, from}")
    out = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise ValueError(f"action '{name}' must be an object")
        to = spec.get("to", name)
        allowed = spec.get("from", [])
        if not isinstance(allowed, list):
            raise ValueError(f"action '{name}': from must be a list of statuses")
        out[name] = StatusAction(to, tuple(allowed), spec.get("message") or _moved(label, to),
                                 int(spec.get("http_status", 200)))
    return out


def _moved(label: str, to: str) -> str:
    return f"{label} status has been changed to {to.replace('_', ' ').title()}."


def _extra_field(raw: Any) -> dict[str, Any]:
    allowed = {"api_name", "label", "data_type", "length", "picklist", "unique",
               "decimal_place", "mandatory"}
    if not isinstance(raw, dict) or not raw.get("api_name") or set(raw) - allowed:
        raise ValueError(f"a CRM field takes {', '.join(sorted(allowed))} (api_name required)")
    return dict(raw)


# The Books documents Zoho ships with and the CRM modules that mirror them. The statuses,
# status actions (with their answers' messages and HTTP statuses), accepted body fields, sort
# columns and filter_by values are the ones Zoho's published Books OpenAPI files document for
# each resource; a few marked below are not in those files.
_TXN_SORT = ("customer_name", "date", "total", "created_time", "last_modified_time")

ESTIMATES = DocumentType(
    resource="estimates", key="estimate", id_field="estimate_id",
    number_field="estimate_number", number_prefix="EST-", label="Estimate", party="customer",
    statuses=("draft", "sent", "invoiced", "accepted", "declined", "expired"),
    actions={
        "sent": StatusAction("sent", ("draft",), "Estimate status has been changed to Sent"),
        "accepted": StatusAction("accepted", ("draft", "sent", "declined", "expired"),
                                 "Estimate status has been changed to Accepted."),
        "declined": StatusAction("declined", ("draft", "sent", "accepted", "expired"),
                                 "Estimate status has been changed to Declined."),
    },
    date_field="expiry_date",
    crm_module="Quotes", crm_subform="Quoted_Items", crm_singular="Quote", crm_plural="Quotes",
    crm_statuses=("Draft", "Negotiation", "Delivered", "On Hold", "Confirmed", "Closed Won",
                  "Closed Lost"),
    crm_status_label="Quote Stage", crm_date_field="Valid_Till", crm_date_label="Valid Till",
    crm_number=7,
    books_fields=frozenset({
        "customer_id", "estimate_number", "expiry_date", "salesperson_name", "shipping_charge",
        "adjustment", "adjustment_description", "custom_body", "custom_subject",
        "accept_retainer", "retainer_percentage", "project_id"}),
    books_sort_columns=("estimate_number",) + _TXN_SORT,
    books_summary=("estimate_id", "customer_name", "customer_id", "status", "estimate_number",
                   "reference_number", "date", "currency_id", "currency_code", "total",
                   "created_time", "last_modified_time", "accepted_date", "declined_date",
                   "expiry_date"),
    books_messages={"created": "The estimate has been created",
                    "updated": "Estimate information has been updated.",
                    "deleted": "The estimate has been deleted."},
    books_filter_others=(
        "Status.Pending", "Status.Approved", "Status.Viewed", "Status.AvalaraSyncFailed",
        "Status.TaxAutomationFailed", "Status.MyApprovals", "WithAttachment",
        "WithoutAttachment", "ExceptionList", "EmailScheduled", "Type.NewSubscription",
        "Type.Invoice"),
)

INVOICES = DocumentType(
    resource="invoices", key="invoice", id_field="invoice_id", number_field="invoice_number",
    number_prefix="INV-", label="Invoice", party="customer",
    statuses=("draft", "sent", "paid", "void", "partially_paid", "viewed"),
    actions={
        "sent": StatusAction("sent", ("draft",), "Invoice status has been changed to Sent."),
        "void": StatusAction("void", ("draft", "sent", "overdue", "unpaid"),
                             "Invoice status has been changed to Void."),
        "draft": StatusAction("draft", ("void",),
                              "Status of invoice changed from void to draft"),
    },
    # Books also reports overdue and unpaid invoices, statuses it derives from due dates and
    # payments; the emulator never sets them, so they stay out of the list above (each listed
    # status is also a filter_by value), and the void action above still names them.
    date_field="due_date",
    crm_module="Invoices", crm_subform="Invoiced_Items", crm_singular="Invoice",
    crm_plural="Invoices", crm_statuses=("Created", "Approved", "Delivered", "Cancelled"),
    crm_number=9,
    books_fields=frozenset({
        "customer_id", "invoice_number", "due_date", "payment_terms", "payment_terms_label",
        "salesperson_name", "shipping_charge", "adjustment", "adjustment_description",
        "invoiced_estimate_id", "allow_partial_payments", "custom_body", "custom_subject",
        "payment_options", "reason", "recurring_invoice_id", "billing_address_id",
        "shipping_address_id", "send", "contact_persons"}),
    # Zoho documents no last_modified_time sort for invoices, although the filter exists.
    books_sort_columns=("customer_name", "invoice_number", "date", "due_date", "total",
                        "balance", "created_time"),
    books_summary=("invoice_id", "customer_name", "customer_id", "status", "invoice_number",
                   "reference_number", "date", "due_date", "currency_id", "currency_code",
                   "total", "balance", "created_time", "last_modified_time"),
    books_messages={"created": "The invoice has been created.",
                    "updated": "Invoice information has been updated.",
                    "deleted": "The invoice has been deleted."},
    # Every issued invoice not paid in full is unpaid (the emulator records no payments).
    books_filter_aliases={"Status.OverDue": ("overdue",),
                          "Status.Unpaid": ("sent", "overdue", "unpaid", "partially_paid",
                                            "viewed")},
    books_filter_others=("Date.PaymentExpectedDate",),
)

SALESORDERS = DocumentType(
    resource="salesorders", key="salesorder", id_field="salesorder_id",
    number_field="salesorder_number", number_prefix="SO-", label="Sales Order",
    party="customer",
    statuses=("draft", "open", "invoiced", "partially_invoiced", "void", "closed"),
    actions={  # Zoho declares these two status actions with HTTP 201
        "open": StatusAction("open", ("draft",),
                             "Sales order status has been changed to Open.", 201),
        "void": StatusAction("void", ("draft", "open"),
                             "Sales order status has been changed to Void.", 201),
    },
    date_field="shipment_date",
    crm_module="Sales_Orders", crm_subform="Ordered_Items", crm_singular="Sales Order",
    crm_plural="Sales Orders", crm_statuses=("Created", "Approved", "Delivered", "Cancelled"),
    crm_number=8,
    books_fields=frozenset({
        "customer_id", "salesorder_number", "shipment_date", "delivery_method",
        "salesperson_id", "salesperson_name", "shipping_charge", "adjustment",
        "adjustment_description", "estimate_id", "crm_owner_id", "crm_custom_reference_id",
        "billing_address_id", "shipping_address_id", "pricebook_id", "notes_default",
        "terms_default", "is_update_customer", "merchant_id", "documents",
        "tax_authority_name", "tax_exemption_code"}),
    books_required=("customer_id",),
    books_sort_columns=("salesorder_number", "shipment_date", "reference_number",
                        "subscription_number", "first_name", "company_name") + _TXN_SORT,
    books_summary=("salesorder_id", "customer_name", "customer_id", "status",
                   "salesorder_number", "reference_number", "date", "shipment_date",
                   "currency_id", "currency_code", "total", "zcrm_potential_id",
                   "zcrm_potential_name", "created_time", "last_modified_time"),
    # Zoho's OpenAPI example answers only "success"; these three messages are our wording.
    books_messages={"created": "Sales Order has been created.",
                    "updated": "Sales Order has been updated.",
                    "deleted": "Sales Order has been deleted."},
    books_filter_aliases={"Status.OverDue": ("overdue",), "Status.Confirmed": ("open",)},
    books_filter_others=(
        "Status.InvoicedNotShipped", "Status.UnFulfilled", "Status.MarketPlaceSalesOrder",
        "Status.ThisCycle", "Status.PreviousCycle", "Status.Pending", "Status.Approved",
        "Status.Shipped", "Status.ShippedNotInvoiced", "Status.ToBeShipped",
        "Status.ToBeInvoiced", "Status.Fulfilled", "Status.ManuallyFulfilled",
        "Status.BackOrdered"),
)

PURCHASEORDERS = DocumentType(
    resource="purchaseorders", key="purchaseorder", id_field="purchaseorder_id",
    number_field="purchaseorder_number", number_prefix="PO-", label="Purchase Order",
    party="vendor", statuses=("draft", "open", "billed", "cancelled"),
    actions={
        "open": StatusAction("open", ("draft",),
                             "The purchase order has been marked as open.", 201),
        "billed": StatusAction("billed", ("open",),
                               "The purchase order has been marked as billed.", 201),
        "cancelled": StatusAction("cancelled", ("draft", "open"),
                                  "The purchase order has been cancelled.", 201),
    },
    date_field="delivery_date",
    crm_module="Purchase_Orders", crm_subform="Purchase_Items",
    crm_singular="Purchase Order", crm_plural="Purchase Orders",
    crm_statuses=("Created", "Approved", "Delivered", "Cancelled"), crm_number=10,
    books_fields=frozenset({
        "vendor_id", "purchaseorder_number", "delivery_date", "due_date", "ship_via",
        "attention", "delivery_customer_id", "delivery_org_address_id", "salesorder_id",
        "crm_owner_id", "crm_custom_reference_id", "billing_address_id", "pricebook_id",
        "notes_default", "terms_default", "is_update_customer", "documents",
        "destination_of_supply", "source_of_supply", "discount_account_id"}),
    books_sort_columns=("purchaseorder_number", "vendor_name", "delivery_date",
                        "expected_delivery_date", "date", "total", "created_time",
                        "last_modified_time"),
    books_summary=("purchaseorder_id", "vendor_id", "vendor_name", "status",
                   "purchaseorder_number", "reference_number", "date", "delivery_date",
                   "currency_id", "currency_code", "total", "created_time",
                   "last_modified_time"),
    books_messages={"created": "Purchase Order has been added.",
                    "updated": "Purchase Order has been updated.",
                    "deleted": "The purchase order has been deleted."},
    # "Issued" is Books' name for an open purchase order.
    books_filter_aliases={"Status.Issued": ("open",)},
    books_filter_others=(
        "Status.PartiallyBilled", "Status.BilledNotReceived", "Status.Received",
        "Status.ReceivedNotBilled", "Status.PartiallyReceived", "Status.DropShipped",
        "Status.BackOrdered", "Status.ReplenishedOrder", "Status.Closed",
        "Status.UnbilledBackOrder", "Status.ToBeReceived", "Status.Pending", "Status.Approved",
        "Status.ApprovalOverdue", "Status.MyApprovals", "Status.Accepted",
        "Status.CancelledByVendor", "Status.CancelledByUser"),
)

# Books serves its resources in this order; the CRM lists its modules by number.
BUILT_IN: tuple[DocumentType, ...] = (ESTIMATES, INVOICES, SALESORDERS, PURCHASEORDERS)
