"""Operator actions on single records: retry failed ones, fetch one, look up and import CRM
records never imported. Each ends in a *targeted* pipeline run.

These functions only decide *which* records; the pipeline (flows/pipeline.py) syncs them with
every guarantee of a normal run (plan, exactly-once, history, failures).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from crmbooks.connectors.zoho_crm import any_of, criterion
from crmbooks.runtime import Runtime
from crmbooks.store import Store
from crmbooks.sync.registry import (
    DEALS,
    MODULE_ORDER,
    TRANSACTIONS,
    document_of_crm_module,
    document_type,
)

# operator word -> (crmbooks module, CRM module, fields to show and search)
LOOKUPS = {
    "accounts": ("customers", "Accounts", ("Account_Name",)),
    "contacts": ("customers", "Contacts", ("First_Name", "Last_Name")),
    "vendors": ("vendors", "Vendors", ("Vendor_Name",)),
}
FETCH_KINDS = {"customer": ("accounts", "contacts"), "vendor": ("vendors",)}


class NothingToDo(LookupError):
    """The action found no record to sync; the message says why."""


#: modules whose failures `retry` re-runs, in dependency order: the record modules, then
#: transactions (their lines need the items linked), then the deal triggers.
RETRY_MODULES = MODULE_ORDER


def targets_of(record_keys) -> dict[str, list[str]]:
    """{"crm": ids, "books": ids} from record keys like crm/Accounts/123, books/contacts/456."""
    targets: dict[str, list[str]] = defaultdict(list)
    for key in record_keys:
        side, _, rest = str(key).partition("/")
        record_id = rest.rsplit("/", 1)[-1]
        if side in ("crm", "books") and record_id:
            targets[side].append(record_id)
    return dict(targets)


def transaction_targets(record_keys) -> dict[str, list[str]]:
    """Targets of a transactions run from transaction keys: `Quotes:<crm id>` (a CRM module:
    CRM → Books) becomes {"crm:Quotes": ids}, `estimates:<books id>` (a Books resource:
    Books → CRM) {"books:estimates": ids}."""
    targets: dict[str, list[str]] = defaultdict(list)
    for key in record_keys:
        source, _, record_id = str(key).partition(":")
        if not record_id:
            continue
        try:
            document_of_crm_module(source)
            targets[f"crm:{source}"].append(record_id)
        except KeyError:
            try:
                document_type(source)
            except KeyError:
                continue
            targets[f"books:{source}"].append(record_id)
    return dict(targets)


def deal_targets(record_keys) -> dict[str, list[str]]:
    """Targets of a deal-triggers run ({"crm": deal ids}) from deal keys `deal:<id>`."""
    ids = [k.partition(":")[2] for k in map(str, record_keys) if k.startswith("deal:")]
    return {"crm": [i for i in ids if i]} if any(ids) else {}


TARGETS_OF = {TRANSACTIONS: transaction_targets, DEALS: deal_targets}


_DELETED_TAIL = " since it failed: nothing to sync"


def deleted_note(where: str) -> str:
    """The note on a failure resolved because its record was deleted in `where` (the CRM or
    Books) after it failed."""
    return f"deleted in {where}{_DELETED_TAIL}"


def deleted_resolutions(store: Store, since) -> list[dict]:
    """Failures resolved since `since` because their record was gone at its source:
    [{module, record, side, message, note}] (what `crmbooks retry` reports)."""
    frame = store.failures(unresolved_only=False)
    if frame.empty:
        return []
    since = pd.Timestamp(since)
    since = since.tz_convert("UTC") if since.tzinfo else since.tz_localize("UTC")
    updated = pd.to_datetime(frame["updated_at"], utc=True)  # SQLite gives naive UTC
    gone = frame[frame["resolved"].astype(bool) & (updated >= since)
                 & frame["hint"].fillna("").str.endswith(_DELETED_TAIL)]
    return [{"module": r["module"], "record": r["record_key"], "side": r["side"],
             "message": r["message"], "note": r["hint"]} for r in gone.to_dict("records")]


def failed_targets(store: Store, *, run_id: str | None = None, module: str | None = None,
                   record_keys: list[str] | None = None,
                   org_id: str | None = None) -> dict[str, dict[str, dict[str, list[str]]]]:
    """{Books organization: {module: targets}} of the unresolved failures asked for (a run, by
    its id or its Prefect flow-run id; a module; some keys), each under the organization it
    belongs to; `org_id` keeps one organization's. `store` is any store on the database: its
    own scope is not used.

    Targets are {"crm": ids, "books": ids} for the record modules and the deal triggers,
    {"crm:<CRM module>" or "books:<Books resource>": ids} for transactions. Organizations
    come in the order the connection lists them (the primary first)."""
    if module and module not in RETRY_MODULES:
        raise ValueError(f"--module must be one of {', '.join(RETRY_MODULES)}, not {module!r}")
    scoped = Store(store.engine, org_id=org_id or "")
    failures = scoped.failures(run_id=run_id, module=module)
    if run_id and failures.empty and store.run(run_id) is None:
        # The id the Prefect UI shows: the failures of every run that flow run made.
        runs = [r.id for r in store.runs_of_flow_run(run_id)]
        failures = scoped.failures(module=module)
        failures = failures[failures["run_id"].isin(runs)]
    if record_keys:
        failures = failures[failures["record_key"].isin(record_keys)]
    if failures.empty:
        where = (f"run {run_id}" if run_id else f"module {module}" if module else
                 "any module")
        raise NothingToDo(f"no unresolved failures for {where}"
                          + (f" with key(s) {', '.join(record_keys)}" if record_keys else "")
                          + (f" in Books organization {org_id}" if org_id else ""))
    order = {org: i for i, org in enumerate(connected_orgs(store))}
    chosen: dict[str, dict[str, dict[str, list[str]]]] = {}
    for org in sorted(dict.fromkeys(failures["org_id"]), key=lambda o: order.get(o, len(order))):
        own = failures[failures["org_id"] == org]
        chosen[str(org)] = {m: TARGETS_OF.get(m, targets_of)(dict.fromkeys(group["record_key"]))
                            for m, group in own.groupby("module")}
    return chosen


def connected_orgs(store: Store) -> list[str]:
    """The connected Books organizations, the primary first (none before `connect`)."""
    row = store.connection()
    if row is None or not row.books_org_id:
        return []
    return [str(row.books_org_id), *(str(o) for o in row.extra_books_org_ids or [])]


@dataclass
class Found:
    """A CRM record a lookup found, and whether it is already linked (imported)."""

    module: str  # crmbooks module
    crm_module: str
    crm_id: str
    name: str
    linked: bool


def look_up(runtime: Runtime, name: str, where: str) -> list[Found]:
    """CRM records of `where` (accounts | contacts | vendors) whose name matches `name`."""
    if where not in LOOKUPS:
        raise ValueError(f"--module must be one of {', '.join(LOOKUPS)}, not {where!r}")
    module, crm_module, fields = LOOKUPS[where]
    words = [w for w in name.split() if w] or [name]
    if len(fields) == 1:
        criteria = criterion(fields[0], "equals", name)
    else:  # contacts: by first or last name, as when only contacts are synced
        criteria = any_of(*(criterion(f, "equals", w) for f in fields for w in words))
    linked = set(runtime.store.links(module)["crm_id"])
    found = []
    for page in runtime.crm.search(crm_module, criteria=criteria, fields=["id", *fields]):
        for record in page:
            label = " ".join(str(record.get(f) or "") for f in fields).strip()
            found.append(Found(module, crm_module, str(record["id"]), label,
                               str(record["id"]) in linked))
    return found


def fetch_targets(runtime: Runtime, kind: str, *, crm_id: str | None = None,
                  name: str | None = None) -> tuple[str, dict[str, list[str]]]:
    """(module, targets) to refresh one customer or vendor from the CRM."""
    if kind not in FETCH_KINDS:
        raise ValueError(f"fetch takes customer or vendor, not {kind!r}")
    module = LOOKUPS[FETCH_KINDS[kind][0]][0]
    if crm_id:
        return module, {"crm": [str(crm_id)]}
    if not name:
        raise ValueError("give --crm-id or --name")
    found = [f for where in FETCH_KINDS[kind] for f in look_up(runtime, name, where)]
    if not found:
        raise NothingToDo(f"no CRM {kind} is named {name!r}")
    if len(found) > 1:
        choices = "; ".join(f"{f.name} ({f.crm_module} {f.crm_id})" for f in found[:10])
        raise NothingToDo(f"{len(found)} CRM records match {name!r}: {choices}; "
                          "run again with --crm-id")
    return module, {"crm": [found[0].crm_id]}
