"""Progress of a long push: a Prefect progress artifact, updated every few percent.

Listeners (the CLI's rich progress bar) hear every advance: `listeners.append(fn)` with
`fn(module, done, total)`.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

listeners: list[Callable[[str, int, int], None]] = []


# A task, so that the progress artifact belongs to a task run: the UI's artifacts tab lists a
# run's own artifacts (its summary and failures tables) above those of its task runs, in no
# set order among themselves, and the tables are what the operator opens the tab for.
@task(name="push-progress", cache_policy=NO_CACHE, persist_result=False)
def start_progress(module: str):
    """Create the push's progress artifact at 0 % and return its id."""
    return create_progress_artifact(0.0, key=f"{module}-push-progress",
                                    description=f"{module}: records pushed")


class Progress:
    """Percent of plan rows pushed, visible in the Prefect UI while the run goes on."""

    STEP = 5.0  # percent between updates: each update is an API call to the Prefect server

    def __init__(self, module: str, total: int):
        self.module = module
        self.total, self.done_rows, self.shown = max(total, 1), 0, 0.0
        # A run with nothing to write (most scheduled runs) shows no progress: the artifact
        # and its task run would cost the Prefect server more than the whole quiet run.
        self.id = start_progress(module) if total else None

    def advance(self, rows: int) -> None:
        """Count `rows` more rows pushed."""
        self.done_rows += rows
        for listener in listeners:
            listener(self.module, self.done_rows, self.total)
        # The CRM write-backs of new Books ids are pushed beyond the planned writes: a record
        # created in Books counts twice, and Prefect warns on every value over 100%.
        percent = min(100.0, 100.0 * self.done_rows / self.total)
        if self.id is not None and percent - self.shown >= self.STEP:
            update_progress_artifact(self.id, percent)
            self.shown = percent

    def done(self) -> None:
        """Mark the push complete."""
        for listener in listeners:
            listener(self.module, self.total, self.total)
        if self.id is not None:
            update_progress_artifact(self.id, 100.0)
