"""What `crmbooks disable` removes from the CRM, and what `crmbooks enable` needs to bring it
back once.

Removed (Books is never touched):

* the transaction records crmbooks created in the CRM (Books records copied there: quotes,
  sales orders, invoices, purchase orders), deleted 100 per call, and with them their place
  in the deals' and accounts' related lists; each link is retired right after its record is
  gone, and the store remembers the CRM id, which the Books record still names;
* on transaction records a CRM user made, only what crmbooks wrote on them: the Books id,
  number and web address (the record stays, and so does its link);
* the Books quote shown on each deal with a deal trigger;
* the accounting figures on the linked CRM customers (set to empty).

Only records that hold something are written (read 100 per call, updated 100 per call), so a
rerun writes nothing that is already gone. The cursors of the Books transaction lists and of
the figures are rewound: the first runs after `enable` read Books again from the start and
create each removed record once (an upsert on the Books id) and write the figures again.

A crash between a CRM delete and the retirement of its link leaves the link: the rerun of
`disable` deletes again, finds the record already gone (read back by id) and only retires the
link. `enable` refuses while a record crmbooks created is still linked, which only an
unfinished `disable` leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crmbooks.metadata import crm_field_metadata
from crmbooks.runtime import Runtime
from crmbooks.store import Store
from crmbooks.sync import figures as fig
from crmbooks.sync.registry import DEALS, TRANSACTIONS, deal_triggers, document_types, shape

BATCH = 100  # CRM records per read by ids, per update and per delete call
FIGURES_CURSOR = "figures"


@dataclass
class Removal:
    """What disabling removes (the plan, from the store alone) or removed (the outcome)."""

    created: dict[str, int] = field(default_factory=dict)  # CRM module: records deleted
    shown: dict[str, int] = field(default_factory=dict)  # CRM module: user records cleared
    deals: int = 0  # deals whose Books quote was cleared
    customers: int = 0  # CRM customers whose figures were cleared
    failed: list[str] = field(default_factory=list)  # what could not be removed, and why

    def as_dict(self) -> dict:
        """JSON-ready: what the flow returns and `--json` would print."""
        return {"created": dict(self.created), "shown": dict(self.shown), "deals": self.deals,
                "customers": self.customers, "failed": list(self.failed)}

    def empty(self) -> bool:
        """Nothing to remove."""
        return not (sum(self.created.values()) or sum(self.shown.values()) or self.deals
                    or self.customers)

    def sentences(self, planned: bool) -> list[str]:
        """One line per kind of data, in words; ``planned``: the plan ("up to" for what is
        read before it is written) rather than what was done."""
        upto = "up to " if planned else ""
        lines = []
        if self.created:
            lines.append(", ".join(f"{n} {m}" for m, n in sorted(self.created.items()))
                         + " record(s) crmbooks created from Books, deleted (with their deal "
                         "relations)")
        if self.shown:
            lines.append("the Books id, number and web address on " + upto + ", ".join(
                f"{n} {m}" for m, n in sorted(self.shown.items()))
                + " record(s) made in the CRM (the records stay)")
        if self.deals:
            lines.append(f"the Books quote shown on {upto}{self.deals} deal(s)")
        if self.customers:
            lines.append(f"the accounting figures on {upto}{self.customers} CRM customer(s)")
        return lines


def plan(store: Store) -> Removal:
    """What disabling would remove, from the state store alone (no API call): the CRM records
    crmbooks created, the user records it showed Books data on, the deals with a trigger's
    quote, and the linked customers whose figures it writes."""
    out = Removal()
    for module, _crm_id, _books_id in store.created_in_crm(TRANSACTIONS):
        out.created[module] = out.created.get(module, 0) + 1
    for module, _crm_id in store.made_in_crm(TRANSACTIONS):
        out.shown[module] = out.shown.get(module, 0) + 1
    out.deals = len(_deal_ids(store))
    out.customers = sum(len(ids) for ids in _customers(store).values())
    return out


def unfinished(store: Store) -> int:
    """How many CRM records crmbooks created are still linked while the integration is
    disabled: what an interrupted `disable` left (0 once it finished)."""
    return len(store.created_in_crm(TRANSACTIONS))


def unfinished_message(left: int) -> str:
    """Why `enable` refuses after an interrupted `disable`, and what to do."""
    return (f"the last `crmbooks disable` did not finish: {left} CRM record(s) crmbooks created "
            "are still there; run `crmbooks disable --yes` again (it removes only what is "
            "left), then `crmbooks enable`")


def remove(runtime: Runtime) -> Removal:
    """Remove from the CRM everything crmbooks put there for transactions and figures (see the
    module's docstring); return what was removed. Safe to run again: it goes on where a crash
    or an error stopped it, and writes nothing that is already gone."""
    store, crm = runtime.store, runtime.crm
    done = Removal()
    # First, so that whatever is removed below is read again by the runs after `enable`,
    # also when this stops half-way.
    for resource in document_types():
        store.rewind_cursor(f"{TRANSACTIONS}:{resource}", "books")
    store.rewind_cursor(FIGURES_CURSOR, "books")

    by_module: dict[str, list[str]] = {}
    for module, crm_id, _books_id in store.created_in_crm(TRANSACTIONS):
        by_module.setdefault(module, []).append(crm_id)
    for module, ids in by_module.items():
        for part in _chunks(ids, BATCH):
            gone = _delete(crm, module, part, done.failed)
            store.retire_removed(TRANSACTIONS, gone)
            if gone:
                done.created[module] = done.created.get(module, 0) + len(gone)

    shown = shape().crm
    user_made: dict[str, list[str]] = {}
    for module, crm_id in store.made_in_crm(TRANSACTIONS):
        user_made.setdefault(module, []).append(crm_id)
    for module, ids in user_made.items():
        present = {f.get("api_name") for f in crm_field_metadata(runtime, module)}
        fields = [f for f in (shown.books_id, shown.books_number, shown.books_url)
                  if f in present]
        cleared = _clear(crm, module, ids, fields, done.failed)
        if cleared:
            done.shown[module] = cleared
        # What crmbooks last showed on them is forgotten, so the first run after `enable`
        # shows it again (also on records a stopped earlier `disable` cleared already).
        store.forget_shown(TRANSACTIONS, ids)

    deals = _deal_ids(store)
    if deals:
        triggers = deal_triggers()
        done.deals = _clear(crm, triggers.crm_module, deals, [triggers.quote_field],
                            done.failed)
    for module, ids in _customers(store).items():
        done.customers += _clear(crm, module, ids, list(fig.FIELDS), done.failed)
    return done


def _deal_ids(store: Store) -> list[str]:
    """The CRM deals linked to a Books transaction (those a trigger may show a quote on)."""
    deals = store.links(DEALS)
    return sorted({str(d) for d in deals.get("parent_crm_id", []) if d})


def _customers(store: Store) -> dict[str, list[str]]:
    """{CRM module: ids} of the linked customers whose figures crmbooks writes."""
    links = store.link_ids("customers")
    out: dict[str, list[str]] = {}
    for kind, module in fig.FIGURE_KINDS.items():
        ids = sorted(str(i) for i in links[links["kind"] == kind]["crm_id"]) \
            if not links.empty else []
        if ids:
            out[module] = ids
    return out


def _delete(crm, module: str, ids: list[str], failed: list[str]) -> list[str]:
    """Delete up to 100 CRM records in one call; return the ids that are gone (deleted now,
    or already: a refused delete is read back by id, and a record the CRM no longer has is as
    good as deleted)."""
    results = crm.delete(module, ids)
    gone = [i for i, r in zip(ids, results, strict=True) if r.ok]
    refused = {i: r for i, r in zip(ids, results, strict=True) if not r.ok}
    if refused:
        still = {str(r["id"]) for r in crm.records_by_ids(module, list(refused), ["id"])}
        for crm_id, result in refused.items():
            if crm_id in still:
                failed.append(f"{module} {crm_id}: {result.code} {result.message}".strip())
            else:
                gone.append(crm_id)
    return gone


def _clear(crm, module: str, ids: Iterable[str], fields: list[str],
           failed: list[str]) -> int:
    """Empty ``fields`` on the CRM records ``ids`` that hold a value in one of them (read 100
    per call, then updated 100 per call); return how many records were cleared."""
    if not fields:
        return 0
    rows = []
    for part in _chunks(sorted(set(ids)), BATCH):
        for record in crm.records_by_ids(module, part, fields):
            held = [f for f in fields if record.get(f) not in (None, "")]
            if held:
                rows.append({"id": str(record["id"]), **dict.fromkeys(held)})
    cleared = 0
    for part in _chunks(rows, BATCH):
        for row, result in zip(part, crm.update(module, part), strict=True):
            if result.ok:
                cleared += 1
            else:
                failed.append(f"{module} {row['id']}: {result.code} {result.message}".strip())
    return cleared


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
