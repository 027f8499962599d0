"""The modules and fields of one emulated CRM org.

An org starts with Zoho's modules (`fields.MODULES`, read live from the module tables, so a test
may add a field to a built-in module while the emulator runs) and gains a module for every
document type declared at run time. Each emulator has its own catalogue: a module declared on
one never shows up on another.
"""

from __future__ import annotations

from collections import ChainMap

from emulators.common.documents import BUILT_IN, DocumentType
from emulators.crm.fields import (
    FIELD_MAP,
    FIELDS,
    MODULES,
    CrmModule,
    Field,
    document_fields,
    document_module,
)


class Catalogue:
    """Modules, their fields and the document types behind the document modules."""

    def __init__(self):
        self.modules: dict[str, CrmModule] = dict(MODULES)
        self._fields: dict[str, list[Field]] = {}
        self._field_map: dict[str, dict[str, Field]] = {}
        # Declared modules first, then the built-in tables (looked up on every access).
        self.fields: ChainMap[str, list[Field]] = ChainMap(self._fields, FIELDS)
        self.field_map: ChainMap[str, dict[str, Field]] = ChainMap(self._field_map, FIELD_MAP)
        self.documents: dict[str, DocumentType] = {doc.crm_module: doc for doc in BUILT_IN}
        # A module's own field tables before its first added custom field (None: it read the
        # built-in tables), to put back when the org is seeded again.
        self._before_added: dict[str, tuple[list[Field] | None, dict[str, Field] | None]] = {}

    def add_field(self, module: str, new: Field) -> None:
        """A custom field an administrator adds to a module (Setup › Modules and Fields),
        last in its field list so no other field's id moves; gone when the org is seeded
        again. A taken API name is a ValueError."""
        if new.api_name in self.field_map[module]:
            raise ValueError(f"{module} already have a field {new.api_name}")
        self._before_added.setdefault(module, (self._fields.get(module),
                                               self._field_map.get(module)))
        fields = [*self.fields[module], new]
        self._fields[module] = fields
        self._field_map[module] = {f.api_name: f for f in fields}

    def drop_added_fields(self) -> None:
        """Forget the custom fields `add_field` added (the org is seeded afresh)."""
        for module, (fields, field_map) in self._before_added.items():
            if fields is None:
                self._fields.pop(module, None)
                self._field_map.pop(module, None)
            else:
                self._fields[module], self._field_map[module] = fields, field_map or {}
        self._before_added.clear()

    def add_document(self, doc: DocumentType) -> str:
        """Add the module of a document type declared at run time; returns its API name.

        Declaring the same type again changes nothing; a different declaration under a name
        that is taken is a ValueError.
        """
        known = self.documents.get(doc.crm_module)
        if known is not None:
            if known != doc:
                raise ValueError(f"the CRM module {doc.crm_module} is already declared "
                                 "differently")
            return doc.crm_module
        if self.resolve(doc.crm_module) is not None:
            raise ValueError(f"the CRM already has a module {doc.crm_module}")
        taken = {m.number for m in self.modules.values()}
        number = doc.crm_number or max(taken) + 1
        if number in taken:
            raise ValueError(f"the CRM module number {number} is taken")
        fields = document_fields(doc)
        self.modules[doc.crm_module] = document_module(doc, number)
        self._fields[doc.crm_module] = fields
        self._field_map[doc.crm_module] = {f.api_name: f for f in fields}
        self.documents[doc.crm_module] = doc
        return doc.crm_module

    def resolve(self, name: str) -> str | None:
        """The canonical API name of a module (matched case-insensitively), or None."""
        for module in self.modules:
            if module.lower() == name.lower():
                return module
        return None

    def scope(self, module: str, op: str) -> str:
        """The OAuth scope of a module operation, e.g. ZohoCRM.modules.salesorders.READ."""
        return f"ZohoCRM.modules.{self.modules[module].scope}.{op}"

    def subform(self, module: str) -> str | None:
        """The line-item subform of a document module (None for other modules)."""
        return self.modules[module].subform

    def name_field(self, module: str) -> str:
        """The field holding a record's display name."""
        return self.modules[module].name_field

    def module_id(self, module: str) -> str:
        """Stable numeric id of a module (in /settings/modules and notification resource ids)."""
        return f"57257670000000{self.modules[module].number:05d}"

    def field_id(self, module: str, api_name: str) -> str:
        """Stable numeric id of a field, derived from its position in the module's field list."""
        names = list(self.field_map[module])
        return f"5725767{self.modules[module].number:03d}{names.index(api_name) + 1:09d}"
