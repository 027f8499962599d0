"""The small, JSON-able description of one run that every task of the pipeline receives.

Tasks get a `RunContext` instead of clients or frames of settings: it is cheap to hash (Prefect
caches persisted task results by their inputs, which is what lets Retry re-run only what failed),
shows nothing secret, and lets each task rebuild what it needs from the store.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from crmbooks.runtime import Runtime, get_runtime
from crmbooks.settings import ModuleSettings, parse_module_settings
from crmbooks.sync.modules import ModuleSpec, module_spec
from mappings.schema import Mapping, default_mapping


class RunContext(BaseModel):
    """One run of one module for one Books organization."""

    run_id: str
    module: str
    org_id: str
    connection: str = "default"  # the stored connection (fleet: one per organization)
    dry_run: bool
    settings: dict
    settings_version: int | None = None
    crm_cursor: datetime | None = None
    books_cursor: datetime | None = None
    views: dict[str, str] = {}  # CRM module -> custom view id (cvid)
    base_currency: str | None = None
    calls_before: dict[str, int] = {}
    # A targeted run (retry, fetch one, import) syncs only these ids: {"crm": [...],
    # "books": [...]}. It reads them by id and never moves the cursors.
    targets: dict[str, list[str]] = {}
    # An extra Books organization (F4) syncs CRM → Books only; the Books ids the CRM stores
    # (Books_Id__c) belong to the primary organization, so they never pair records here.
    one_way: bool = False
    note: str | None = None  # said in the run's log and kept as its history message

    @property
    def targeted(self) -> bool:
        """True for a run limited to given record ids."""
        return bool(self.targets)

    def runtime(self) -> Runtime:
        """The store and clients of this run's organization."""
        return get_runtime(self.org_id or None, self.connection)

    def spec(self) -> ModuleSpec:
        """The module's declarative description."""
        return module_spec(self.module)

    def module_settings(self) -> ModuleSettings:
        """The typed settings this run applies (the version active when it started)."""
        return parse_module_settings(self.module, self.settings)

    def mapping(self) -> Mapping:
        """The module's field mapping: the default file plus the settings' extra field maps."""
        return mapping_for(self.module, self.module_settings())


def mapping_for(module: str, settings: ModuleSettings) -> Mapping:
    """The default mapping of `module` extended with the user's `--map` pairs (F9)."""
    mapping = default_mapping(module)
    extra = getattr(settings, "field_maps", None) or getattr(settings, "maps", None) or []
    if not extra:
        return mapping
    return mapping.with_extra(extra) if hasattr(mapping, "with_extra") else mapping
