"""Deletions by policy: what a record deleted on one side asks of its twin, and the brake.

Pure: the run's deletions step (tasks/records/deletions.py) reads what was deleted and does
what these functions decide.
"""

from __future__ import annotations

#: The side whose twin a deletion acts on, and the words history uses for each side.
TWIN = {"crm": "books", "books": "crm"}
WHERE = {"crm": "the CRM", "books": "Books"}
#: What each policy does to the twin, in history's words.
DONE = {"ignore": "kept", "deactivate": "marked inactive", "delete": "deleted"}


def policy_for(settings, deleted_side: str) -> str:
    """The module's policy for a record deleted on ``deleted_side`` (crm|books)."""
    return getattr(settings, f"on_delete_in_{deleted_side}", "ignore")


def braked(planned: int, linked: int, count: int, share: float) -> bool:
    """True when ``planned`` deletions or deactivations go past the brake: more than
    ``count`` records *and* more than ``share`` percent of the module's ``linked`` records.

    Both must be exceeded, so that a small module is not held at its second deletion (5% of
    30 links) and a large one not at 25 of 100,000.
    """
    return planned > count and planned * 100 > share * linked


#: Words of a run's message that say the brake held its deletions (`crmbooks sync` shows it).
HELD_WORDS = "held by the brake"


def brake_note(planned: int, run_id: str, count: int, share: float) -> str:
    """The run's message when the brake held its deletions."""
    return (f"{planned} deletion(s) {HELD_WORDS} (more than {count} records and "
            f"{share:g}% of the links): nothing was deleted; approve with "
            f"`crmbooks deletions approve {run_id[:8]}`")


def reason(deleted_side: str, action: str, twin_id: str, *, already: bool = False) -> str:
    """History's message for a handled deletion: where, and what was done to the twin."""
    twin = f"{WHERE[TWIN[deleted_side]]} twin {twin_id}"
    done = "was already gone" if already else DONE[action]
    return f"deleted in {WHERE[deleted_side]}: {twin} {done}; link retired"
