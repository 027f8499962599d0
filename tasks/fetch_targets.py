"""Fetch for a targeted run (retry, fetch one, import): given records, read by id.

A targeted run syncs a handful of records chosen by the operator, so it reads each by id
(one request per record and module tried) instead of scanning since the cursor.
"""

from __future__ import annotations

import pandas as pd

from crmbooks.metadata import crm_field_metadata
from crmbooks.sync.mapping import crm_fields, effective_mapping
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
    for record_id in run.targets.get("crm", []):
        for module, fields in wanted.items():  # an id belongs to one module: try each
            record = runtime.crm.get_record(module, record_id, list(dict.fromkeys(fields)))
            if record is not None:
                frames[module].append(record)
                break
    return {module: pd.DataFrame(rows, dtype=object) for module, rows in frames.items()}


def fetch_books_targets(run: RunContext) -> dict[str, pd.DataFrame]:
    """The Books records named in `run.targets["books"]` (full detail)."""
    resource = BOOKS_RESOURCES[run.module]
    rows = [record for record_id in run.targets.get("books", [])
            if (record := run.runtime().books.get(resource, record_id)) is not None]
    return {resource: pd.DataFrame(rows, dtype=object)}
