"""`crmbooks webhook`: the event receiver, in the foreground until Ctrl-C."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import prepare_local_prefect


def webhook(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL the CRM and Books reach this receiver at "
                                   "(default http://HOST:PORT)."),
):
    """Receive CRM and Books events: deal triggers and transactions run within seconds.

    Registers a CRM notification channel (Deals and the transaction modules) with a random
    token kept under CRMBOOKS_HOME, and checks the shared secret of Books webhooks (header
    X-Webhook-Secret; the secret is in CRMBOOKS_HOME/receiver.json), one URL per connected
    Books organization (/books/webhook/ORG_ID): registered with the emulators by itself,
    printed to configure in real Books. Events with a wrong token or secret are rejected.
    With the receiver down, the scheduled catch-up runs pick the changes up.
    """
    from crmbooks.app.receiver.server import serve

    prepare_local_prefect()
    serve(host=host, port=port, public_url=public_url)
