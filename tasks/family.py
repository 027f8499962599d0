"""What a module plugs into the one pipeline: a `Family` of hooks, one per step.

The pipeline (flows/pipeline.py) is the same for every module — start → lock → fetch → map →
dedupe → plan → push → report — and its steps (tasks/steps.py) are the same Prefect tasks under
the same policy. A family says what each step means for its modules:

* record modules (customers, vendors, items: tasks/records/) pair CRM records with Books
  contacts and items through their mapping files;
* transactions (tasks/documents/) pair CRM modules with line items with Books transactions,
  one document type per entry of mappings/transactions.yaml;
* deal triggers (tasks/deals/) make Books quotes and invoices from deals.

The planning itself is pure (crmbooks/sync/); a family's hooks read and write around it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmbooks.sync.outcomes import DEFAULT_HINT, WRITES, rows_of, written_sides


@dataclass
class Fetched:
    """What a fetch read of one side: the records per stream (a CRM module or a Books
    resource), and the keys of targeted records that no longer exist there."""

    frames: dict[str, Any] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    #: The newest modified stamp among every record the read returned, those dropped as
    #: echoes included (None: no stamps, or a read by id).
    newest: datetime | None = None
    #: A moment at or before the server ran the read (its clock, from the answers' Date
    #: headers); None when unknown. See crmbooks.sync.cursors.past_its_second.
    began: datetime | None = None


class Family(ABC):
    """The hooks of one kind of module; the defaults suit a module that has nothing to say."""

    #: Said (and kept as the run's state message) when the module is turned off.
    off_message = "this module is turned off"
    #: The sides pushed, in order (the later side may use what the earlier one wrote).
    push_order: tuple[str, ...] = ("books", "crm")
    #: What to do about a failed record when the failure says nothing better.
    failure_hint = DEFAULT_HINT

    def enabled(self, settings, targets: dict[str, list[str]]) -> bool:
        """False when the module (or the part of it the targets name) is turned off."""
        return True

    def for_organization(self, settings, one_way: bool, org_id: str):
        """(settings, note) as they apply to this Books organization (an extra one may sync
        one way only)."""
        return settings, None

    def start(self, runtime, settings, targets: dict[str, list[str]]) -> dict[str, Any]:
        """Check what the run needs against the live systems (raising a setup error before
        anything is written) and return the facts its steps use."""
        return {}

    def cursors(self, store, settings, facts: dict, targets: dict[str, list[str]]
                ) -> dict[str, datetime | None]:
        """Where each stream's incremental read starts."""
        return {}

    @abstractmethod
    def fetch(self, run, side: str):
        """What changed on one side (or the targeted records), with the records found gone."""

    def map(self, run, crm, books):
        """The fetched records in the other side's form (pure, per record)."""
        return None

    def handles_deletions(self, run) -> bool:
        """Whether the run has a deletions step (a step with nothing to do would still cost
        a Prefect task run)."""
        return type(self).deletions is not Family.deletions and not run.dry_run

    def deletions(self, run, crm, books, outcomes: list[dict]):
        """After the push: handle the records found deleted on either side; return the
        outcomes (with what was done about them) and a note for the run (the brake held)."""
        return outcomes, None

    def dedupe(self, run, crm, books, mapped):
        """What the plan needs from the other side: duplicates by name, current twins."""
        return None

    @abstractmethod
    def plan(self, run, mapped, found):
        """The plan rows (crmbooks.sync.outcomes vocabulary)."""

    def needs(self, run, plan) -> dict[str, list[str]]:
        """Records of other modules to sync first ({module: CRM ids}), then plan again."""
        return {}

    def then(self, run, outcomes: list[dict]) -> dict[str, dict[str, list[str]]]:
        """Records of other modules to sync once this run wrote ({module: its run targets})."""
        return {}

    def before_push(self, run, plan) -> None:
        """Checks and link-only writes due before the first record is written."""
        return None

    def planned_writes(self, plan) -> int:
        """How many writes the plan asks for (the push's progress counts them)."""
        return sum(len(written_sides(r)) for r in rows_of(plan) if r["action"] in WRITES)

    def units(self, run, plan, side: str, outcomes: list[dict]) -> list:
        """What to write to `side` (after the sides before it wrote `outcomes`), in order."""
        return []

    def batch_group(self, side: str, unit):
        """What a unit is written with in one call (a batch never mixes two); None: any."""
        return None

    @abstractmethod
    def write(self, run, side: str, units: list) -> list[dict]:
        """Write one batch of units to `side`; one outcome per written record."""

    def follows_up(self, run) -> bool:
        """Whether the run has a follow-up step (see `handles_deletions`)."""
        return type(self).follow_up is not Family.follow_up

    def follow_up(self, run, outcomes: list[dict]) -> dict[str, Any]:
        """What the module refreshes after its push and before its report (a customers run
        refreshes the accounting figures); returned into the run summary."""
        return {}

    def settle(self, run, crm, books, outcomes: list[dict], failed: set[str]
               ) -> dict[tuple[str, str], datetime]:
        """The cursors to move: {(cursor key, side): new value}."""
        return {}

    def keys_only(self, fetched):
        """What the push and the report still need of one side's fetched records (their
        settle and summary): the default keeps them all."""
        return fetched

    def summary(self, crm, books) -> dict[str, Any]:
        """What the module adds to its run summary (how many deals it read, say)."""
        return {}

    def artifacts(self, run, plan) -> None:
        """Prefect artifacts of the run beyond the summary and failures tables."""
        return None
