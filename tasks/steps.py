"""The steps of the one pipeline, as Prefect tasks under the one policy (tasks/policy.py).

Each step asks the run's module family (tasks/families.py) what it means for that module and
does only that: a fetch only reads, a plan only decides, a push only writes (and links each
record right after it is written), the report only records.
"""

from __future__ import annotations

from functools import partial

from prefect import get_run_logger

from tasks.context import RunContext
from tasks.families import family_of
from tasks.family import Fetched
from tasks.policy import BATCH, batches, step
from tasks.progress import Progress


def _sizes(fetched: Fetched) -> dict[str, int]:
    return {name: len(frame) for name, frame in fetched.frames.items()}


@step("fetch-crm")
def fetch_crm(run: RunContext) -> Fetched:
    """What changed in the CRM since the cursor (or the targeted records)."""
    fetched = family_of(run.module).fetch(run, "crm")
    get_run_logger().info("CRM: %s", _sizes(fetched))
    return fetched


@step("fetch-books")
def fetch_books(run: RunContext) -> Fetched:
    """What changed in Books since the cursor (or the targeted records)."""
    fetched = family_of(run.module).fetch(run, "books")
    get_run_logger().info("Books: %s", _sizes(fetched))
    return fetched


@step("map-records")
def map_records(run: RunContext, crm: Fetched, books: Fetched):
    """The fetched records in the other side's form, with the records that cannot map."""
    return family_of(run.module).map(run, crm, books)


@step("dedupe")
def dedupe(run: RunContext, crm: Fetched, books: Fetched, mapped):
    """What the plan needs from the other side: the records fetched ones may duplicate, and
    the current state of the twins it may write."""
    return family_of(run.module).dedupe(run, crm, books, mapped)


@step("plan-changes")
def plan_changes(run: RunContext, mapped, found, again: bool = False):
    """The plan: one row per record, what to write where and why (`again`: planned once more
    after the records it needed from another module were synced)."""
    return family_of(run.module).plan(run, mapped, found)


def keys_only(run: RunContext, fetched: Fetched) -> Fetched:
    """What the push and the report still need of one side's fetched records (the family
    says: for record modules their ids and stamps, for cursors)."""
    return family_of(run.module).keys_only(fetched)


def needs(run: RunContext, plan) -> dict[str, list[str]]:
    """Records of other modules the plan waits for ({module: CRM ids})."""
    return {} if run.dry_run else family_of(run.module).needs(run, plan)


def then(run: RunContext, outcomes: list[dict]) -> dict[str, dict[str, list[str]]]:
    """Records of other modules to sync after this run's writes ({module: targets})."""
    return {} if run.dry_run else family_of(run.module).then(run, outcomes)


@step("push-books")
def push_books(run: RunContext, units: list) -> list[dict]:
    """Write one batch to Books; each record is linked right after its write."""
    return family_of(run.module).write(run, "books", units)


@step("push-crm")
def push_crm(run: RunContext, units: list) -> list[dict]:
    """Write one batch to the CRM (the CRM takes 100 records per call); each record is linked
    right after its write."""
    return family_of(run.module).write(run, "crm", units)


def follow_up(run: RunContext, outcomes: list[dict]) -> dict:
    """What the module refreshes once its records are pushed (a customers run: the accounting
    figures on the linked CRM customers); a module with nothing to refresh has no such step."""
    if not family_of(run.module).follows_up(run):
        return {}
    return refresh_after_push(run, outcomes)


@step("follow-up")
def refresh_after_push(run: RunContext, outcomes: list[dict]) -> dict:
    """The follow-up step as a Prefect task (see `follow_up`)."""
    return family_of(run.module).follow_up(run, outcomes)


PUSH = {"books": push_books, "crm": push_crm}


def journal_entries(side: str, units: list) -> list[dict]:
    """What the write journal keeps of a batch of units about to be written to ``side``: the
    record, the action and the changes on that side (their before values as read this run)."""
    entries = []
    for unit in units:
        if not isinstance(unit, dict) or not unit.get("record_key"):
            continue
        changes = [c for c in unit.get("changes") or [] if c.get("side", side) == side]
        entries.append({"side": side, "record_key": unit["record_key"],
                        "kind": unit.get("kind"), "crm_id": unit.get("crm_id"),
                        "books_id": unit.get("books_id"), "name": unit.get("name"),
                        "action": unit.get("action") or "update", "changes": changes})
    return entries


def push(run: RunContext, plan) -> list[dict]:
    """Push the plan side by side, in batches, in the family's order (the later side may use
    what the earlier one wrote: ids, values, the records Books answered with)."""
    family = family_of(run.module)
    family.before_push(run, plan)
    outcomes: list[dict] = []
    progress = Progress(run.module, family.planned_writes(plan))
    for side in family.push_order:
        units = family.units(run, plan, side, outcomes)
        for batch in batches(units, BATCH[side], partial(family.batch_group, side)):
            # Journaled before it is sent: a run killed during the batch leaves in history
            # what it may have written, with the values it replaces.
            run.runtime().store.journal_writes(run.run_id, run.module,
                                               journal_entries(side, batch))
            outcomes += PUSH[side](run, batch)
            progress.advance(len(batch))
    progress.done()
    return outcomes
