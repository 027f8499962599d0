"""`crmbooks sync`: run modules now, in dependency order, for one or every organization."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import fail, run_sync


def sync(
    modules: list[str] = typer.Argument(
        None, help="customers, vendors, items, transactions, deals (or deal-triggers), or "
        "all (the default)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: write nothing."),
    full: bool = typer.Option(
        False, "--full", help="customers, vendors, items: read every record, not only those "
        "changed since the last run, and write those whose mapped values differ."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
    org: str = typer.Option(None, "--org", help="Sync this Books organization (an extra one "
                            "syncs CRM → Books only)."),
    all_orgs: bool = typer.Option(False, "--all-orgs",
                                  help="Sync the primary, then each extra organization."),
):
    """Sync now, in dependency order (customers, vendors, items, transactions, deals).

    A module that is turned off (transactions not enabled, deal triggers not configured) is
    skipped with its reason, and is not a failure.

    Example: crmbooks sync customers --dry-run

    Example: crmbooks sync transactions deal-triggers

    Example: crmbooks sync --all-orgs

    Example: crmbooks sync customers --full
    """
    raise typer.Exit(run_sync(modules or ["all"], dry_run, json_out, _orgs(org, all_orgs),
                              full=full))


def _orgs(org: str | None, all_orgs: bool) -> list[str] | None:
    """The organizations `sync` runs: one (--org), all connected ones, or the primary."""
    if org and all_orgs:
        fail("give --org or --all-orgs, not both", wrap=True)
    if not all_orgs:
        return [org.strip()] if org else None
    from crmbooks.runtime import open_store

    row = open_store().connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first", wrap=True)
    return [row.books_org_id, *[str(o) for o in row.extra_books_org_ids or []]]
