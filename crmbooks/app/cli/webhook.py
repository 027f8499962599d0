"""`crmbooks webhook`: the event receiver, in the foreground until Ctrl-C."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import use_prefect_server


def webhook(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL the CRM and Books reach this receiver at "
                                   "(default http://HOST:PORT)."),
    catch_up_every: float = typer.Option(
        120, "--catch-up-every", min=0, help="Minutes between catch-up runs of the deal "
                                             "triggers and transactions, the first at start "
                                             "(0: none; `crmbooks up` has schedules instead)."),
    debounce: float = typer.Option(0.3, "--debounce", min=0, hidden=True,
                                   help="Seconds an id must be quiet before its run."),
):
    """Receive CRM and Books events: deal triggers, transactions, and the customers,
    vendors and items changed, run within seconds.

    Registers a CRM notification channel (Deals, the transaction modules, Accounts, Contacts,
    Vendors and Products) with a random
    token kept under CRMBOOKS_HOME, and checks the shared secret of Books webhooks (header
    X-Webhook-Secret; the secret is in CRMBOOKS_HOME/receiver.json), one URL per connected
    Books organization (/books/webhook/ORG_ID): registered with the emulators by itself,
    printed to configure in real Books. Events with a wrong token or secret are rejected,
    and so is any malformed request (4xx with the reason).

    Every accepted event is kept in the state database until a run has handled it: a run
    that fails is retried with a growing delay, also after a restart, and `crmbooks status`
    shows what is pending or failed. A catch-up run of the deal triggers and transactions at
    start and every two hours (--catch-up-every) picks up what they missed while nothing
    listened; customers, vendors and items catch up on their schedules.
    """
    from crmbooks.app.receiver.server import serve

    use_prefect_server()
    serve(host=host, port=port, public_url=public_url, catch_up_every_s=catch_up_every * 60,
          debounce_s=debounce)
