"""`crmbooks pause`, `resume`, `disable`, `enable`: turn syncing off and on.

Each sets the connection's paused or disabled flag, which every run checks before it starts
(a refused run exits 3), and makes the Prefect deployments' schedules follow when a server
answers.
"""

from __future__ import annotations

from crmbooks.app.cli.common import console, fail


def pause():
    """Pause syncing: scheduled and manual syncs refuse to start (exit 3).

    A run already in progress completes first. `crmbooks resume` turns syncing back on.

    Example: crmbooks pause
    """
    _set_flag("paused", True, "Paused: scheduled and manual syncs will not start (a run "
              "already in progress completes); `crmbooks resume` turns them back on.",
              "Already paused.")
    _schedules()


def resume():
    """Resume syncing after `crmbooks pause`: scheduled and manual syncs run again.

    Example: crmbooks resume
    """
    _set_flag("paused", False, "Resumed: scheduled and manual syncs run again.",
              "Not paused: nothing to resume.")
    _schedules()


def _schedules() -> None:
    """The Prefect deployments' schedules follow the flags, when a server answers: paused
    while crmbooks is paused or disabled, active otherwise."""
    from crmbooks.runtime import open_store
    from crmbooks.schedules import set_schedules_paused

    row = open_store().connection()
    console.print(set_schedules_paused(bool(row.paused or row.disabled)), highlight=False)


def disable():
    """Disable the integration: every sync refuses to start (exit 3) until `crmbooks enable`.

    The transaction data crmbooks put on the CRM side is removed (the Books quote shown on
    each deal, the Books id on CRM transactions). Books is left untouched; settings and links
    are kept, so `enable` (or `connect` to another Books organization) goes on.

    Example: crmbooks disable
    """
    _set_flag("disabled", True, "Disabled: no sync will start until `crmbooks enable`.",
              "Already disabled.")
    _schedules()
    _remove_crm_transaction_data()


def _remove_crm_transaction_data() -> None:
    """Remove the transaction data crmbooks put on the CRM side (a failure is reported; the
    integration stays disabled)."""
    from crmbooks.operations import remove_crm_transaction_data
    from crmbooks.runtime import get_runtime

    try:
        cleared = remove_crm_transaction_data(get_runtime())
    except Exception as exc:  # noqa: BLE001 - disabled anyway; say what is left to do
        console.print(f"[yellow]The CRM transaction data could not be removed ({exc}); run "
                      "`crmbooks disable` again once the CRM answers.[/]")
        return
    if cleared:
        console.print("Removed crmbooks' transaction data from the CRM: " + ", ".join(
            f"{n} {module}" for module, n in sorted(cleared.items())) + " (Books untouched).")


def enable():
    """Enable the integration again after `crmbooks disable`.

    To connect a different Books organization or update credentials, run `crmbooks connect`.

    Example: crmbooks enable
    """
    _set_flag("disabled", False, "Enabled: syncs run again.", "Not disabled: nothing to enable.")
    _schedules()


def _set_flag(flag: str, value: bool, done: str, already: str) -> None:
    """Set the connection's paused/disabled flag, saying what it means."""
    from crmbooks.runtime import open_store

    store = open_store()
    row = store.connection()
    if row is None:
        fail("crmbooks is not connected yet: run `crmbooks connect` first")
    if bool(getattr(row, flag)) == value:
        console.print(already)
        return
    store.save_connection(row.name, **{flag: value})
    console.print(done, highlight=False)
