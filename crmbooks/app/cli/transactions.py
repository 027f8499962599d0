"""`crmbooks transactions sync`: CRM quotes, sales orders, invoices and purchase orders →
Books now, without waiting for the schedule or an event."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import Command, Group, run_flow

transactions_app = typer.Typer(help="CRM transactions → Books.", no_args_is_help=True,
                               cls=Group)


@transactions_app.command("sync", cls=Command)
def transactions_sync(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only plan: write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print the run as JSON."),
):
    """Sync the CRM transactions changed since the last run into Books now (CRM → Books).

    Transactions are quotes, sales orders, invoices and purchase orders.
    """
    from flows.transactions import sync_transactions

    run_flow(sync_transactions, "transactions", json_out, dry_run=dry_run)
