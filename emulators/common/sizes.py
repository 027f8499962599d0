"""How much sample data the emulators seed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sizes:
    """How much sample data to seed; each field is a `crmbooks emulators` flag."""

    accounts: int = 40
    contacts_per_account: int = 2
    unassociated_contacts: int = 5
    vendors: int = 15
    products: int = 40
    deals: int = 20
    books_customers: int = 15
    books_vendors: int = 5
    books_items: int = 10
