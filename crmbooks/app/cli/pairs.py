"""`crmbooks link` / `unlink`: pair a CRM record with a Books record by hand, or undo a pair.

Both records are read first: an unknown id, records of different types, or a record already
linked to another one is refused with exit code 2 and nothing written. A pair is synced by the
next run of its module (both records are read then, changed or not); each pair and unpair is
a run of its own in `crmbooks history`.
"""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import console, fail, runtime_or_fail


def link(
    module: str = typer.Argument(..., metavar="MODULE", help="customers, vendors or items."),
    crm_id: str = typer.Argument(..., metavar="CRM_ID", help="The CRM record's id."),
    books_id: str = typer.Argument(..., metavar="BOOKS_ID", help="The Books record's id."),
):
    """Pair a CRM record with a Books record by hand; the next run syncs them as a pair.

    Example: crmbooks link customers 5725767000000123001 460000000026049
    """
    from crmbooks.pairing import PairingError, link_records

    runtime = runtime_or_fail()
    try:
        text, run_id = link_records(runtime, module, crm_id, books_id)
    except PairingError as exc:
        fail(f"{exc} (nothing was written)")
    if run_id is None:
        console.print(f"{text}: nothing to do.", highlight=False)
        return
    console.print(f"[bold green]Done:[/] {text} (history run {run_id[:8]}); the next "
                  f"{module.strip().lower()} run syncs them.", highlight=False)


def unlink(
    module: str = typer.Argument(..., metavar="MODULE", help="customers, vendors or items."),
    key: str = typer.Argument(..., metavar="KEY",
                              help="A record key, or the CRM or Books id of either record."),
):
    """Undo a pair: remove the link and the ids each side keeps of the other.

    Example: crmbooks unlink customers crm/Accounts/5725767000000123001
    """
    from crmbooks.pairing import PairingError, unlink_record

    runtime = runtime_or_fail()
    try:
        text, run_id = unlink_record(runtime, module, key)
    except PairingError as exc:
        fail(f"{exc} (nothing was written)")
    console.print(f"[bold green]Done:[/] {text} (history run {run_id[:8]}).", highlight=False)
