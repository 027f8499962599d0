"""Fetch: what changed on each side since the cursors, in the largest pages the APIs allow.

CRM: one paged list per CRM module with If-Modified-Since (a quiet module answers 304: one
request). Books: the connector's cheapest change scan (a sorted scan that stops at the cursor
for contacts, a full scan for items, which have no modified-time filter or sort). Records whose
modified stamp equals the one we stored right after our own write are echoes, not changes, and
are dropped here: that is what keeps a run after a big push from re-reading everything.
"""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from crmbooks.metadata import crm_field_metadata
from crmbooks.sync.mapping import crm_fields, effective_mapping
from crmbooks.sync.values import same
from tasks.context import RunContext
from tasks.fetch_targets import fetch_books_targets, fetch_crm_targets
from tasks.retry import retry_transient

# Contacts of which Books contact_type belong to a module (the rest is another module's).
CONTACT_TYPE = {"customers": "customer", "vendors": "vendor"}


@task(name="fetch-crm", persist_result=True, retries=2, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_crm(run: RunContext) -> dict[str, pd.DataFrame]:
    """CRM records changed since the CRM cursor, one frame per CRM module."""
    if run.targeted:
        return fetch_crm_targets(run)
    runtime, spec, settings = run.runtime(), run.spec(), run.module_settings()
    mapping = effective_mapping(spec, settings)
    wanted: dict[str, list[str]] = {}
    for kind in spec.active_kinds(settings):
        fields = crm_fields(mapping, kind, spec)
        if kind.currency_field:
            # CRM has a Currency field only with multi-currency on (ref §3.12): ask for it
            # only when the module has one; without it every record is in the base currency.
            known = {f.get("api_name") for f in crm_field_metadata(runtime, kind.crm_module)}
            fields = [f for f in fields if f != kind.currency_field or f in known]
        wanted.setdefault(kind.crm_module, []).extend(fields)
    echoes = _echo_stamps(run, "crm")
    frames = {}
    for module, fields in wanted.items():
        rows = []
        for page in runtime.crm.iter_records(
            module, list(dict.fromkeys(fields)), cvid=run.views.get(module),
            modified_since=run.crm_cursor, sort_by="Modified_Time",
        ):
            # The synced values of this page's echo candidates only: reading every link's
            # JSON values made a run's memory grow with the links, not the fetch (issue 8).
            candidates = [r.get("id") for r in page
                          if _is_echo(echoes, r.get("id"), r.get("Modified_Time"))]
            synced = _synced_values(run, "crm", candidates) if candidates else {}
            rows += [r for r in page if not _unchanged(synced.get(str(r.get("id"))), r)]
        frames[module] = pd.DataFrame(rows, dtype=object)
    get_run_logger().info("CRM: %s", {m: len(f) for m, f in frames.items()})
    return frames


@task(name="fetch-books", persist_result=True, retries=2, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_books(run: RunContext) -> dict[str, pd.DataFrame]:
    """Books records changed since the Books cursor, one frame per Books resource.

    Contacts come as list summaries; the ones that need their full record (addresses, contact
    persons, custom fields) are read one by one, the only way Books offers.
    """
    if run.targeted:
        return fetch_books_targets(run)
    runtime, spec, settings = run.runtime(), run.spec(), run.module_settings()
    resources = sorted({k.books_resource for k in spec.active_kinds(settings)}
                       - {"contact_persons"})
    echoes = _echo_stamps(run, "books")
    id_of = {"contacts": "contact_id", "items": "item_id"}
    frames = {}
    for resource in resources:
        rows = []
        for page in runtime.books.iter_modified(resource, run.books_cursor,
                                                books_filter(run, resource)):
            for row in page:
                if resource == "contacts" and row.get("contact_type") != CONTACT_TYPE.get(
                        run.module):
                    continue
                if _is_echo(echoes, row.get(id_of[resource]), row.get("last_modified_time")):
                    continue
                rows.append(row)
        if resource == "contacts" and run.module_settings().scope == "both":
            rows = [_detail(runtime, resource, row, id_of[resource]) for row in rows]
        frames[resource] = pd.DataFrame(rows, dtype=object)
    get_run_logger().info("Books: %s", {r: len(f) for r, f in frames.items()})
    return frames


def books_filter(run: RunContext, resource: str) -> dict[str, str]:
    """The list filter that keeps another module's contacts out of a scan (customers and
    vendors are both Books contacts): without it each module pages through the other's."""
    if resource == "contacts" and run.module in CONTACT_TYPE:
        return {"contact_type": CONTACT_TYPE[run.module]}
    return {}


def _detail(runtime, resource: str, summary: dict, id_field: str) -> dict:
    """The full record behind a list summary (the summary when it vanished meanwhile)."""
    return runtime.books.get(resource, str(summary[id_field])) or summary


def _is_echo(echoes: dict[str, str], record_id, stamp) -> bool:
    """True when a record's modified stamp is the one our own last write left on it.

    Records without a stamp (Books items carry none, ref §4.4) are never echoes.
    """
    return stamp is not None and echoes.get(str(record_id)) == stamp


def _unchanged(synced: dict | None, row: dict) -> bool:
    """True when a fetched row still has the values our last sync left on it.

    Stamps have whole seconds: an edit in the same second as our write (a CRM workflow rule
    reacting to it, say) carries our write's stamp. Only an unchanged row is an echo.
    """
    return synced is not None and all(same(row.get(f), v) for f, v in synced.items() if f in row)


def _synced_values(run: RunContext, side: str, ids: list) -> dict[str, dict]:
    """{record id: the link's last synced values} for the given ids of one side."""
    links = run.runtime().store.links_of(run.module, **{f"{side}_ids": ids})
    column, id_column = f"{side}_values", f"{side}_id"
    if links.empty:
        return {}
    return {str(i): v or {} for i, v in zip(links[id_column], links[column], strict=True)}


def _echo_stamps(run: RunContext, side: str) -> dict[str, str]:
    """{record id: modified stamp right after our last write} for one side."""
    return run.runtime().store.link_stamps(run.module, side)
