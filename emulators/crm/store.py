"""In-memory state of the CRM emulator: records per module with a Modified_Time index, unique
field indexes, the recycle bin, users and custom views, plus record rendering.

Stored values use API names. Lookups and owners are stored as the target id only and rendered as
``{"id","name"}`` (owners also ``email``) on read, so a renamed account shows its new name in
every lookup, as in Zoho. Datetimes are stored as UTC ISO strings with a colon offset, which sort
lexicographically.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from emulators.crm.catalogue import Catalogue
from emulators.crm.fields import Field

ID_BASE = 5725767000000100000


def iso(dt: datetime) -> str:
    """Zoho's datetime format: second resolution, colon offset, here always UTC."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class ModuleStore:
    """Records of one module, in id (= creation) order, with a Modified_Time index."""

    def __init__(self, module: str, fields: Iterable[Field]):
        self.module = module
        self.records: dict[str, dict] = {}
        self.by_modified: list[tuple[str, str]] = []  # (Modified_Time, id), sorted
        self.unique: dict[str, dict[str, str]] = {f.api_name: {} for f in fields if f.unique}
        self.written: dict[str, float] = {}  # id -> monotonic time of the last write
        self.deleted: list[dict] = []

    def add(self, rec: dict) -> None:
        """Insert a complete record (it already has id and audit fields)."""
        self.records[rec["id"]] = rec
        bisect.insort(self.by_modified, (rec["Modified_Time"], rec["id"]))
        self._index(rec, None)
        self.written[rec["id"]] = time.monotonic()

    def touch(self, rec: dict, old_modified: str, old_values: dict) -> None:
        """Re-index a record after an in-place update."""
        key = (old_modified, rec["id"])
        pos = bisect.bisect_left(self.by_modified, key)
        if pos < len(self.by_modified) and self.by_modified[pos] == key:
            del self.by_modified[pos]
        bisect.insort(self.by_modified, (rec["Modified_Time"], rec["id"]))
        self._index(rec, old_values)
        self.written[rec["id"]] = time.monotonic()

    def remove(self, rec_id: str) -> dict:
        """Delete a record from every index and return it."""
        rec = self.records.pop(rec_id)
        key = (rec["Modified_Time"], rec_id)
        pos = bisect.bisect_left(self.by_modified, key)
        if pos < len(self.by_modified) and self.by_modified[pos] == key:
            del self.by_modified[pos]
        for name, index in self.unique.items():
            value = rec.get(name)
            if value is not None and index.get(value.lower()) == rec_id:
                del index[value.lower()]
        self.written.pop(rec_id, None)
        return rec

    def _index(self, rec: dict, old: dict | None) -> None:
        for name, index in self.unique.items():
            previous = (old or {}).get(name)
            if previous is not None and index.get(previous.lower()) == rec["id"]:
                del index[previous.lower()]
            if rec.get(name) is not None:
                index[rec[name].lower()] = rec["id"]

    def modified_since(self, since: str) -> list[str]:
        """Ids with Modified_Time >= since, in Modified_Time order: the CRM's modified-since
        reads include records modified exactly at `since`."""
        pos = bisect.bisect_left(self.by_modified, (since, ""))
        return [rec_id for _, rec_id in self.by_modified[pos:]]


class Directory:
    """Users of the org (owner lookups) and record display names for lookups."""

    def __init__(self):
        self.users: dict[str, dict] = {}
        self.current_user_id = ""

    def owner_ref(self, user_id: str | None) -> dict | None:
        """An owner / Created_By value: {"name","id","email"}."""
        user = self.users.get(user_id or "")
        if user is None:
            return None
        return {"name": user["full_name"], "id": user["id"], "email": user["email"]}


class Renderer:
    """Turns stored records into API JSON."""

    def __init__(self, stores: dict[str, ModuleStore], directory: Directory,
                 catalogue: Catalogue):
        self.stores = stores
        self.directory = directory
        self.catalogue = catalogue

    def ref(self, module: str, rec_id: str | None) -> dict | None:
        """A lookup value {"name","id"} (name None when the target is gone)."""
        if rec_id is None:
            return None
        target = self.stores[module].records.get(rec_id)
        name = target.get(self.catalogue.name_field(module)) if target else None
        return {"name": name, "id": rec_id}

    def value(self, f: Field, raw):
        """Render one stored value."""
        if raw is None:
            return None
        if f.data_type == "lookup":
            return self.ref(f.lookup_module, raw)
        if f.data_type == "ownerlookup":
            return self.directory.owner_ref(raw)
        if f.data_type == "subform":
            return [self.row(f, row) for row in raw]
        return raw

    def row(self, f: Field, row: dict) -> dict:
        """One subform (line item) row."""
        out = {"id": row["id"]}
        for sub in f.subform_fields:
            out[sub.api_name] = self.value(sub, row.get(sub.api_name))
        return out

    def record(self, module: str, rec: dict, fields: list[str] | None) -> dict:
        """A record with the requested fields (all when None); `id` is always present."""
        fmap = self.catalogue.field_map[module]
        names = fields if fields is not None else list(fmap)
        out = {"id": rec["id"]}
        for name in names:
            if name == "id":
                continue
            f = fmap.get(name)
            if f is not None:
                out[name] = self.value(f, rec.get(name))
        return out
