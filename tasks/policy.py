"""The one policy every step of every module's pipeline runs under.

Each step is a Prefect task over whole batches (a task run per record would cost about 3 ms
and 20 KB of the Prefect database each, so records travel in batches). Every step persists
its result: retrying a failed flow run from the Prefect UI then finds the results of the steps
that had finished and re-runs only what failed (Prefect's default cache key is the task's
inputs, its code and the flow run, which a retry keeps). Transient failures (rate limits,
5xx, timeouts: RetriableError) are retried twice, after 5 and 10 seconds; the connectors
already retried each request with backoff, so this covers a longer outage. Nothing else is
retried: a configuration or record error cannot be fixed by trying again.

The cache key of a step is a fingerprint of its inputs (`Fingerprint`), not Prefect's default
hash of them: that one pickles every input whole (the fetched records, the mapped frames, the
plan) only to hash the bytes, a transient copy of the run's data at every step. Within one
flow run the ids and stamps a step received say which inputs it had: its records come from
the earlier steps' persisted results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import cloudpickle
import pandas as pd
from prefect import task
from prefect.cache_policies import RUN_ID, TASK_SOURCE, CachePolicy
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.retry import retry_transient

#: Plan rows per push task: Books writes one record per request, the CRM 100 per request.
BATCH = {"books": 50, "crm": 100}
RETRY_DELAYS = [5, 10]


#: The columns that tell a frame's records apart (ids, keys, modified stamps): a frame's
#: fingerprint is its shape, its columns and these columns' values.
KEY_COLUMNS = ("id", "crm_id", "books_id", "record_key", "contact_id", "item_id", "kind",
               "action", "target", "Modified_Time", "last_modified_time")


def _feed(digest, value: Any) -> None:
    """Add a fingerprint of `value` to `digest`: frames by their key columns, containers item
    by item, anything else by its pickle (small: settings, a run context, a batch's rows)."""
    if isinstance(value, pd.DataFrame):
        keys = [c for c in KEY_COLUMNS if c in value.columns]
        digest.update(repr((value.shape, [str(c) for c in value.columns], keys)).encode())
        if not keys:  # nothing tells its rows apart: the whole frame (small ones only)
            digest.update(cloudpickle.dumps(value.to_dict("records")))
        for column in keys:
            digest.update("\x1f".join(map(str, value[column].tolist())).encode())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"[{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif is_dataclass(value) and not isinstance(value, type):
        digest.update(type(value).__name__.encode())
        for f in fields(value):
            _feed(digest, {f.name: getattr(value, f.name)})
    else:
        digest.update(cloudpickle.dumps(value))


@dataclass
class Fingerprint(CachePolicy):
    """A cache key from a fingerprint of the step's inputs (see the module's text)."""

    exclude: list[str] = field(default_factory=list)

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        """The key, or None (no caching) for a step without inputs."""
        if not inputs:
            return None
        digest = hashlib.sha256()
        for key in sorted(inputs):
            if key not in self.exclude:
                digest.update(key.encode())
                _feed(digest, inputs[key])
        return digest.hexdigest()


#: The cache policy of every step: its inputs' fingerprint, its code, the flow run.
STEP_CACHE = Fingerprint() + TASK_SOURCE + RUN_ID


def step(name: str, **overrides: Any) -> Callable:
    """Decorate a pipeline step as a Prefect task under the shared policy."""
    options = {"name": name, "persist_result": True, "cache_policy": STEP_CACHE,
               "retries": len(RETRY_DELAYS),
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
