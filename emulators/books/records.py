"""Building and updating Books records from request bodies (contacts, items, transactions).

Every function takes the organization, the already-parsed body and the emulator clock, validates
with Books' error envelope and returns or mutates the stored record. Updates are partial:
fields absent from the body keep their values (integrators report that real Books accepts
partial PUT bodies). Keys a function does not read are ignored, never refused: Zoho documents
no refusal of an unknown key (docs/emulator-refusals.md).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from emulators.books.receivables import settle
from emulators.books.resources import (
    ADDRESS_FIELDS,
    CONTACTS,
    ESTIMATES,
    INVOICES,
    ITEMS,
    Resource,
)
from emulators.books.state import (
    DUP_CONTACT,
    EXISTS,
    INVALID,
    MISSING,
    Org,
    add_days,
    apply_custom_fields,
    build_line_items,
    build_person,
    compute_totals,
    discount_value,
    fmt_time,
    get_address,
    get_bool,
    get_decimal,
    get_enum,
    get_id,
    get_int,
    get_str,
    invalid,
    money,
    parse_date,
    refresh_primary,
)
from emulators.common.envelopes import books_error

CONTACT_TYPES = ("customer", "vendor")
SUB_TYPES = ("business", "individual")
ITEM_TYPES = ("sales", "purchases", "sales_and_purchases", "inventory")
PRODUCT_TYPES = ("goods", "service", "digital_service", "capital_service", "capital_goods")


def _currency(org: Org, data: dict, default: dict) -> dict:
    """currency_id (documented) or currency_code; must be one of the org's currencies."""
    currency_id = get_id(data, "currency_id")
    code = get_str(data, "currency_code", 3)
    if currency_id is not None:
        currency = org.currencies.get(currency_id)
        if currency is None:
            raise invalid("currency_id")
        if code is not None and code != currency["currency_code"]:
            raise invalid("currency_code")
        return currency
    if code is not None:
        currency = org.currency_by_code(code.upper())
        if currency is None:
            raise books_error(INVALID, f"The currency {code} is not enabled for this "
                              "organization. Add it under Settings > Currencies first.")
        return currency
    return default


def _set_currency(record: dict, currency: dict) -> None:
    record["currency_id"] = currency["currency_id"]
    record["currency_code"] = currency["currency_code"]
    record["currency_symbol"] = currency["currency_symbol"]


# --------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------


def new_contact(org: Org, data: dict, contact_id: str, now: datetime, new_id) -> dict:
    """A contact from a create body."""
    stamp = fmt_time(now)
    record: dict[str, Any] = {
        "contact_id": contact_id, "contact_name": "", "company_name": "",
        "contact_type": "customer", "customer_sub_type": "business", "status": "active",
        "website": "", "notes": "", "payment_terms": 0, "payment_terms_label": "Due on Receipt",
        "credit_limit": Decimal("0.00"), "billing_address": _empty_address(),
        "shipping_address": _empty_address(), "contact_persons": [], "custom_fields": [],
        "custom_field_hash": {}, "zcrm_account_id": "", "zcrm_contact_id": "",
        "zcrm_vendor_id": "", "is_linked_with_zohocrm": False, "has_transaction": False,
        "outstanding_receivable_amount": Decimal("0.00"),
        "outstanding_receivable_amount_bcy": Decimal("0.00"),
        "unused_credits_receivable_amount": Decimal("0.00"),
        "unused_credits_receivable_amount_bcy": Decimal("0.00"),
        "outstanding_payable_amount": Decimal("0.00"), "created_time": stamp,
        "last_modified_time": stamp,
    }
    _set_currency(record, org.base_currency)
    if "contact_name" not in data:
        raise books_error(MISSING, "Please enter the Display Name of the contact.")
    update_contact(org, record, data, now, new_id, creating=True)
    return record


def _empty_address() -> dict:
    return {f: "" for f in ADDRESS_FIELDS}


def update_contact(org: Org, record: dict, data: dict, now: datetime, new_id,
                   creating: bool = False) -> None:
    """Apply a (partial) contact body; duplicate display names answer code 3062."""
    name = get_str(data, "contact_name", 200, required="contact_name" in data)
    ctype = get_enum(data, "contact_type", CONTACT_TYPES) or record["contact_type"]
    if ctype != record["contact_type"] and org.refs.get(record["contact_id"]):
        raise invalid("contact_type")
    new_name = name.strip() if name is not None else record["contact_name"]
    _claim_contact_name(org, record, ctype, new_name)
    record["contact_name"], record["contact_type"] = new_name, ctype
    sub = get_enum(data, "customer_sub_type", SUB_TYPES)
    if sub is not None:
        record["customer_sub_type"] = sub
    for key, limit in (("company_name", 200), ("website", 200), ("notes", 1000)):
        value = get_str(data, key, limit)
        if value is not None:
            record[key] = value
    _contact_terms(record, data)
    for key in ("billing_address", "shipping_address"):
        address = get_address(data, key)
        if address is not None:
            record[key] = address
    _set_currency(record, _currency(org, data, org.currencies[record["currency_id"]]))
    for key in ("zcrm_account_id", "zcrm_contact_id", "zcrm_vendor_id"):
        if key in data:
            record[key] = get_id(data, key) or ""
    record["is_linked_with_zohocrm"] = any(
        record[k] for k in ("zcrm_account_id", "zcrm_contact_id", "zcrm_vendor_id"))
    if "contact_persons" in data:
        _replace_persons(org, record, data["contact_persons"], new_id)
    apply_custom_fields(org, CONTACTS, record, data, record["contact_id"])
    _contact_aliases(record)
    record["last_modified_time"] = fmt_time(now)


def _claim_contact_name(org: Org, record: dict, ctype: str, name: str) -> None:
    if not name:
        raise books_error(MISSING, "Please enter the Display Name of the contact.")
    owner = org.names.get((ctype, name))
    if owner is not None and owner != record["contact_id"]:
        # Integrators report code 3062 for a customer name taken; the vendor wording is
        # an assumption (unverified).
        raise books_error(DUP_CONTACT, f'The {ctype} "{name}" already exists. Please specify '
                          "a different name.")
    old = (record["contact_type"], record["contact_name"])
    if org.names.get(old) == record["contact_id"]:
        del org.names[old]
    org.names[(ctype, name)] = record["contact_id"]


def _contact_terms(record: dict, data: dict) -> None:
    terms = get_int(data, "payment_terms")
    if terms is not None:
        if terms < 0:
            raise invalid("payment_terms")
        record["payment_terms"] = terms
        record["payment_terms_label"] = f"Net {terms}" if terms else "Due on Receipt"
    label = get_str(data, "payment_terms_label", 200)
    if label is not None:
        record["payment_terms_label"] = label
    limit = get_decimal(data, "credit_limit")
    if limit is not None:
        record["credit_limit"] = money(limit)


def _replace_persons(org: Org, record: dict, raw: Any, new_id) -> None:
    """Inline contact_persons: listed ones are created/updated, omitted ones removed."""
    if not isinstance(raw, list):
        raise invalid("contact_persons")
    old = {p["contact_person_id"]: p for p in record["contact_persons"]}
    persons = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise invalid("contact_persons")
        person_id = get_id(entry, "contact_person_id")
        if person_id is not None and person_id not in old:
            raise invalid("contact_person_id")
        persons.append(build_person(entry, person_id or new_id(), old.get(person_id)))
    for person_id in old:
        org.person_owner.pop(person_id, None)
    for person in persons:
        org.person_owner[person["contact_person_id"]] = record["contact_id"]
    record["contact_persons"] = persons
    refresh_primary(record)


def _contact_aliases(record: dict) -> None:
    # Books list rows name the party per type (customer_name / vendor_name) besides the
    # display name; kept equal to contact_name.
    record["customer_name"] = record["contact_name"]
    record["vendor_name"] = record["contact_name"]
    if record["contact_type"] == "vendor":
        record["customer_sub_type"] = ""
    elif not record["customer_sub_type"]:
        record["customer_sub_type"] = "business"


# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


def new_item(org: Org, data: dict, item_id: str, now: datetime) -> dict:
    """An item from a create body (Books requires name and rate)."""
    record: dict[str, Any] = {
        "item_id": item_id, "name": "", "status": "active", "description": "",
        "rate": Decimal("0.00"), "unit": "", "sku": "", "item_type": "sales",
        "product_type": "goods", "tax_id": "", "tax_name": "", "tax_percentage": 0,
        "purchase_description": "", "purchase_rate": Decimal("0.00"), "custom_fields": [],
        "custom_field_hash": {},
    }
    for key in ("name", "rate"):
        if key not in data:
            raise books_error(MISSING, f"Please enter {key}.")
    update_item(org, record, data, now)
    return record


def update_item(org: Org, record: dict, data: dict, now: datetime) -> None:
    """Apply a (partial) item body; names and SKUs are unique per organization."""
    name = get_str(data, "name", 100, required="name" in data)
    if name is not None:
        _claim(org.names, ("item", name.strip()), record, "item_id",
               f'The item "{name.strip()}" already exists.')
        record["name"] = name.strip()
    sku = get_str(data, "sku", 100)
    if sku is not None:
        _claim(org.skus, sku.strip(), record, "item_id", "The SKU already exists.", "sku")
        record["sku"] = sku.strip()
    rate = get_decimal(data, "rate", required="rate" in data)
    if rate is not None:
        if rate < 0:
            raise invalid("rate")
        record["rate"] = money(rate)
    purchase_rate = get_decimal(data, "purchase_rate")
    if purchase_rate is not None:
        record["purchase_rate"] = money(purchase_rate)
    for key, limit in (("description", 2000), ("purchase_description", 2000), ("unit", 100),
                       ("tax_id", 40)):
        value = get_str(data, key, limit)
        if value is not None:
            record[key] = value
    for key, allowed in (("item_type", ITEM_TYPES), ("product_type", PRODUCT_TYPES)):
        value = get_enum(data, key, allowed)
        if value is not None:
            record[key] = value
    apply_custom_fields(org, ITEMS, record, data, record["item_id"])
    record["item_name"] = record["name"]


def _claim(index: dict, key: Any, record: dict, id_field: str, message: str,
           old_field: str = "name") -> None:
    owner = index.get(key)
    if owner is not None and owner != record[id_field]:
        raise books_error(EXISTS, message)
    old = ("item", record[old_field]) if old_field == "name" else record[old_field]
    if old and index.get(old) == record[id_field]:
        del index[old]
    if key:
        index[key] = record[id_field]


# --------------------------------------------------------------------------------------------
# Transactions: estimates, invoices, sales orders, purchase orders
# --------------------------------------------------------------------------------------------


def new_transaction(org: Org, resource: Resource, data: dict, record_id: str, now: datetime,
                    new_id, manual_number: bool) -> dict:
    """A transaction from a create body; numbers are auto-generated unless told otherwise."""
    for key in resource.required:
        if key not in data:
            raise books_error(MISSING, f"Please enter {key}.")
    stamp = fmt_time(now)
    record: dict[str, Any] = {
        resource.id_field: record_id, resource.number_field: "", "reference_number": "",
        "date": now.date().isoformat(), "status": resource.initial_status,
        "line_items": [], "shipping_charge": Decimal("0.00"), "adjustment": Decimal("0.00"),
        "notes": "", "terms": "", "custom_fields": [], "custom_field_hash": {},
        "discount": Decimal("0.00"), "discount_type": "entity_level",
        "exchange_rate": Decimal("1"), "created_time": stamp, "last_modified_time": stamp,
    }
    _transaction_defaults(resource, record)
    if not manual_number:
        org.claim_number(resource, record, org.next_number(resource))
    elif resource.number_field not in data:
        raise books_error(MISSING, f"Please enter {resource.number_field}.")
    update_transaction(org, resource, record, data, now, new_id)
    return record


def _transaction_defaults(resource: Resource, record: dict) -> None:
    if resource.key == "estimate":
        record.update(expiry_date="", accepted_date="", declined_date="",
                      zcrm_potential_id="", zcrm_potential_name="")
    elif resource.key == "invoice":
        record.update(due_date=record["date"], payment_terms=0,
                      payment_terms_label="Due on Receipt", balance=Decimal("0.00"),
                      payment_made=Decimal("0.00"), credits_applied=Decimal("0.00"),
                      invoiced_estimate_id="", zcrm_potential_id="", zcrm_potential_name="")
    elif resource.key == "creditnote":
        record.update(balance=Decimal("0.00"), invoices_credited=[])
    elif resource.key == "salesorder":
        record.update(shipment_date="", zcrm_potential_id="", zcrm_potential_name="",
                      estimate_id="")
    elif resource.key == "purchaseorder":
        record.update(delivery_date="", ship_via="", attention="")
    elif resource.date_field:  # a document type declared at run time
        record[resource.date_field] = ""


def update_transaction(org: Org, resource: Resource, record: dict, data: dict,
                       now: datetime, new_id) -> None:
    """Apply a (partial) transaction body and recompute totals with Decimal."""
    _set_party(org, resource, record, data)
    number = get_str(data, resource.number_field, 100)
    if number is not None:
        if not number.strip():
            raise invalid(resource.number_field)
        org.claim_number(resource, record, number.strip())
    for key in dict.fromkeys(("date", "expiry_date", "due_date", "shipment_date",
                              "delivery_date", resource.date_field or "date")):
        if key in data and key in record:
            record[key] = parse_date(data[key], key) if data[key] else ""
    for key, limit in (("reference_number", 100), ("notes", 5000), ("terms", 10000),
                       ("zcrm_potential_name", 200), ("ship_via", 100), ("attention", 100)):
        value = get_str(data, key, limit)
        if value is not None:
            record[key] = value
    if "zcrm_potential_id" in data:
        record["zcrm_potential_id"] = get_id(data, "zcrm_potential_id") or ""
    for key in ("shipping_charge", "adjustment"):
        value = get_decimal(data, key)
        if value is not None:
            record[key] = money(value)
    if "discount" in data:  # checked against the sub-total in compute_totals
        record["discount"] = discount_value(data["discount"], "discount")
    discount_type = get_enum(data, "discount_type", ("entity_level", "item_level"))
    if discount_type is not None:
        record["discount_type"] = discount_type
    _transaction_currency(org, record, data)
    if resource.key == "invoice":
        _invoice_terms(org, record, data)
    if "line_items" in data or not record["line_items"]:
        items = org.table(ITEMS)
        lines = build_line_items(org, items, data.get("line_items"), record["line_items"],
                                 new_id)
        _swap_item_refs(org, record["line_items"], lines)
        record["line_items"] = lines
    apply_custom_fields(org, resource, record, data, record[resource.id_field])
    compute_totals(record)
    _keep_applications(record, record.pop("_old_customer", None))
    settle(resource, record)
    if resource.key in ("salesorder", "purchaseorder"):
        # Zoho's OpenAPI files type the header discount of these two as a string ("10%" or "10"),
        # of estimates and invoices as a number.
        record["discount"] = str(record["discount"])
    if resource.key == "salesorder":
        # sales-order.yml uses that same string `discount` schema for its line items.
        for line in record["line_items"]:
            line["discount"] = str(line["discount"])
    record["last_modified_time"] = fmt_time(now)


def _keep_applications(record: dict, old_customer: str | None) -> None:
    """Payments and credits stay with their customer: an invoice or credit note that has
    some applied does not change customer."""
    applied = record.get("payment_made", 0) or record.get("credits_applied", 0) \
        or record.get("invoices_credited")
    if applied and old_customer and old_customer != record.get("customer_id"):
        raise invalid("customer_id")


def _set_party(org: Org, resource: Resource, record: dict, data: dict) -> None:
    key = f"{resource.party}_id"
    if key not in data:
        return
    party_id = get_id(data, key)
    contact = org.table(CONTACTS).get(party_id or "")
    if contact is None or contact["contact_type"] != resource.party:
        raise invalid(key)
    old = record.get(key)
    record["_old_customer"] = old
    if old != party_id:
        if old:
            org.ref(old, -1)
        org.ref(party_id, 1)
        contact["has_transaction"] = True
    record[key] = party_id
    record[f"{resource.party}_name"] = contact["contact_name"]
    record.setdefault("currency_id", contact["currency_id"])
    record["_party_currency"] = contact["currency_id"]


def _transaction_currency(org: Org, record: dict, data: dict) -> None:
    default_id = record.pop("_party_currency", None) or record.get("currency_id")
    default = org.currencies.get(default_id or "", org.base_currency)
    if "currency_id" in data or "currency_code" in data or "currency_code" not in record:
        currency = _currency(org, data, default)
        _set_currency(record, currency)
        record["exchange_rate"] = currency["exchange_rate"]
    rate = get_decimal(data, "exchange_rate")
    if rate is not None:
        if rate <= 0:
            raise invalid("exchange_rate")
        record["exchange_rate"] = rate


def _invoice_terms(org: Org, record: dict, data: dict) -> None:
    terms = get_int(data, "payment_terms")
    if terms is not None:
        if terms < 0:
            raise invalid("payment_terms")
        record["payment_terms"] = terms
        record["payment_terms_label"] = f"Net {terms}" if terms else "Due on Receipt"
    if "due_date" not in data:
        record["due_date"] = add_days(record["date"], record["payment_terms"])
    estimate_id = get_id(data, "invoiced_estimate_id")
    if estimate_id is not None:
        org.get(ESTIMATES, estimate_id)
        record["invoiced_estimate_id"] = estimate_id
    allow = get_bool(data, "allow_partial_payments")
    if allow is not None:
        record["allow_partial_payments"] = allow


def _swap_item_refs(org: Org, old: list[dict], new: list[dict]) -> None:
    for line in old:
        if line["item_id"]:
            org.ref(line["item_id"], -1)
    for line in new:
        if line["item_id"]:
            org.ref(line["item_id"], 1)


def release_refs(org: Org, resource: Resource, record: dict) -> None:
    """A deleted transaction stops holding its party and items."""
    party = record.get(f"{resource.party}_id")
    if party:
        org.ref(party, -1)
    _swap_item_refs(org, record["line_items"], [])


def invoice_from_estimate(org: Org, estimate: dict, invoice_id: str, now: datetime,
                          new_id) -> dict:
    """POST /invoices/fromestimates: copy customer, lines, currency and CRM deal link."""
    lines = [{k: line[k] for k in ("item_id", "name", "description", "rate", "quantity",
                                   "unit", "discount") if line.get(k) not in ("", None)}
             for line in estimate["line_items"]]
    body = {"customer_id": estimate["customer_id"], "line_items": lines,
            "currency_id": estimate["currency_id"],
            "reference_number": estimate["estimate_number"],
            "invoiced_estimate_id": estimate["estimate_id"]}
    if estimate.get("zcrm_potential_id"):
        body["zcrm_potential_id"] = estimate["zcrm_potential_id"]
    invoice = new_transaction(org, INVOICES, body, invoice_id, now, new_id, False)
    if invoice["exchange_rate"] != estimate["exchange_rate"]:
        invoice["exchange_rate"] = estimate["exchange_rate"]
    return invoice

