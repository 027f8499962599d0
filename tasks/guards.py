"""Checks made right before the first write of a run, when they cost a request only then.

The Books organization's base currency is verified at connect and every amount is
mapped in it (item rates ↔ CRM unit prices). If it changed since, every amount written would
be off by the exchange rate: the run stops before writing, as a configuration error. A run
with nothing to write spends no request on it (a quiet run stays at one request per side).
"""

from __future__ import annotations

from crmbooks.connect import PrerequisiteError
from tasks.context import RunContext


def assert_currency_unchanged(run: RunContext) -> None:
    """Raise PrerequisiteError when Books' base currency is not the one connected."""
    if not run.base_currency:
        return
    live = run.runtime().books.organization().get("currency_code")
    if live and live != run.base_currency:
        raise PrerequisiteError(
            f"the base currency of Books organization {run.org_id} is now {live}, but it was "
            f"{run.base_currency} when crmbooks was connected: amounts would be written in "
            f"the wrong currency, so nothing was written. If the change is intended, run "
            "`crmbooks connect` again to accept it")
