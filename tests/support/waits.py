"""Tests about outcomes, not waiting: Prefect's task retry delays (5 s, then 10 s) cut to 0."""

from __future__ import annotations

import tasks.run
import tasks.steps


def no_retry_waits(monkeypatch) -> None:
    """Every pipeline step retries at once (the retries still happen, and are counted)."""
    steps = [getattr(tasks.steps, name) for name in dir(tasks.steps)]
    for task in [*steps, tasks.run.start_run]:
        if hasattr(task, "retry_delay_seconds") and hasattr(task, "retries"):
            monkeypatch.setattr(task, "retry_delay_seconds", 0)
