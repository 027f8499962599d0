"""Deterministic sample data for the Books emulator.

Per organization: currencies (base + EUR, GBP, INR), custom field definitions (a unique text
field `cf_crm_id` on every resource, so a sync engine can upsert by the CRM id, plus one
ordinary field on contacts and items), customers (business and individual, with contact
persons; some named exactly like CRM Accounts, some near-duplicates of them, some linked to
CRM), vendors (some named like CRM Vendors), items (some named like CRM Products) and a few
estimates, invoices, sales orders and purchase orders. Names include non-ASCII characters;
amounts have cents and several currencies. Everything follows from the rng.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from emulators.books import receivables
from emulators.books.records import new_contact, new_item, new_transaction
from emulators.books.resources import (
    CONTACTS,
    ESTIMATES,
    INVOICES,
    ITEMS,
    PURCHASEORDERS,
    RECEIVABLES,
    SALESORDERS,
    TRANSACTIONS,
)
from emulators.books.state import FIRST_ID, Org, add_days, fmt_time

CURRENCIES = {  # code -> (name, symbol, units of this currency per 1 USD)
    "USD": ("US Dollar", "$", Decimal("1")),
    "EUR": ("Euro", "€", Decimal("0.92")),
    "GBP": ("Pound Sterling", "£", Decimal("0.79")),
    "INR": ("Indian Rupee", "₹", Decimal("83.12")),
    "CAD": ("Canadian Dollar", "$", Decimal("1.36")),
    "AUD": ("Australian Dollar", "$", Decimal("1.52")),
    "JPY": ("Japanese Yen", "¥", Decimal("149.5")),
}
COMPANY_WORDS = ("Nordlicht", "Café Zoë", "Ångström", "Łódź", "São Paulo", "Müller",
                 "Ørsted", "Crème", "Señor", "Straße", "Smørrebrød", "Kraków", "Zürich",
                 "東京", "Ελλάς", "Дельта", "Acme", "Bluebird", "Cedar", "Granite", "Harbor",
                 "Ironwood", "Juniper", "Keystone", "Lumen", "Meridian", "Northwind")
COMPANY_SUFFIX = ("GmbH", "S.A.", "Ltd", "Inc.", "SARL", "& Co", "Holdings", "Trading",
                  "AB", "Sp. z o.o.", "K.K.", "LLC")
FIRST = ("Anaïs", "Björn", "Chloé", "Dário", "Émile", "Frédéric", "Gülşen", "Håkon", "Inés",
         "Jürgen", "Kasia", "Léa", "Mårten", "Noémie", "Øystein", "Paweł", "Renée", "Søren",
         "Tomás", "Zoë", "James", "Priya", "Wei", "Yuki")
LAST = ("Álvarez", "Bäcker", "Çelik", "Dvořák", "Ferreira", "García", "Høeg", "Ivanović",
        "Jõgi", "Kowalski", "López", "Müller", "Nuñez", "O'Brien", "Périer", "Quiñones",
        "Schröder", "Tanaka", "Wójcik", "Smith", "Patel")
PRODUCTS = ("Widget", "Sensor", "Gateway", "Licence", "Support plan", "Cable", "Adapter",
            "Module", "Kit", "Service hour", "Überwachung", "Caméra", "Bohrer", "Consulting")


def seed_books(books, rng: random.Random, sizes, crm) -> None:
    """Fill `books.orgs` for every configured organization id."""
    config = books.emu.config
    now = books.emu.now()
    for index, org_id in enumerate(config.books_org_ids):
        org = Org(org_id, _org_info(config, org_id, index, now))
        books.orgs[org_id] = org
        _currencies(books, org, config.books_currency)
        _custom_fields(books, org)
        _OrgSeeder(books, org, rng, now, crm).run(sizes)
    late = 0
    for org in books.orgs.values():
        # Their ids are below the records' range rather than the next in it, so that the
        # sample records and every record created afterwards get the ids they had before
        # credit notes and payments were served (a stored state made then still fits).
        for resource in RECEIVABLES:
            late += 1
            org.custom_fields[resource.key] = [{**crm_id_field(books, advance=False),
                                                "customfield_id": str(FIRST_ID - late)}]
        receivables.rebuild(org)


def _org_info(config, org_id: str, index: int, now) -> dict:
    code = config.books_currency
    name = config.books_org_name if index == 0 else f"{config.books_org_name} ({index + 1})"
    return {
        "organization_id": org_id, "name": name, "contact_name": "Zylker Finance",
        "email": config.books_org_email, "is_default_org": index == 0,
        "language_code": "en", "fiscal_year_start_month": 0,
        "account_created_date": (now - timedelta(days=900)).date().isoformat(),
        "time_zone": "Etc/UTC", "is_org_active": True, "currency_code": code,
        "currency_symbol": CURRENCIES.get(code, (code, code, 1))[1],
        "currency_format": "###,##0.00", "price_precision": 2, "country": config.books_country,
        "plan_type": 0, "plan_name": "PREMIUM", "user_role": "admin", "version": "global",
        "date_format": "yyyy-MM-dd", "field_separator": "-",
    }


def _currencies(books, org: Org, base: str) -> None:
    base_rate = CURRENCIES.get(base, (base, base, Decimal(1)))[2]
    for code in dict.fromkeys([base, "EUR", "GBP", "INR"]):
        name, symbol, per_usd = CURRENCIES.get(code, (code, code, Decimal(1)))
        currency_id = books.new_id()
        # exchange_rate: base-currency units for one unit of this currency.
        rate = (base_rate / per_usd).quantize(Decimal("0.000001"))
        org.currencies[currency_id] = {
            "currency_id": currency_id, "currency_code": code, "currency_name": name,
            "currency_symbol": symbol, "price_precision": 2,
            "currency_format": "1,234,567.89", "is_base_currency": code == base,
            "exchange_rate": Decimal(1) if code == base else rate,
            "effective_date": "2026-01-01",
        }


def _custom_fields(books, org: Org) -> None:
    for resource in (CONTACTS, ITEMS, *TRANSACTIONS):
        fields = [crm_id_field(books)]
        if resource is CONTACTS:
            fields.append(_cf(books, 2, "Segment", "cf_segment"))
        elif resource is ITEMS:
            fields.append(_cf(books, 2, "Category", "cf_category"))
        org.custom_fields[resource.key] = fields


def crm_id_field(books, advance: bool = True) -> dict:
    """The unique text custom field `cf_crm_id` every resource has, so that a sync engine can
    upsert by the CRM id (X-Unique-Identifier-Key: cf_crm_id); `advance=False` takes no id
    from the records' counter (the caller gives one)."""
    return _cf(books, 1, "CRM ID", "cf_crm_id", unique=True, advance=advance)


def _cf(books, index: int, label: str, api_name: str, unique: bool = False,
        advance: bool = True) -> dict:
    return {"customfield_id": books.new_id() if advance else "", "index": index, "label": label,
            "api_name": api_name, "data_type": "string", "is_unique": unique,
            "is_active": True}


def _crm_names(crm, module: str, field: str) -> list[tuple[str, str]]:
    """(CRM id, name) pairs of a CRM module, sorted by id; empty if CRM has none."""
    try:
        records = crm.records(module)
    except Exception:  # CRM seeding without this module: no collisions to make
        return []
    pairs = [(rid, rec.get(field)) for rid, rec in records.items()]
    return sorted((rid, name) for rid, name in pairs if isinstance(name, str) and name)


class _OrgSeeder:
    """Creates one organization's records through the same code paths as the API."""

    def __init__(self, books, org: Org, rng: random.Random, now, crm):
        self.books, self.org, self.rng, self.now, self.crm = books, org, rng, now, crm
        self.codes = [c["currency_code"] for c in org.currencies.values()]

    def run(self, sizes) -> None:
        """Seed contacts, items and a few transactions."""
        customers = self._customers(sizes.books_customers)
        vendors = self._vendors(sizes.books_vendors)
        items = self._items(sizes.books_items)
        self._transactions(customers, vendors, items)

    def _stamp(self, record: dict) -> None:
        created = self.now - timedelta(days=self.rng.randint(30, 700),
                                       seconds=self.rng.randint(0, 86399))
        modified = created + timedelta(days=self.rng.randint(0, 29),
                                       seconds=self.rng.randint(0, 86399))
        record["created_time"] = fmt_time(created)
        record["last_modified_time"] = fmt_time(min(modified, self.now))

    def _unique(self, name: str, taken: set[str]) -> str:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name} {n}", n + 1
        taken.add(candidate)
        return candidate

    def _company(self) -> str:
        return f"{self.rng.choice(COMPANY_WORDS)} {self.rng.choice(COMPANY_SUFFIX)}"

    def _person(self, primary: bool) -> dict:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        mail = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace("'", "")
        return {"first_name": first, "last_name": last, "email": f"{mail}@example.com",
                "phone": f"+1-555-{self.rng.randint(1000, 9999)}",
                "is_primary_contact": primary}

    def _contact(self, body: dict) -> dict:
        record_id = self.books.new_id()
        record = new_contact(self.org, body, record_id, self.now, self.books.new_id)
        self._stamp(record)
        self.org.table(CONTACTS)[record_id] = record
        return record

    def _customers(self, count: int) -> list[dict]:
        accounts = _crm_names(self.crm, "Accounts", "Account_Name")
        picked = self.rng.sample(accounts, min(len(accounts), count // 3))
        near = self.rng.sample(accounts, min(len(accounts), count // 6))
        taken: set[str] = set()
        out = []
        for i in range(count):
            body: dict = {"contact_type": "customer", "currency_code": self._currency()}
            if i < len(picked):  # same display name as a CRM Account; half linked to it
                crm_id, name = picked[i]
                if i % 2 == 0:
                    body["zcrm_account_id"] = crm_id
            elif i - len(picked) < len(near):
                name = _near_duplicate(near[i - len(picked)][1], i)
            elif i % 4 == 3:
                person = self._person(True)
                name = f"{person['first_name']} {person['last_name']}"
                body["customer_sub_type"] = "individual"
            else:
                name = self._company()
            body["contact_name"] = self._unique(name, taken)
            if body.get("customer_sub_type") != "individual":
                body["company_name"] = body["contact_name"]
            body["contact_persons"] = [self._person(j == 0)
                                       for j in range(self.rng.randint(1, 3))]
            body["payment_terms"] = self.rng.choice((0, 15, 30, 45))
            body["billing_address"] = {"city": self.rng.choice(("Köln", "Paris", "Austin")),
                                       "country": self.rng.choice(("Germany", "France",
                                                                   "U.S.A"))}
            body["custom_fields"] = [{"api_name": "cf_segment",
                                      "value": self.rng.choice(("SMB", "Enterprise"))}]
            out.append(self._contact(body))
        return out

    def _currency(self) -> str:
        return self.codes[0] if self.rng.random() < 0.7 else self.rng.choice(self.codes)

    def _vendors(self, count: int) -> list[dict]:
        crm_vendors = _crm_names(self.crm, "Vendors", "Vendor_Name")
        picked = self.rng.sample(crm_vendors, min(len(crm_vendors), max(1, count // 2)))
        taken: set[str] = set()
        out = []
        for i in range(count):
            name = picked[i][1] if i < len(picked) else f"{self._company()} Supplies"
            body = {"contact_type": "vendor", "contact_name": self._unique(name, taken),
                    "company_name": name, "contact_persons": [self._person(True)],
                    "currency_code": self._currency()}
            out.append(self._contact(body))
        return out

    def _items(self, count: int) -> list[dict]:
        products = _crm_names(self.crm, "Products", "Product_Name")
        picked = self.rng.sample(products, min(len(products), count // 2))
        taken: set[str] = set()
        out = []
        for i in range(count):
            base = picked[i][1] if i < len(picked) else \
                f"{self.rng.choice(PRODUCTS)} {self.rng.choice(COMPANY_WORDS)}"
            name = self._unique(base, taken)
            rate = Decimal(self.rng.randint(100, 250000)) / 100
            body = {"name": name, "rate": rate, "sku": f"SKU-{self.org.id[-3:]}-{i + 1:05d}",
                    "description": f"{name} — sample item",
                    "item_type": self.rng.choice(("sales", "sales_and_purchases")),
                    "product_type": self.rng.choice(("goods", "service")),
                    "custom_fields": [{"api_name": "cf_category",
                                       "value": self.rng.choice(("Hardware", "Services"))}]}
            record_id = self.books.new_id()
            record = new_item(self.org, body, record_id, self.now)
            self.org.table(ITEMS)[record_id] = record
            out.append(record)
        return out

    def _transactions(self, customers: list[dict], vendors: list[dict],
                      items: list[dict]) -> None:
        if not items:
            return
        plan = ((ESTIMATES, customers, min(4, len(customers)), ("draft", "sent", "accepted")),
                (INVOICES, customers, min(3, len(customers)), ("draft", "sent")),
                (SALESORDERS, customers, min(2, len(customers)), ("draft", "open")),
                (PURCHASEORDERS, vendors, min(2, len(vendors)), ("draft", "open")))
        for resource, parties, count, statuses in plan:
            for i in range(count):
                party = parties[i]
                self._transaction(resource, party, items, statuses[i % len(statuses)])

    def _transaction(self, resource, party: dict, items: list[dict], status: str) -> None:
        lines = []
        for item in self.rng.sample(items, min(len(items), self.rng.randint(1, 3))):
            lines.append({"item_id": item["item_id"],
                          "quantity": Decimal(self.rng.randint(1, 12)),
                          "rate": Decimal(self.rng.randint(100, 99999)) / 100})
        body = {f"{resource.party}_id": party["contact_id"], "line_items": lines,
                "currency_id": party["currency_id"]}
        record_id = self.books.new_id()
        record = new_transaction(self.org, resource, body, record_id, self.now,
                                 self.books.new_id, False)
        record["status"] = status
        if "balance" in record:
            record["balance"] = record["total"]
        self._stamp(record)
        record["date"] = record["created_time"][:10]
        if "due_date" in record:
            record["due_date"] = add_days(record["date"], record["payment_terms"])
        if status == "accepted":
            record["accepted_date"] = record["last_modified_time"][:10]
        self.org.table(resource)[record_id] = record


def _near_duplicate(name: str, salt: int) -> str:
    """A name a human would call the same company: other case, punctuation or spacing."""
    variants = (name.upper(), name.lower(), name.replace(" ", "  "), name + ".",
                name.replace("&", "and"), name.replace(",", ""), f" {name}".rstrip() + " Inc")
    variant = variants[salt % len(variants)]
    return variant if variant != name else name + "."
