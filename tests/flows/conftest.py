"""The one Prefect test harness of the session, for end-to-end flow tests.

Started only when a flow test runs (about 7 s, reference/prefect.md §2), with flow heartbeats off:
otherwise every flow call waits about a second for the heartbeat thread to join on exit.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (SQLite) shared by every flow test of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield
