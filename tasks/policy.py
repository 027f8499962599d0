"""The one policy every step of every module's pipeline runs under.

Each step is a Prefect task over whole batches (a task run per record would cost about 3 ms
and 20 KB of the Prefect database each, so records travel in batches). Every step persists
its result: retrying a failed flow run from the Prefect UI then finds the results of the steps
that had finished and re-runs only what failed (Prefect's default cache key is the task's
inputs, its code and the flow run, which a retry keeps). Transient failures (rate limits,
5xx, timeouts: RetriableError) are retried twice, after 5 and 10 seconds; the connectors
already retried each request with backoff, so this covers a longer outage. Nothing else is
retried: a configuration or record error cannot be fixed by trying again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from prefect import task
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.retry import retry_transient

#: Plan rows per push task: Books writes one record per request, the CRM 100 per request.
BATCH = {"books": 50, "crm": 100}
RETRY_DELAYS = [5, 10]


def step(name: str, **overrides: Any) -> Callable:
    """Decorate a pipeline step as a Prefect task under the shared policy."""
    options = {"name": name, "persist_result": True, "retries": len(RETRY_DELAYS),
               "retry_delay_seconds": RETRY_DELAYS, "retry_condition_fn": retry_transient}
    return task(**{**options, **overrides})


def flow_options(name: str) -> dict[str, Any]:
    """The options of every module flow: a bounded thread pool (the default one is unbounded
    and could open hundreds of connections), no print capture, persisted results."""
    return {"name": name, "task_runner": ThreadPoolTaskRunner(max_workers=4),
            "log_prints": False, "persist_result": True}


def batches(units: list, size: int, group: Callable[[Any], Hashable] | None = None
            ) -> list[list]:
    """Batches of at most `size` units, in order; with `group`, a batch never mixes units of
    two groups (groups in the order they first appear), since each group is a call of its own:
    a batch across two CRM modules would cost two calls where one would do."""
    if group is None:
        return [units[i:i + size] for i in range(0, len(units), size)]
    grouped: dict[Hashable, list] = {}
    for unit in units:
        grouped.setdefault(group(unit), []).append(unit)
    return [batch for members in grouped.values() for batch in batches(members, size)]
