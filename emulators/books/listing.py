"""List endpoints of the Books emulator: filters, sorting and page_context.

Filtering walks the insertion-ordered record dict once; only the rows of the requested page are
projected into list-item summaries, so a 200-row page of 10,000 records stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from emulators.books.resources import CONTACTS, CUSTOMERPAYMENTS, ITEMS, Resource
from emulators.books.state import Org, fmt_time, invalid, parse_date, parse_time

# Zoho documents per_page as "Maximum value is 200", and its pagination page says lists are
# "paginated to 200 items by default", although its OpenAPI parameters say the default is 10.
MAX_PER_PAGE = 200


def list_page(org: Org, resource: Resource, query: Mapping[str, str]) -> tuple[list, dict]:
    """Filter, sort and cut one page; return (rows, page_context)."""
    page, per_page = _int_param(query, "page", 1), _int_param(query, "per_page", MAX_PER_PAGE)
    if page < 1:
        raise invalid("page")
    if per_page < 1:
        raise invalid("per_page")
    per_page = min(per_page, MAX_PER_PAGE)  # larger values are capped, not refused (unverified)
    filter_by = query.get("filter_by", "Status.All")
    if filter_by not in resource.filter_by:
        raise invalid("filter_by")  # Deluge docs: "Invalid value passed for filter_by"
    checks = _checks(resource, query, filter_by)
    column, order = _sort(resource, query)
    ordered = _ordered(org, resource, column, order)
    rows = [r for r in ordered if all(check(r) for check in checks)] if checks else ordered
    start = (page - 1) * per_page
    chunk = rows[start:start + per_page]
    context = {"page": page, "per_page": per_page,
               "has_more_page": len(rows) > start + per_page,
               "report_name": resource.report_name, "applied_filter": filter_by,
               "sort_column": column, "sort_order": order}
    return _summaries(org, resource, chunk), context


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit():
        raise invalid(name)
    return int(raw)


def _summaries(org: Org, resource: Resource, chunk: list[dict]) -> list[dict]:
    """List-item projections, reused until the next write (a page is mostly re-read).

    Amounts become floats here, as the JSON encoder would write them anyway; doing it once
    per cached row keeps the per-request cost down.
    """
    if org.summary_version != org.version:
        org.summary_cache.clear()
        org.summary_version = org.version
    cache, id_field, out = org.summary_cache, resource.id_field, []
    for record in chunk:
        key = (resource.plural, record[id_field])
        row = cache.get(key)
        if row is None:
            row = cache[key] = {k: float(v) if isinstance(v, Decimal) else v
                                for k in resource.summary if (v := record.get(k, _NO)) is not _NO}
        out.append(row)
    return out


_NO = object()


def _sort(resource: Resource, query: Mapping[str, str]) -> tuple[str, str]:
    """(column, A|D); without sort_column the resource's documented default applies."""
    column = query.get("sort_column")
    if column is None:
        column, default_order = resource.default_sort
    else:
        default_order = "A"
        if column not in resource.sort_columns:
            raise invalid("sort_column")
    order = query.get("sort_order", default_order)
    if order not in ("A", "D"):
        raise invalid("sort_order")
    return column, order


def _ordered(org: Org, resource: Resource, column: str, order: str) -> list[dict]:
    """All records sorted (stable, insertion order breaks ties); cached until a write."""
    key = (resource.plural, column, order)
    cached = org.sort_cache.get(key)
    if cached is not None and cached[0] == org.version:
        return cached[1]
    ordered = sorted(org.table(resource).values(), key=_sort_key(column),
                     reverse=order == "D")
    org.sort_cache[key] = (org.version, ordered)
    return ordered


def _sort_key(column: str) -> Callable[[dict], object]:
    def key(record: dict) -> object:
        """Strings case-insensitively, before numbers (columns hold one kind anyway)."""
        value = record.get(column, "")
        if isinstance(value, str):
            return (0, value.casefold())
        return (1, value)

    return key


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def _checks(resource: Resource, query: Mapping[str, str], filter_by: str) -> list[Callable]:
    checks: list[Callable] = []
    status_filter = _status_check(resource, filter_by)
    if status_filter is not None:
        checks.append(status_filter)
    for name in resource.exact_filters:
        if name in query:
            checks.append(_exact(name, query[name]))
    for base in resource.text_filters:
        getter = _getter(resource, base)
        for suffix, test in (("", _eq), ("_startswith", _starts), ("_contains", _contains)):
            if base + suffix in query:
                wanted = query[base + suffix].casefold()
                checks.append(lambda r, g=getter, w=wanted, t=test: t(g(r), w))
    if query.get("search_text"):
        checks.append(_search(resource, query["search_text"].casefold()))
    if resource.has_lmt_filter and query.get("last_modified_time"):
        checks.append(_modified_since(query["last_modified_time"]))
    if resource.has_date_filters:
        checks += _date_checks(query)
    if resource is ITEMS:
        checks += _rate_checks(query, "rate")
    if resource is CUSTOMERPAYMENTS:  # amount, amount_less_than, ... (customer-payments.yml)
        checks += _rate_checks(query, "amount")
    return checks


def _status_check(resource: Resource, filter_by: str) -> Callable | None:
    if resource is CONTACTS:
        table = {
            "Status.Active": lambda r: r["status"] == "active",
            "Status.Inactive": lambda r: r["status"] == "inactive",
            "Status.Crm": lambda r: r["is_linked_with_zohocrm"],
            "Status.PortalEnabled": lambda r: False,
            "Status.CreditLimitExceed": lambda r: False,
            "Status.Duplicate": lambda r: False,
            "Invoice.OverDue": lambda r: False,  # overdue (from due dates) is not modelled
            "Invoice.Unpaid": lambda r: r["outstanding_receivable_amount"] > 0,
        }
        return table.get(filter_by)
    if resource is CUSTOMERPAYMENTS:
        mode = filter_by.partition(".")[2].lower()
        if filter_by in ("PaymentMode.All", "Status.All"):
            return None
        return lambda r: r["payment_mode"] == mode
    statuses = resource.filter_by.get(filter_by)
    if statuses is None:
        return None
    return lambda r: r.get("status") in statuses


def _exact(name: str, wanted: str) -> Callable:
    if name == "item_id":
        return lambda r: any(li["item_id"] == wanted for li in r.get("line_items", ()))
    return lambda r: str(r.get(name, "")) == wanted


def _getter(resource: Resource, base: str) -> Callable[[dict], str]:
    if base == "address":
        return lambda r: " ".join(str(v) for a in ("billing_address", "shipping_address")
                                  for v in r[a].values())
    if base == "item_name":
        return lambda r: " ".join(li["name"] for li in r.get("line_items", ()))
    return lambda r: str(r.get(base, ""))


def _eq(value: str, wanted: str) -> bool:
    return value.casefold() == wanted


def _starts(value: str, wanted: str) -> bool:
    return value.casefold().startswith(wanted)


def _contains(value: str, wanted: str) -> bool:
    return wanted in value.casefold()


def _search(resource: Resource, text: str) -> Callable:
    if resource is CONTACTS:  # Zoho: "Search contacts by contact name or notes"
        fields = ("contact_name", "notes")
    elif resource is ITEMS:
        fields = ("name", "description")
    elif resource is CUSTOMERPAYMENTS:  # "by reference number or customer name or payment
        fields = ("reference_number", "customer_name", "description")  # description"
    else:
        fields = (resource.number_field, "reference_number", f"{resource.party}_name")
    return lambda r: any(text in str(r.get(f, "")).casefold() for f in fields)


def _modified_since(raw: str) -> Callable:
    """Records modified at or after the given time (Books says "modified after"; whether the
    bound is included is unverified)."""
    from datetime import UTC

    cutoff = fmt_time(parse_time(raw).astimezone(UTC))
    # Stored stamps are all UTC with +0000, so string order is time order.
    return lambda r: r["last_modified_time"] >= cutoff


def _date_checks(query: Mapping[str, str]) -> list[Callable]:
    checks = []
    table = {"date": lambda v, d: v == d, "date_start": lambda v, d: v >= d,
             "date_end": lambda v, d: v <= d, "date_before": lambda v, d: v < d,
             "date_after": lambda v, d: v > d}
    for name, test in table.items():
        if query.get(name):
            day = parse_date(query[name], name)
            checks.append(lambda r, t=test, d=day: bool(r["date"]) and t(r["date"], d))
    return checks


def _rate_checks(query: Mapping[str, str], field: str) -> list[Callable]:
    """`<field>`, `<field>_less_than` … `<field>_greater_equals`: a numeric comparison."""
    checks = []
    tests = {"": lambda v, x: v == x, "_less_than": lambda v, x: v < x,
             "_less_equals": lambda v, x: v <= x, "_greater_than": lambda v, x: v > x,
             "_greater_equals": lambda v, x: v >= x}
    table = {field + suffix: test for suffix, test in tests.items()}
    for name, test in table.items():
        if query.get(name):
            try:
                bound = Decimal(query[name])
            except InvalidOperation:
                raise invalid(name) from None
            if not bound.is_finite():
                raise invalid(name)
            checks.append(lambda r, t=test, b=bound, f=field: t(r[f], b))
    return checks
