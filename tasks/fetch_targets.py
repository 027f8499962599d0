"""Fetch for a targeted run (retry, fetch one, import): given records, read by id.

A targeted run syncs a handful of records chosen by the operator, so it reads each by id
(one request per record and module tried) instead of scanning since the cursor. A record that
read says no longer exists has nothing to sync: its failure, if any, is resolved with a note.
"""

from __future__ import annotations

import pandas as pd

from crmbooks.metadata import crm_field_metadata
from crmbooks.operations import resolve_deleted
from crmbooks.sync.mapping import books_key, crm_fields, crm_key, effective_mapping
from tasks.context import RunContext

BOOKS_RESOURCES = {"customers": "contacts", "vendors": "contacts", "items": "items"}


def fetch_crm_targets(run: RunContext) -> dict[str, pd.DataFrame]:
    """The CRM records named in `run.targets["crm"]`, one frame per CRM module."""
    runtime, spec, settings = run.runtime(), run.spec(), run.module_settings()
    mapping = effective_mapping(spec, settings)
    wanted: dict[str, list[str]] = {}
    for kind in spec.active_kinds(settings):
        known = {f.get("api_name") for f in crm_field_metadata(runtime, kind.crm_module)}
        fields = [f for f in crm_fields(mapping, kind, spec) if f in known]
        wanted.setdefault(kind.crm_module, []).extend(fields)
    frames = {module: [] for module in wanted}
    gone = []
    for record_id in run.targets.get("crm", []):
        for module, fields in wanted.items():  # an id belongs to one module: try each
            record = runtime.crm.get_record(module, record_id, list(dict.fromkeys(fields)))
            if record is not None:
                frames[module].append(record)
                break
        else:  # in no module: deleted (a transient error raised instead)
            gone += [crm_key(module, record_id) for module in wanted]
    resolve_deleted(runtime.store, run.module, gone, "the CRM", run.dry_run)
    return {module: pd.DataFrame(rows, dtype=object) for module, rows in frames.items()}


def fetch_books_targets(run: RunContext) -> dict[str, pd.DataFrame]:
    """The Books records named in `run.targets["books"]` (full detail)."""
    resource, runtime = BOOKS_RESOURCES[run.module], run.runtime()
    ids = run.targets.get("books", [])
    found = [runtime.books.get(resource, record_id) for record_id in ids]
    gone = [books_key(resource, i) for i, record in zip(ids, found, strict=True) if record is None]
    resolve_deleted(runtime.store, run.module, gone, "Books", run.dry_run)
    rows = [record for record in found if record is not None]
    return {resource: pd.DataFrame(rows, dtype=object)}
