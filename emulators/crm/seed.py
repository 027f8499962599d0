"""Deterministic, realistic sample data for the CRM emulator.

Everything is drawn from the `random.Random` passed in, and timestamps are laid out from a fixed
anchor, so a given seed and sizes always produce the same records (ids, names, times).
Includes the awkward cases a sync engine must survive: accents, CJK, right-to-left and emoji
names, near-duplicates ("Acme Ltd" / "ACME Limited"), and a name full of search-criteria special
characters.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, datetime, timedelta

from emulators.crm.fields import DEAL_STAGES, INDUSTRIES, STAGE_PROBABILITY, USAGE_UNITS

ANCHOR = datetime(2025, 1, 6, 8, 0, 0, tzinfo=UTC)
SPAN = timedelta(days=300)

SPECIAL_ACCOUNTS = [
    "Acme Ltd",
    "ACME Limited",
    "Acme (UK), Ltd\\",
    "Société Générale des Eaux",
    "Müller & Söhne GmbH",
    "株式会社山田製作所",
    "شركة النور للتجارة",
    "Café ☕ Résumé Ltd",
]

ADJ = ["Northwind", "Blue", "Silver", "Global", "Summit", "Pioneer", "Vertex", "Crescent",
       "Golden", "Red", "Evergreen", "Atlas", "Harbor", "Quantum", "Bright", "Prime", "Coastal",
       "Iron", "Union", "Royal", "Alpine", "Sunrise", "Oak", "Metro", "Eagle", "Polar",
       "Delta", "Nova", "Cedar", "Falcon", "Granite", "Horizon", "Liberty", "Maple", "Orion",
       "Pacific", "Redwood", "Sterling", "Titan", "Zenith"]
NOUN = ["Traders", "Systems", "Logistics", "Foods", "Analytics", "Motors", "Textiles",
        "Pharma", "Energy", "Labs", "Media", "Robotics", "Builders", "Outfitters", "Partners",
        "Networks", "Dynamics", "Solutions", "Industries", "Holdings", "Ventures", "Works",
        "Designs", "Consulting", "Electronics", "Marine", "Capital", "Health", "Studios",
        "Foundry"]
SUFFIX = ["Ltd", "Inc.", "GmbH", "S.A.", "LLC", "Pty Ltd", "SARL", "K.K.", "Corp.", "plc"]

FIRST = ["James", "Maria", "Chen", "Aisha", "Lukas", "Sofia", "Hiroshi", "Priya", "Olivia",
         "Mateo", "Fatima", "Noah", "Élodie", "Zoë", "Søren", "José", "Yuki", "Wei", "Amir",
         "Emma", "Liam", "Ana", "Björn", "Chloé", "Raj", "Leila", "Tomás", "Hannah", "Ivan",
         "Mei"]
LAST = ["Smith", "García", "Wang", "Khan", "Müller", "Rossi", "Tanaka", "Patel", "Brown",
        "Silva", "Haddad", "Johnson", "Dubois", "Nakamura", "Kowalski", "O'Brien", "Ng",
        "Fernández", "Schmidt", "Martin", "Lee", "Kim", "Novak", "Jensen", "Cohen", "Singh",
        "Lopez", "Ahmed", "Petrov", "Larsen"]
SPECIAL_PEOPLE = [("太郎", "山田"), ("محمد", "العلي"), ("Renée", "Zoë-Ångström"),
                  ("Sam 🚀", "Rocket")]

COUNTRIES = [
    # country, [(city, state)], zip format, phone prefix, currency
    ("United States", [("New York", "NY"), ("Austin", "TX"), ("Seattle", "WA"),
                       ("Chicago", "IL")], "{:05d}", "+1", "USD"),
    ("United Kingdom", [("London", "Greater London"), ("Manchester", "Greater Manchester"),
                        ("Leeds", "West Yorkshire")], "EC{:d}A 1BB", "+44", "GBP"),
    ("Germany", [("Berlin", "Berlin"), ("München", "Bayern"), ("Köln", "Nordrhein-Westfalen")],
     "{:05d}", "+49", "EUR"),
    ("France", [("Paris", "Île-de-France"), ("Lyon", "Auvergne-Rhône-Alpes")], "{:05d}",
     "+33", "EUR"),
    ("Japan", [("東京", "東京都"), ("Osaka", "Osaka")], "{:03d}-0001", "+81", "JPY"),
    ("India", [("Chennai", "Tamil Nadu"), ("Bengaluru", "Karnataka"), ("Mumbai", "Maharashtra")],
     "6{:05d}", "+91", "INR"),
    ("Australia", [("Sydney", "NSW"), ("Melbourne", "VIC")], "{:04d}", "+61", "AUD"),
    ("Canada", [("Toronto", "ON"), ("Vancouver", "BC")], "M5V {:d}A1", "+1", "CAD"),
    ("United Arab Emirates", [("دبي", "Dubai"), ("Abu Dhabi", "Abu Dhabi")], "{:05d}", "+971",
     "USD"),
]
STREETS = ["Main Street", "High Street", "Hauptstraße", "Rue de la Paix", "Market Road",
           "Harbour View", "Station Road", "Avenida Paulista", "King Street", "Elm Avenue"]
PRODUCT_WORDS = ["Widget", "Sensor", "Gateway", "Router", "License", "Support Plan", "Cable",
                 "Adapter", "Controller", "Panel", "Subscription", "Training", "Installation",
                 "Camera", "Battery"]
SERVICE_WORDS = {"License", "Support Plan", "Subscription", "Training", "Installation"}


def ascii_slug(text: str) -> str:
    """ASCII-only lower-case slug for e-mail and web addresses ('' when nothing is left)."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in norm.lower() if ch.isalnum())


def money(rng: random.Random, low: float, high: float) -> float:
    """An amount with exactly two decimals (a float that round-trips as a 2-decimal string)."""
    return round(rng.uniform(low, high), 2)


class Seeder:
    """Builds the seed records; the caller inserts them into its stores."""

    def __init__(self, rng: random.Random, multi_currency: bool, org_currency: str):
        self.rng = rng
        self.multi_currency = multi_currency
        self.org_currency = org_currency

    def company_names(self, n: int, specials: list[str]) -> list[str]:
        """n distinct company names, the special ones first."""
        names, seen = [], set()
        for name in specials[:n]:
            names.append(name)
            seen.add(name)
        while len(names) < n:
            rng = self.rng
            name = f"{rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(SUFFIX)}"
            if name in seen:
                name = f"{name} {len(names)}"
            seen.add(name)
            names.append(name)
        return names

    def address(self) -> dict:
        """A random postal address with the country's formats."""
        rng = self.rng
        country, cities, zip_fmt, prefix, currency = rng.choice(COUNTRIES)
        city, state = rng.choice(cities)
        return {
            "street": f"{rng.randint(1, 400)} {rng.choice(STREETS)}",
            "city": city,
            "state": state,
            "zip": zip_fmt.format(rng.randint(1, 9999)),
            "country": country,
            "phone": f"{prefix} {rng.randint(200, 999)} {rng.randint(100, 999)} "
                     f"{rng.randint(1000, 9999)}",
            "currency": currency,
        }

    def currency(self, addr: dict) -> str:
        """The record currency: local currency only when the org has multi-currency on."""
        return addr["currency"] if self.multi_currency else self.org_currency

    def account(self, name: str) -> dict:
        """Field values of one account."""
        rng, bill, ship = self.rng, self.address(), None
        ship = bill if rng.random() < 0.7 else self.address()
        slug = ascii_slug(name.split(" ")[0]) or f"company{rng.randint(100, 999)}"
        return {
            "Account_Name": name,
            "Account_Number": f"AC-{rng.randint(10000, 99999)}",
            "Account_Type": rng.choice(["Customer", "Prospect", "Partner", "Reseller"]),
            "Phone": bill["phone"],
            "Website": f"https://www.{slug}.example",
            "Industry": rng.choice(INDUSTRIES),
            "Employees": rng.randint(3, 20000),
            "Annual_Revenue": money(rng, 50_000, 90_000_000),
            "Billing_Street": bill["street"], "Billing_City": bill["city"],
            "Billing_State": bill["state"], "Billing_Code": bill["zip"],
            "Billing_Country": bill["country"],
            "Shipping_Street": ship["street"], "Shipping_City": ship["city"],
            "Shipping_State": ship["state"], "Shipping_Code": ship["zip"],
            "Shipping_Country": ship["country"],
            "Currency": self.currency(bill),
            "Description": None if rng.random() < 0.5
            else f"Customer since {rng.randint(1995, 2024)}.",
            "Tier__c": rng.choice(["Gold", "Silver", "Bronze", None]),
        }

    def person(self, index: int) -> tuple[str, str]:
        """(first, last) name; a few special (CJK, RTL, emoji) ones early on."""
        if index < len(SPECIAL_PEOPLE):
            return SPECIAL_PEOPLE[index]
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def contact(self, index: int, domain: str | None) -> dict:
        """Field values of one contact (Account_Name set by the caller)."""
        rng = self.rng
        first, last = self.person(index)
        addr = self.address()
        local = ".".join(p for p in (ascii_slug(first), ascii_slug(last)) if p)
        local = f"{local or 'contact'}{index}"
        return {
            "Salutation": rng.choice(["Mr.", "Ms.", "Dr.", None]),
            "First_Name": first,
            "Last_Name": last,
            "Email": f"{local}@{domain or 'mail.example'}",
            "Phone": addr["phone"],
            "Mobile": None if rng.random() < 0.4
            else addr["phone"][:-4] + f"{rng.randint(1000, 9999)}",
            "Title": rng.choice(["CEO", "CFO", "Buyer", "Engineer", "Office Manager", None]),
            "Department": rng.choice(["Finance", "Procurement", "IT", "Sales", None]),
            "Mailing_Street": addr["street"], "Mailing_City": addr["city"],
            "Mailing_State": addr["state"], "Mailing_Zip": addr["zip"],
            "Mailing_Country": addr["country"],
            "Email_Opt_Out": rng.random() < 0.1,
            "Currency": self.currency(addr),
        }

    def vendor(self, name: str) -> dict:
        """Field values of one vendor."""
        rng, addr = self.rng, self.address()
        slug = ascii_slug(name.split(" ")[0]) or "vendor"
        return {
            "Vendor_Name": name,
            "Email": f"sales@{slug}-supply.example",
            "Phone": addr["phone"],
            "Website": f"https://{slug}-supply.example",
            "Category": rng.choice(["Hardware", "Software", "Services", "Logistics"]),
            "Street": addr["street"], "City": addr["city"], "State": addr["state"],
            "Zip_Code": addr["zip"], "Country": addr["country"],
            "Currency": self.currency(addr),
        }

    def product(self, index: int) -> dict:
        """Field values of one product (Vendor_Name set by the caller)."""
        rng = self.rng
        word = rng.choice(PRODUCT_WORDS)
        service = word in SERVICE_WORDS
        return {
            "Product_Name": f"{word} {rng.choice(['Pro', 'Lite', 'Max', 'Plus', 'One'])} "
                            f"{100 + index}",
            "Product_Code": f"SKU-{index + 1:05d}",
            "Product_Category": "Services" if service else rng.choice(["Hardware", "Software"]),
            "Product_Active": rng.random() < 0.9,
            "Unit_Price": money(rng, 5, 25_000),
            "Taxable": rng.random() < 0.8,
            "Manufacturer": rng.choice(["Zylker", "Acme", "Globex", "Initech"]),
            "Usage_Unit": "Hour(s)" if word in ("Training", "Installation")
            else rng.choice(USAGE_UNITS),
            "Qty_in_Stock": None if service else float(rng.randint(0, 5000)),
            "Product_Type__c": "Services" if service else "Goods",
            "Currency": self.org_currency,
        }

    def deal(self, account_name: str) -> dict:
        """Field values of one deal (lookups set by the caller)."""
        rng = self.rng
        stage = rng.choice(DEAL_STAGES)[0]
        return {
            "Deal_Name": f"{account_name} – {rng.choice(PRODUCT_WORDS)} rollout",
            "Amount": money(rng, 500, 750_000),
            "Stage": stage,
            "Probability": STAGE_PROBABILITY[stage],
            "Closing_Date": (ANCHOR + timedelta(days=rng.randint(0, 420))).date().isoformat(),
            "Type": rng.choice(["Existing Business", "New Business"]),
            "Lead_Source": rng.choice(["Cold Call", "Partner", "Trade Show", "Web Download"]),
            "Currency": self.org_currency,
        }


def timeline(total: int) -> list[datetime]:
    """`total` increasing creation times between the anchor and anchor + SPAN."""
    step = SPAN / max(total, 1)
    return [(ANCHOR + step * i).replace(microsecond=0) for i in range(total)]
