"""The write journal at the end of a run: settle this run's journaled writes from what the
providers answered, and confirm the writes a killed earlier run of the module left unsettled.

A killed run's writes stay ``sent`` in the journal (history shows them as unconfirmed). The
next run of the module and Books organization, which reads those records again (the killed
run moved no cursor), confirms each one whose values its link now holds (the write landed,
or this run wrote the same values) and marks superseded those whose link holds other values,
saying which run did so; a write whose record it finds unlinked stays unconfirmed, with that
said, for a later run to confirm.
"""

from __future__ import annotations

from crmbooks.sync.values import same
from tasks.context import RunContext


def settle_journal(run: RunContext, store, outcomes: list[dict]) -> None:
    """Settle this run's writes; confirm or supersede those earlier runs left unsettled."""
    store.settle_writes(run.run_id, outcomes)
    earlier = store.unsettled_writes(run.module, other_than=run.run_id)
    if not earlier:
        return
    runs = store.runs_by_id(w["run_id"] for w in earlier)
    states = {}
    for write in earlier:
        owner = runs.get(write["run_id"])
        # The run's store is scoped to its Books organization, and so were the killed run's.
        if owner is None or (owner.org_id or "") != (store.org_id or ""):
            continue  # another organization's run: its own next run settles it
        link = store.find_link(run.module, crm_id=write["crm_id"]) if write["crm_id"] else None
        if link is None and write["books_id"]:
            link = store.find_link(run.module, books_id=write["books_id"])
        states[write["id"]] = _verdict(write, link, run.run_id)
    store.mark_writes(states)


def _verdict(write: dict, link, run_id: str) -> tuple[str, str]:
    """(state, note) of a killed run's write, from the link as this run left it."""
    short = run_id[:8]
    if link is None:  # nothing says whether it landed: it stays unconfirmed, said why
        return "sent", f"run {short} found the record not linked"
    held = (link.crm_values if write["side"] == "crm" else link.books_values) or {}
    if all(same(held.get(c["field"]), c.get("after")) for c in write["changes"] or []):
        return "confirmed", f"confirmed by run {short}"
    return "superseded", f"run {short} found other values in place"
