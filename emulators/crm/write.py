"""Validation of one record of a CRM write body (create / update / upsert) against the field
metadata, producing the normalised changes or Zoho's per-item error."""

from __future__ import annotations

from decimal import Decimal

from emulators.crm.fields import STAGE_PROBABILITY, Field
from emulators.crm.store import iso
from emulators.crm.validate import ItemError, check_scalar, invalid, mandatory_missing


class RecordValidator:
    """Checks one write item; needs the emulator for lookups, owners and unique indexes."""

    def __init__(self, crm, module: str):
        self.crm = crm
        self.module = module
        self.fields = crm.writable(module)
        self.read_only = set(crm.field_map(module)) - set(self.fields)

    def changes(self, item, index: int, existing: dict | None) -> dict:
        """Normalised field changes of item `index`; raises ItemError on the first problem.

        An API name the module does not have is INVALID_DATA "the field api name given seems
        to be invalid": that is what Zoho's own v8 example answers (the "mixed results" 207
        example of updateRecords in its OpenAPI file), although older API versions were
        commonly reported to ignore unknown keys (unverified). Read-only fields, `id` and
        `$`-prefixed keys are ignored.
        """
        base = f"$.data[{index}]"
        if not isinstance(item, dict):
            raise invalid("data", base, expected_data_type="jsonobject")
        out: dict = {}
        for name, value in item.items():
            f = self.fields.get(name)
            path = f"{base}.{name}"
            if f is None:
                if name == "id" or name.startswith("$") or name in self.read_only:
                    continue
                raise ItemError("INVALID_DATA", "the field api name given seems to be invalid",
                                {"api_name": name, "json_path": path})
            out[name] = (self.subform(f, value, path, existing) if f.data_type == "subform"
                         else self.scalar(f, value, path))
        self.mandatory(out, base, existing)
        self.unique(out, base, existing)
        return out

    def scalar(self, f: Field, value, path: str):
        """Validate one value, including that lookup targets and owners exist."""
        norm = check_scalar(f, value, path)
        if norm is None:
            return None
        if f.data_type == "lookup" and norm not in self.crm.stores[f.lookup_module].records:
            raise invalid(f.api_name, path)
        if f.data_type == "ownerlookup":
            user = self.crm.directory.users.get(norm)
            if user is None or user["status"] != "active":
                raise invalid(f.api_name, path)
        if f.data_type == "datetime":
            return iso(norm)
        return norm

    def subform(self, f: Field, rows, path: str, existing: dict | None) -> list[dict]:
        """Line items: rows with an id update that row, rows without one are added, and rows
        left out are removed (Zoho's subform update semantics)."""
        if not isinstance(rows, list):
            raise invalid(f.api_name, path, expected_data_type="jsonarray")
        old = {r["id"]: r for r in (existing or {}).get(f.api_name) or []}
        out = []
        for i, row in enumerate(rows):
            row_path = f"{path}[{i}]"
            if not isinstance(row, dict):
                raise invalid(f.api_name, row_path, expected_data_type="jsonobject")
            row_id = row.get("id")
            if row_id is not None and str(row_id) not in old:
                raise invalid("id", f"{row_path}.id")
            merged = dict(old.get(str(row_id), {})) if row_id is not None else {}
            for sub in f.subform_fields:
                if sub.api_name in row and not sub.read_only:
                    merged[sub.api_name] = self.scalar(sub, row[sub.api_name],
                                                       f"{row_path}.{sub.api_name}")
            for sub in f.subform_fields:
                if sub.mandatory and merged.get(sub.api_name) in (None, ""):
                    raise mandatory_missing(sub.api_name, f"{row_path}.{sub.api_name}")
            merged["id"] = str(row_id) if row_id is not None else self.crm.new_id()
            out.append(self.price_row(merged))
        return out

    def price_row(self, row: dict) -> dict:
        """Fill List_Price from the product and compute the row Total."""
        if row.get("List_Price") is None:
            product = self.crm.stores["Products"].records.get(row["Product_Name"], {})
            row["List_Price"] = product.get("Unit_Price") or 0.0
        qty = Decimal(str(row.get("Quantity") or 0))
        total = qty * Decimal(str(row["List_Price"])) - Decimal(str(row.get("Discount") or 0))
        row["Total"] = float(total.quantize(Decimal("0.01")))
        return row

    def mandatory(self, out: dict, base: str, existing: dict | None) -> None:
        """On create every mandatory field needs a value; on update it may not be cleared."""
        for name, f in self.fields.items():
            if not f.mandatory:
                continue
            if existing is None:
                missing = out.get(name) in (None, "", [])
            else:
                missing = name in out and out[name] in (None, "", [])
            if missing:
                raise mandatory_missing(name, f"{base}.{name}")

    def unique(self, out: dict, base: str, existing: dict | None) -> None:
        """DUPLICATE_DATA when a unique field's value belongs to another record."""
        store = self.crm.stores[self.module]
        for name, index in store.unique.items():
            value = out.get(name)
            if value is None:
                continue
            other = index.get(value.lower())
            if other is not None and (existing is None or other != existing["id"]):
                dup = store.records[other]
                raise ItemError("DUPLICATE_DATA", "duplicate data", {
                    "api_name": name,
                    "json_path": f"{base}.{name}",
                    "duplicate_record": {
                        "Owner": self.crm.directory.owner_ref(dup.get("Owner")),
                        "id": other,
                        "module": {"api_name": self.module,
                                   "id": self.crm.module_id(self.module)},
                    },
                    "id": other,
                    "more_records": False,
                })


def derive(module: str, rec: dict, changes: dict, subform: str | None = None) -> None:
    """Computed fields: Full_Name, Stage→Probability, Expected_Revenue, and for a document
    module (one with a line-item `subform`) Sub_Total and Grand_Total."""
    if module == "Contacts":
        rec["Full_Name"] = " ".join(p for p in (rec.get("First_Name"), rec.get("Last_Name")) if p)
    if module == "Deals":
        if "Stage" in changes and "Probability" not in changes and rec.get("Stage"):
            rec["Probability"] = STAGE_PROBABILITY.get(rec["Stage"])
        amount, prob = rec.get("Amount"), rec.get("Probability")
        rec["Expected_Revenue"] = (
            None if amount is None or prob is None
            else float((Decimal(str(amount)) * prob / 100).quantize(Decimal("0.01")))
        )
    if subform:
        total = sum((Decimal(str(r["Total"])) for r in rec.get(subform) or []), Decimal(0))
        rec["Sub_Total"] = float(total)
        rec["Grand_Total"] = float(total + Decimal(str(rec.get("Adjustment") or 0)))
