"""`crmbooks emulators`: local Zoho CRM, Zoho Books and Zoho Accounts on one base URL."""

from __future__ import annotations

import dataclasses

import typer

from crmbooks.app.cli.common import console, fail


def emulators(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (keep it on loopback)."),
    port: int = typer.Option(8900, help="Port to listen on; 0 picks a free one."),
    seed: int = typer.Option(7, help="Seed of the sample data (same seed, same data)."),
    accounts: int = typer.Option(40, help="CRM accounts to seed."),
    contacts_per_account: int = typer.Option(2, help="CRM contacts per account."),
    unassociated_contacts: int = typer.Option(5, help="CRM contacts without an account."),
    vendors: int = typer.Option(15, help="CRM vendors to seed."),
    products: int = typer.Option(40, help="CRM products to seed."),
    deals: int = typer.Option(20, help="CRM deals to seed."),
    books_customers: int = typer.Option(15, help="Books customers that already exist."),
    books_vendors: int = typer.Option(5, help="Books vendors that already exist."),
    books_items: int = typer.Option(10, help="Books items that already exist."),
    books_rate_limit: int = typer.Option(100, help="Books requests per minute per organization."),
    books_daily_limit: int = typer.Option(10000, help="Books requests per day per organization."),
    crm_concurrency: int = typer.Option(15, help="CRM calls in flight at once."),
    books_orgs: int = typer.Option(1, help="How many Books organizations to serve."),
    client_id: str = typer.Option("crmbooks-demo", help="OAuth client id to accept."),
    client_secret: str = typer.Option("crmbooks-demo-secret", help="OAuth client secret."),
    refresh_token: str = typer.Option("crmbooks-demo-refresh", help="OAuth refresh token."),
    faults: str = typer.Option("", help="Faults, e.g. error_rate=0.1,rate_429=0.05,drop_rate=0.02"),
):
    """Serve local Zoho CRM, Zoho Books and Zoho Accounts (OAuth) on one base URL until Ctrl-C.

    Example: crmbooks emulators --port 8900 --accounts 2000 --faults error_rate=0.05
    """
    from emulators import EmulatorConfig, Faults, Sizes, serve_forever

    sizes = Sizes(accounts=accounts, contacts_per_account=contacts_per_account,
                  unassociated_contacts=unassociated_contacts, vendors=vendors,
                  products=products, deals=deals, books_customers=books_customers,
                  books_vendors=books_vendors, books_items=books_items)
    try:
        fault_spec = Faults.parse_spec(faults) if faults else Faults()
    except (TypeError, ValueError) as exc:
        fail(f"--faults is not valid ({exc}); use e.g. error_rate=0.1,rate_429=0.05", wrap=True)
    config = EmulatorConfig(
        seed=seed, sizes=sizes, client_id=client_id, client_secret=client_secret,
        refresh_token=refresh_token, books_rate_limit=books_rate_limit,
        books_daily_limit=books_daily_limit, crm_concurrency=crm_concurrency,
        books_org_ids=[str(20099001 + i) for i in range(max(1, books_orgs))],
    )

    def ready(server) -> None:
        server.emu.set_faults(fault_spec)
        console.print(f"[bold green]Zoho emulators[/] listening on [bold]{server.base_url}[/]")
        console.print(f"  accounts (OAuth): {server.base_url}/oauth/v2/token")
        console.print(f"  CRM:   {server.base_url}/crm/v8    Books: {server.base_url}/books/v3")
        console.print(f"  Books organization id: {', '.join(config.books_org_ids)}")
        console.print(f"  client id: {client_id}  client secret: {client_secret}  "
                      f"refresh token: {refresh_token}")
        console.print(f"  sample data: seed {seed}, {dataclasses.asdict(sizes)}")
        if faults:
            console.print(f"  faults: {dataclasses.asdict(fault_spec)}")
        console.print("Press Ctrl-C to stop.")

    try:
        serve_forever(config, host, port, on_ready=ready)
    except RuntimeError as exc:
        fail(f"{exc}; is port {port} already in use? Try --port 0.", wrap=True)
