"""Fleet mode (docs/scaling.md): the per-organization global concurrency limit."""

from __future__ import annotations

import threading
import time

from prefect import flow

from flows.fleet import ensure_org_limits, org_limit_name, org_slot


@flow
def _hold(org: str, seconds: float = 0.0, exclusive: bool = True) -> tuple[float, float]:
    with org_slot(org, exclusive=exclusive):
        start = time.monotonic()
        time.sleep(seconds)
        return start, time.monotonic()


def test_limit_names():
    assert org_limit_name("20099001") == "sync-org-20099001"
    assert org_limit_name(None, "acme") == "sync-org-acme"


def test_not_exclusive_needs_no_limit():
    start, end = _hold("fleet-test-free", exclusive=False)
    assert end >= start


def test_exclusive_refuses_without_the_limit():
    """strict=True: a missing limit fails the run instead of being skipped with a warning."""
    assert _hold("fleet-test-missing", return_state=True).is_failed()


def test_runs_of_one_org_never_overlap():
    assert ensure_org_limits(["fleet-test-a"]) == ["sync-org-fleet-test-a"]
    assert ensure_org_limits(["fleet-test-a"]) == []  # idempotent
    spans: list[tuple[float, float]] = []
    threads = [threading.Thread(target=lambda: spans.append(_hold("fleet-test-a", 1.0)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(spans) == 2
    first, second = sorted(spans)
    assert second[0] >= first[1]
