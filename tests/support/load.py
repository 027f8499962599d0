"""Helpers of the load tests (concurrency, faults, hostile input): run a module, and
what one fault-free run of it makes from the seed (the reference), compared with the crash
tests' `world` (both sides and the links, without ids)."""

from __future__ import annotations

import json
from pathlib import Path

from flows.customers import sync_customers
from flows.items import sync_items
from flows.vendors import sync_vendors
from support.connect import connect_to
from support.crash import assert_converged, reset, world
from support.customers import clear_stats

FLOWS = {"customers": sync_customers, "vendors": sync_vendors, "items": sync_items}
SETTINGS = {
    # two-way, accounts and contacts (persons inline, individuals), plus unassociated ones
    "customers": {"crm_module": "accounts+contacts", "include_unassociated_contacts": True},
    "vendors": {},
    "items": {},
}
_REFERENCE: dict[str, dict] = {}

__all__ = ["FLOWS", "SETTINGS", "assert_converged", "prepare", "reference", "world"]


def prepare(emulator, monkeypatch, home: Path, database_url: str, modules, settings=None):
    """A freshly seeded emulator (no faults) and crmbooks connected to it with each module's
    settings saved; the Store."""
    reset(emulator)
    store = connect_to(emulator, monkeypatch, home, database_url)
    for module in modules:
        store.save_settings(module, (settings or {}).get(module, SETTINGS[module]))
    clear_stats(emulator)
    return store


def reference(emulator, monkeypatch, tmp_path: Path, module: str, settings=None) -> dict:
    """What one fault-free run of `module` makes from the seed (computed once per session and
    settings; it does not depend on the state database)."""
    settings = settings or SETTINGS[module]
    key = f"{module} {json.dumps(settings, sort_keys=True)}"
    if key not in _REFERENCE:
        home = tmp_path / f"reference-{module}"
        store = prepare(emulator, monkeypatch, home, f"sqlite:///{home}.db", [module],
                        {module: settings})
        state = FLOWS[module](return_state=True)
        assert state.is_completed(), state.message
        got, problems = world(emulator.emu, store, module)
        assert not problems, problems
        _REFERENCE[key] = got
    return _REFERENCE[key]
