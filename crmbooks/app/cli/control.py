"""`crmbooks pause`, `resume`, `disable`, `enable`: turn syncing off and on.

Each sets the connection's paused or disabled flag, which every run checks before it starts
(a refused run exits 3), and makes the Prefect deployments' schedules follow when a server
answers.
"""

from __future__ import annotations

import typer

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


def disable(yes: bool = typer.Option(
        False, "--yes", "-y",
        help="Remove without asking (for scripts): the removal is listed, not confirmed.")):
    """Disable the integration: every sync refuses to start (exit 3) until `crmbooks enable`,
    and what crmbooks put in the CRM for transactions and figures is removed.

    Removed: the quotes, sales orders, invoices and purchase orders crmbooks created in the
    CRM from Books (with their deal relations); on transaction records made in the CRM, only
    the Books id, number and web address crmbooks wrote; the Books quote shown on each deal;
    the accounting figures on the linked customers. Books is left untouched; settings and
    links of records made in the CRM are kept. It lists what it will remove and how many, and
    asks first (`--yes`: no question). Run again after an error: it removes only what is
    left. `crmbooks enable` brings everything back with the next runs, once.

    Exit codes: 0 disabled (or not confirmed: nothing done), 1 some CRM records could not be
    removed (listed), 2 not connected or no answer to the question, 4 Zoho or the network
    failed (run it again).

    Example: crmbooks disable --yes
    """
    from crmbooks import disabling
    from crmbooks.app.cli.common import primary_store

    store = primary_store()  # exit 2 when not connected
    row = store.connection()
    planned = disabling.plan(store)
    if planned.empty():
        console.print("Nothing of crmbooks' to remove from the CRM.")
    else:
        console.print("Disabling removes from the CRM (Books is not touched):", highlight=False)
        for line in planned.sentences(planned=True):
            console.print(f"  - {line}", highlight=False)
        if not yes and not _confirmed():
            console.print("Nothing removed" + ("" if row.disabled else
                                               "; crmbooks stays enabled") + ".")
            return
    _set_flag("disabled", True, "Disabled: no sync will start until `crmbooks enable`.",
              "Already disabled.")
    _schedules()
    if not planned.empty():
        _remove()


def _confirmed() -> bool:
    """The person's yes; no answer (a script without `--yes`) is exit 2, nothing done."""
    try:
        return typer.confirm("Remove them and disable?", default=False)
    except typer.Abort:  # end of input or Ctrl-C: no answer
        fail("not confirmed, nothing was removed: answer the question, or pass --yes")


def _remove() -> None:
    """Remove what crmbooks put in the CRM, saying what was removed and what was not."""
    from crmbooks import disabling
    from crmbooks.app.cli.common import EXIT_FAILED_RECORDS, EXIT_PROVIDER, provider_errors
    from crmbooks.runtime import get_runtime

    try:
        removed = disabling.remove(get_runtime())
    except provider_errors() as exc:
        fail(f"disabled, but the CRM data could not all be removed ({exc}); run "
             "`crmbooks disable --yes` again once the CRM answers (it removes only what is "
             "left)", EXIT_PROVIDER)
    lines = removed.sentences(planned=False)
    console.print("Removed from the CRM: " + ("; ".join(lines) if lines else
                                              "nothing was left") + ". Books untouched; "
                  "`crmbooks enable` brings them back with the next runs.", highlight=False)
    if removed.failed:
        console.print("[yellow]Not removed:[/]", highlight=False)
        for reason in removed.failed:
            console.print(f"  - {reason}", highlight=False, markup=False)
        fail("run `crmbooks disable --yes` again once the reasons above are fixed",
             EXIT_FAILED_RECORDS)


def enable():
    """Enable the integration again after `crmbooks disable`.

    The next runs bring back what `disable` removed from the CRM, once: the transactions run
    creates again the CRM records of Books transactions, the customers run writes the
    figures. Refused (exit 2) while an interrupted `disable` left CRM records to remove: run
    `crmbooks disable --yes` again first. To connect a different Books organization or update
    credentials, run `crmbooks connect`.

    Example: crmbooks enable
    """
    from crmbooks import disabling
    from crmbooks.app.cli.common import primary_store
    from crmbooks.runtime import open_store

    row = open_store().connection()
    left = disabling.unfinished(primary_store()) if row is not None and row.disabled else 0
    if left:
        fail(disabling.unfinished_message(left))
    _set_flag("disabled", False, "Enabled: syncs run again; the next runs bring back what "
              "`disable` removed from the CRM.", "Not disabled: nothing to enable.")
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
