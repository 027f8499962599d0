"""The deletions step of the one pipeline, after the push: the module's family handles the
records found deleted on either side (record modules: tasks/records/deletions.py)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.context import RunContext
from tasks.families import family_of
from tasks.family import Fetched


def deletions(run: RunContext, crm: Fetched, books: Fetched, outcomes: list[dict]
              ) -> tuple[list[dict], str | None]:
    """Handle the records found deleted; the outcomes with what was done, and a note when the
    brake held deletions for approval. A module without deletions has no such step."""
    if not family_of(run.module).handles_deletions(run):
        return outcomes, None
    return handle_deletions(run, crm, books, outcomes)


# Never cached: it writes (deletes, retires links) and its inputs are the run's whole data.
@task(name="deletions", cache_policy=NO_CACHE)
def handle_deletions(run: RunContext, crm: Fetched, books: Fetched, outcomes: list[dict]
                     ) -> tuple[list[dict], str | None]:
    """The deletions step as a Prefect task (see `deletions`)."""
    return family_of(run.module).deletions(run, crm, books, outcomes)
