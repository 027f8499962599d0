"""Which task failures Prefect should retry: transient ones only (the error's type decides).

The connectors already retry each request with backoff; a task retry covers a longer outage.
Configuration, credential and record-level errors are never retried: retrying cannot fix them.
"""

from __future__ import annotations

from crmbooks.connectors.errors import RetriableError


def retry_transient(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: True when the failure was a RetriableError."""
    try:
        state.result()
    except RetriableError:
        return True
    except Exception:
        return False
    return False
