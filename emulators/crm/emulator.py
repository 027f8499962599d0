"""Zoho CRM v8 emulator (also answering /crm/v2 … /crm/v7): state, seeding and operations.

The HTTP surface lives in `emulators.crm.routes`; modules and fields in `emulators.crm.fields`
and, per emulator, `emulators.crm.catalogue`.
"""

from __future__ import annotations

import random
from datetime import timedelta

from fastapi import APIRouter

from emulators.common.documents import DocumentType
from emulators.crm.catalogue import Catalogue
from emulators.crm.fields import TEXT_MAX, TEXTAREA_MAX, Field
from emulators.crm.notify import Notifier
from emulators.crm.routes import build_router
from emulators.crm.seed import SPECIAL_ACCOUNTS, Seeder, ascii_slug, timeline
from emulators.crm.store import ID_BASE, Directory, ModuleStore, Renderer, iso
from emulators.crm.views import seed_views
from emulators.crm.write import RecordValidator, derive

CURRENCY_FIELDS = {"Currency", "Exchange_Rate"}
#: The types of custom field `add_custom_field` makes, with their sizes.
CUSTOM_FIELD_TYPES: dict[str, dict] = {
    "text": {"length": TEXT_MAX}, "textarea": {"length": TEXTAREA_MAX},
    "email": {"length": 100}, "phone": {"length": 30}, "website": {"length": TEXT_MAX},
    "integer": {"length": 9}, "double": {"length": 16, "decimal_place": 2},
    "currency": {"length": 16, "decimal_place": 2}, "boolean": {}, "date": {},
    "picklist": {}}
# Units of each currency per US dollar: fixed sample rates, not market data.
USD_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "INR": 83.1, "JPY": 151.2, "AUD": 1.52,
             "CAD": 1.36}


class CrmEmulator:
    """The emulated CRM org: records of nine modules (and of any document module declared at
    run time), users, custom views, notification channels."""

    def __init__(self, emu):
        self.emu = emu
        self.catalogue = Catalogue()
        self.stores: dict[str, ModuleStore] = self._empty_stores()
        self.directory = Directory()
        self.renderer = Renderer(self.stores, self.directory, self.catalogue)
        self.views: dict[str, list[dict]] = {}
        self.notifier = Notifier()
        self.page_tokens: dict[str, dict] = {}
        self._next_id = ID_BASE

    # ---------------------------------------------------------------- contract interface

    def router(self) -> APIRouter:
        """The FastAPI router for /crm/{version}/…"""
        return build_router(self)

    def add_document_type(self, doc: DocumentType) -> str:
        """Serve the CRM module of a document type declared at run time (empty, with the
        predefined custom views); returns its API name. Kept by `seed`: re-seeding empties
        it like every module."""
        known = doc.crm_module in self.catalogue.documents
        module = self.catalogue.add_document(doc)
        if not known:
            self.stores[module] = self._store(module)
            self.views = seed_views(self) | self.views
        return module

    def add_custom_field(self, module: str, api_name: str, label: str, data_type: str,
                         picklist: list[str] | None = None) -> dict:
        """Emulator-only: a custom field an administrator adds to a module; its
        `/settings/fields` entry (with `field_label`) is returned. Gone at the next seed.
        ValueError for an unknown module or type, or a taken API name."""
        name = self.catalogue.resolve(module)
        if name is None:
            raise ValueError(f"unknown CRM module {module}")
        if data_type not in CUSTOM_FIELD_TYPES:
            raise ValueError(f"data_type must be one of {', '.join(sorted(CUSTOM_FIELD_TYPES))}")
        if not api_name or not label:
            raise ValueError("api_name and label are required")
        kw: dict = dict(CUSTOM_FIELD_TYPES[data_type])
        if data_type == "picklist":
            kw["picklist"] = ["-None-", *(picklist or [])]
        self.catalogue.add_field(name, Field(api_name, label, data_type, custom=True, **kw))
        return {"module": name, "api_name": api_name, "field_label": label,
                "data_type": data_type}

    def _store(self, module: str) -> ModuleStore:
        return ModuleStore(module, self.catalogue.fields[module])

    def _empty_stores(self) -> dict[str, ModuleStore]:
        return {m: self._store(m) for m in self.catalogue.modules}

    def records(self, module: str) -> dict[str, dict]:
        """id -> stored record (API names; lookups and owners hold ids) of a module."""
        return self.stores[module].records

    def seed(self, rng: random.Random, sizes) -> None:
        """Replace all state with deterministic sample data drawn from `rng`."""
        self.catalogue.drop_added_fields()
        self.stores = self._empty_stores()
        self.renderer = Renderer(self.stores, self.directory, self.catalogue)
        self.page_tokens.clear()
        self.notifier.clear()
        self._next_id = ID_BASE
        self._seed_users()
        config = self.emu.config
        seeder = Seeder(rng, config.crm_multi_currency, config.crm_currency)
        plan = _plan(sizes)
        times = iter(timeline(sum(plan.values())))
        owners = [u for u in self.directory.users.values() if u["status"] == "active"]
        deleted_owner = next(u for u in self.directory.users.values() if u["status"] != "active")

        def put(module: str, values: dict, owner: str | None = None) -> str:
            """Insert one seed record with audit fields laid out on the seed timeline."""
            created = next(times)
            modified = created + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            fmap = self.catalogue.field_map[module]
            rec = {k: v for k, v in values.items() if k in fmap}
            rec.update(id=self.new_id(), Owner=owner or rng.choice(owners)["id"],
                       Created_By=self.directory.current_user_id,
                       Modified_By=self.directory.current_user_id,
                       Created_Time=iso(created), Modified_Time=iso(min(modified, _SEED_END)))
            if "Currency" in fmap:
                self._set_currency(rec)
            derive(module, rec, rec, self.catalogue.subform(module))
            self.stores[module].add(rec)
            return rec["id"]

        self._seed_records(seeder, rng, sizes, plan, put, deleted_owner["id"])
        self._seed_purged()
        self.views = seed_views(self)

    def _seed_purged(self) -> None:
        """A few long-gone records per module in the deleted list: permanently deleted ones
        have no name and no users any more (the getDeletedRecords example of Zoho's OpenAPI
        file)."""
        for n, store in enumerate(self.stores.values()):
            for k in range(2):
                store.deleted.append({"deleted_by": None, "id": self.new_id(),
                                      "display_name": None, "type": "permanent",
                                      "created_by": None,
                                      "deleted_time": f"2025-0{1 + k}-1{n % 10}T09:30:00+00:00"})

    def _seed_records(self, seeder, rng, sizes, plan, put, deleted_owner: str) -> None:
        names = seeder.company_names(plan["accounts"], SPECIAL_ACCOUNTS)
        accounts = []
        for i, name in enumerate(names):
            owner = deleted_owner if i % 9 == 4 else None  # a deleted user still owns some
            values = seeder.account(name)
            if i % 4 == 1:
                values["Industry"] = "Technology"  # the "Key Accounts" view is never empty
            accounts.append(put("Accounts", values, owner))
        contacts_of: dict[str, list[str]] = {a: [] for a in accounts}
        n = 0
        for acc in accounts:
            domain = (self.stores["Accounts"].records[acc]["Website"] or "").split("www.")[-1]
            for _ in range(sizes.contacts_per_account):
                values = seeder.contact(n, domain)
                values["Account_Name"] = acc
                contacts_of[acc].append(put("Contacts", values))
                n += 1
        for _ in range(sizes.unassociated_contacts):
            put("Contacts", seeder.contact(n, None))
            n += 1
        vendor_names = seeder.company_names(plan["vendors"], [])
        vendors = [put("Vendors", seeder.vendor(v.replace("Ltd", "Supplies"))) for v in
                   vendor_names]
        products = []
        for i in range(plan["products"]):
            values = seeder.product(i)
            if vendors and rng.random() < 0.6:
                values["Vendor_Name"] = rng.choice(vendors)
            products.append(put("Products", values))
        deals = []
        for _ in range(plan["deals"]):
            acc = rng.choice(accounts) if accounts else None
            acc_name = self.stores["Accounts"].records[acc]["Account_Name"] if acc else "Walk-in"
            values = seeder.deal(acc_name)
            values["Account_Name"] = acc
            if acc:  # a deal is priced in its account's currency
                values["Currency"] = self.stores["Accounts"].records[acc].get("Currency")
            if acc and contacts_of[acc]:
                values["Contact_Name"] = rng.choice(contacts_of[acc])
            deals.append(put("Deals", values))
        self._seed_orders(rng, plan, put, accounts, vendors, products, deals)

    def _seed_orders(self, rng, plan, put, accounts, vendors, products, deals) -> None:
        if not products:
            return
        for module in ("Quotes", "Sales_Orders", "Invoices", "Purchase_Orders"):
            vendor = self.catalogue.documents[module].party == "vendor"
            parties = vendors if vendor else accounts
            if not parties:
                continue
            for i in range(plan[module]):
                rows = []
                for _ in range(rng.randint(1, 3)):
                    product = rng.choice(products)
                    price = self.stores["Products"].records[product]["Unit_Price"]
                    rows.append({"id": self.new_id(), "Product_Name": product,
                                 "Quantity": float(rng.randint(1, 20)), "List_Price": price,
                                 "Discount": 0.0})
                validator = RecordValidator(self, module)
                rows = [validator.price_row(r) for r in rows]
                party = "Vendor_Name" if vendor else "Account_Name"
                fmap = self.catalogue.field_map[module]
                values = {"Subject": f"{self.catalogue.modules[module].singular} {1000 + i}",
                          party: rng.choice(parties),
                          "Status": rng.choice(fmap["Status"].picklist[1:]),
                          self.catalogue.subform(module): rows}
                if deals and not vendor and rng.random() < 0.5:
                    values["Deal_Name"] = rng.choice(deals)
                put(module, values)

    def _seed_users(self) -> None:
        self.directory.users.clear()
        people = [("Patricia", "Boyle", "active", "Administrator", "CEO"),
                  ("Kenji", "Sato", "active", "Standard", "Manager"),
                  ("Amelia", "Okafor", "active", "Standard", "Sales Rep"),
                  ("Dmitri", "Volkov", "deleted", "Standard", "Sales Rep")]
        for i, (first, last, status, profile, role) in enumerate(people):
            uid = str(ID_BASE - 1000 + i)
            self.directory.users[uid] = {
                "id": uid, "first_name": first, "last_name": last,
                "full_name": f"{first} {last}", "name": f"{first} {last}",
                "email": f"{ascii_slug(first)}.{ascii_slug(last)}@zylker.example",
                "status": status, "confirm": True,
                "profile": {"name": profile, "id": str(ID_BASE - 900 + (profile == "Standard"))},
                "role": {"name": role, "id": str(ID_BASE - 800 + i)},
                "zuid": str(70000100 + i), "time_zone": "Etc/UTC", "locale": "en_US",
                "country": "US", "language": "en_US",
                "created_time": "2024-11-01T09:00:00+00:00",
                "Modified_Time": "2024-11-01T09:00:00+00:00",
            }
        self.directory.current_user_id = str(ID_BASE - 1000)

    # ---------------------------------------------------------------- helpers

    def new_id(self) -> str:
        """A fresh 19-digit record id; ids only increase."""
        self._next_id += 1
        return str(self._next_id)

    def module_id(self, module: str) -> str:
        """The module's numeric id."""
        return self.catalogue.module_id(module)

    def active_fields(self, module: str) -> list[Field]:
        """Fields that exist in this org (Currency only with multi-currency, as in Zoho)."""
        fields = self.catalogue.fields[module]
        if self.emu.config.crm_multi_currency:
            return fields
        return [f for f in fields if f.api_name not in CURRENCY_FIELDS]

    def field_map(self, module: str) -> dict[str, Field]:
        """api_name -> Field of the active fields."""
        return {f.api_name: f for f in self.active_fields(module)}

    def writable(self, module: str) -> dict[str, Field]:
        """Active fields a write may set (read-only ones are ignored on write)."""
        return {f.api_name: f for f in self.active_fields(module) if not f.read_only}

    def user_ref(self) -> dict:
        """{"name","id"} of the calling user (the token owner)."""
        user = self.directory.users[self.directory.current_user_id]
        return {"name": user["full_name"], "id": user["id"]}

    # ---------------------------------------------------------------- writes

    def create(self, module: str, item, index: int) -> tuple[dict, dict]:
        """Validate and insert one record; returns (record, success details)."""
        changes = RecordValidator(self, module).changes(item, index, None)
        now = iso(self.emu.now())
        me = self.directory.current_user_id
        rec = {"id": self.new_id(), "Owner": me, **changes}
        if rec.get("Owner") is None:
            rec["Owner"] = me
        if "Currency" in self.catalogue.field_map[module]:
            self._set_currency(rec)
        rec.update(Created_By=me, Modified_By=me, Created_Time=now, Modified_Time=now)
        derive(module, rec, changes, self.catalogue.subform(module))
        self.stores[module].add(rec)
        return rec, self.details(rec)

    def update(self, module: str, rec_id: str, item, index: int) -> tuple[dict, dict, list]:
        """Validate and apply one update; returns (record, details, changed field names)."""
        store = self.stores[module]
        rec = store.records[rec_id]
        changes = RecordValidator(self, module).changes(item, index, rec)
        old_modified, old_values = rec["Modified_Time"], dict(rec)
        if changes.get("Owner", rec.get("Owner")) is None:
            changes["Owner"] = rec.get("Owner")
        rec.update(changes)
        if "Currency" in changes and "Exchange_Rate" not in changes:
            self._set_currency(rec)
        derive(module, rec, changes, self.catalogue.subform(module))
        rec["Modified_By"] = self.directory.current_user_id
        rec["Modified_Time"] = iso(self.emu.now())
        store.touch(rec, old_modified, old_values)
        changed = [k for k in changes if old_values.get(k) != rec.get(k)]
        return rec, self.details(rec), changed

    def delete(self, module: str, rec_id: str) -> None:
        """Move a record to the recycle bin and clear lookups that pointed at it."""
        rec = self.stores[module].remove(rec_id)
        self.stores[module].deleted.append({
            "deleted_by": self.user_ref(),
            "id": rec_id,
            "display_name": rec.get(self.catalogue.name_field(module)),
            "type": "recycle",
            "created_by": self.renderer.value(self.catalogue.field_map[module]["Created_By"],
                                              rec.get("Created_By")),
            "deleted_time": iso(self.emu.now()),
        })
        # Zoho's cascade rules differ per relation (unverified); we simply disassociate.
        for other, store in self.stores.items():
            refs = [f.api_name for f in self.catalogue.fields[other]
                    if f.data_type == "lookup" and f.lookup_module == module]
            if not refs:
                continue
            for record in store.records.values():
                for name in refs:
                    if record.get(name) == rec_id:
                        record[name] = None

    def _set_currency(self, rec: dict) -> None:
        """Home currency unless multi-currency lets the record carry another; Exchange_Rate
        is the home-currency units per record-currency unit."""
        home = self.emu.config.crm_currency
        if not self.emu.config.crm_multi_currency or not rec.get("Currency"):
            rec["Currency"] = home
        rates = USD_RATES
        rec["Exchange_Rate"] = round(rates.get(home, 1.0) / rates.get(rec["Currency"], 1.0), 9)

    def details(self, rec: dict) -> dict:
        """The `details` of a write success item (ids, times and users of the record)."""
        created_by = self.directory.owner_ref(rec["Created_By"]) or {}
        modified_by = self.directory.owner_ref(rec["Modified_By"]) or {}
        return {
            "Modified_Time": rec["Modified_Time"],
            "Modified_By": {"name": modified_by.get("name"), "id": modified_by.get("id")},
            "Created_Time": rec["Created_Time"],
            "id": rec["id"],
            "Created_By": {"name": created_by.get("name"), "id": created_by.get("id")},
            "$approval_state": "approved",
        }

    def find_duplicate(self, module: str, item: dict, check: list[str],
                       cache: dict | None = None) -> tuple[str, str] | None:
        """Upsert matching: the first field of `check` whose value matches an existing record
        (case-insensitively, unverified) -> (field, record id). `cache` (one per request) holds
        value indexes of non-unique fields so a 100-record upsert scans each field once."""
        store = self.stores[module]
        fmap = self.field_map(module)
        cache = {} if cache is None else cache
        for name in check:
            value = item.get(name)
            if value is None or value == "" or not isinstance(value, str | int | float):
                continue
            if name in store.unique:
                index = store.unique[name]
            elif fmap[name].data_type in ("lookup", "ownerlookup"):
                continue
            else:
                index = cache.get(name)
                if index is None:
                    index = cache[name] = self._value_index(module, name)
            found = index.get(str(value).lower())
            if found is not None and found in store.records:
                return name, found
        return None

    def _value_index(self, module: str, name: str) -> dict[str, str]:
        index: dict[str, str] = {}
        for rec_id, rec in self.stores[module].records.items():
            if rec.get(name) is not None:
                index.setdefault(str(rec[name]).lower(), rec_id)
        return index

    @staticmethod
    def remember(cache: dict, rec: dict) -> None:
        """Keep an upsert request's value indexes current after a write."""
        for name, index in cache.items():
            if rec.get(name) is not None:
                index.setdefault(str(rec[name]).lower(), rec["id"])


_SEED_END = timeline(1)[0] + timedelta(days=330)


def _plan(sizes) -> dict[str, int]:
    """How many records of each module to seed for `sizes`."""
    contacts = sizes.accounts * sizes.contacts_per_account + sizes.unassociated_contacts
    return {
        "accounts": sizes.accounts, "contacts": contacts, "vendors": sizes.vendors,
        "products": sizes.products, "deals": sizes.deals,
        "Quotes": max(1, sizes.deals // 2) if sizes.deals else 0,
        "Sales_Orders": sizes.deals // 3, "Invoices": sizes.deals // 3,
        "Purchase_Orders": sizes.vendors // 3,
    }


__all__ = ["CrmEmulator"]
