"""The one small, JSON-able description of a run that every step of every module receives.

Steps get a `RunContext` instead of clients or frames of settings: it is cheap to hash (Prefect
caches persisted step results by their inputs, which is what lets a retry of the flow run
re-run only what failed), shows nothing secret, and carries what the start of the run read
once (settings, cursors, the module's facts) so that no step has to look it up again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from crmbooks.runtime import Runtime, runtime_of_run
from crmbooks.settings import ModuleSettings, parse_module_settings
from crmbooks.sync.modules import ModuleSpec, module_spec


class RunContext(BaseModel):
    """One run of one module for one Books organization."""

    run_id: str
    module: str
    org_id: str
    connection: str = "default"  # the stored connection (fleet: one per organization)
    dry_run: bool
    settings: dict
    settings_version: int | None = None
    # Where each stream's incremental read starts: "crm" and "books" for a record module,
    # "crm:<CRM module>" and "books:<Books resource>" for transactions, "crm" for deals.
    cursors: dict[str, datetime | None] = {}
    views: dict[str, str] = {}  # CRM module -> custom view id (cvid)
    base_currency: str | None = None
    calls_before: dict[str, int] = {}
    # A targeted run (an event, a retry, fetch one, import) syncs only these ids, by stream
    # ({"crm": [...], "books": [...]}, or {"crm:Quotes": [...]} for transactions). It reads
    # them by id and never moves the cursors.
    targets: dict[str, list[str]] = {}
    # An extra Books organization syncs CRM → Books only; the Books ids the CRM stores
    # (Books_Id__c) belong to the primary organization, so they never pair records here.
    one_way: bool = False
    note: str | None = None  # said in the run's log and kept as its history message
    facts: dict[str, Any] = {}  # what the module's start read for its steps (fields, stages …)

    @property
    def targeted(self) -> bool:
        """True for a run limited to given record ids."""
        return bool(self.targets)

    @property
    def crm_cursor(self) -> datetime | None:
        """A record module's CRM cursor."""
        return self.cursors.get("crm")

    @property
    def books_cursor(self) -> datetime | None:
        """A record module's Books cursor."""
        return self.cursors.get("books")

    def runtime(self) -> Runtime:
        """The store and clients of this run's organization (as the run started)."""
        return runtime_of_run(self.run_id, self.org_id or None, self.connection)

    def spec(self) -> ModuleSpec:
        """A record module's declarative description."""
        return module_spec(self.module)

    def module_settings(self) -> ModuleSettings:
        """The typed settings this run applies (the version active when it started)."""
        return parse_module_settings(self.module, self.settings)
