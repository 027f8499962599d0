"""Many organizations on one Prefect (docs/scaling.md): the runs of one organization never overlap.

A fleet keeps one deployment per module and starts one flow run per organization and module
(`org_id` and `connection` as parameters). Runs of different organizations go side by side on
the workers; runs of one organization take the global concurrency limit `sync-org-<org>`
(limit 1) for their whole length, so its modules sync one after the other and share its API
budget instead of racing for it. The limit must exist (`prefect gcl create sync-org-<org>
--limit 1`, or `ensure_org_limits`): the slot is taken with `strict=True`, because Prefect
skips a missing limit with only a warning.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

#: Global concurrency limits of the fleet are named sync-org-<Books organization id>.
ORG_LIMIT_PREFIX = "sync-org-"


def org_limit_name(org_id: str | None, connection: str = "default") -> str:
    """The global concurrency limit of one organization: sync-org-<org id, else connection>."""
    return f"{ORG_LIMIT_PREFIX}{org_id or connection}"


@contextlib.contextmanager
def org_slot(org_id: str | None, connection: str = "default", exclusive: bool = False,
             timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the organization's slot (when `exclusive`) for the body; wait for it if taken."""
    if not exclusive:
        yield
        return
    from prefect import get_run_logger
    from prefect.concurrency.sync import concurrency

    name = org_limit_name(org_id, connection)
    started = time.monotonic()
    with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
        get_run_logger().info("holding %s (waited %.1f s for it)", name,
                              time.monotonic() - started)
        yield


def ensure_org_limits(org_ids: Iterable[str], limit: int = 1) -> list[str]:
    """Create the missing `sync-org-<org>` limits (limit 1) on the current Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    with get_client(sync_client=True) as client:
        for org in org_ids:
            name = org_limit_name(org)
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit))
                created.append(name)
    return created
