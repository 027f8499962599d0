"""`crmbooks connect`: verify both sides and the prerequisites, then store the connection.

Secrets never reach the database or the terminal: `connect` stores only the non-secret
connection and puts the secrets in Prefect Secret blocks unless they came from the
environment.
"""

from __future__ import annotations

import os

import typer
from pydantic import SecretStr

from crmbooks.app.cli.common import SECRET_ENV, console, fail, quiet_connector_logs
from crmbooks.settings import DC_HOSTS, SettingsError, parse_connection


def connect(
    dc: str | None = typer.Option(None, "--dc", help="Zoho data centre: us|eu|in|au|cn|jp|ca|sa."),
    api_url: str | None = typer.Option(None, "--api-url", help="API base URL (instead of --dc)."),
    accounts_url: str | None = typer.Option(
        None, "--accounts-url", help="Zoho Accounts (OAuth) base URL (with --api-url)."),
    crm_api_url: str | None = typer.Option(None, "--crm-api-url",
                                           help="CRM base URL when it differs from the API URL."),
    books_api_url: str | None = typer.Option(None, "--books-api-url",
                                             help="Books base URL when it differs."),
    client_id: str = typer.Option(..., "--client-id", help="OAuth client id (not secret)."),
    books_org: str = typer.Option(..., "--books-org", help="Books organization id to sync."),
    extra_books_org: list[str] = typer.Option(
        [], "--extra-books-org", help="Further Books organization ids (synced CRM → Books only)."),
    crm_owner: str | None = typer.Option(
        None, "--crm-owner", help="Email of the active CRM user who owns every record crmbooks "
        "creates in the CRM (default: the connecting user)."),
    client_secret: str | None = typer.Option(
        None, "--client-secret", help="For scripts; prefer env CRMBOOKS_CLIENT_SECRET."),
    refresh_token: str | None = typer.Option(
        None, "--refresh-token", help="For scripts; prefer env CRMBOOKS_REFRESH_TOKEN."),
):
    """Verify both sides and the prerequisites, then store the connection.

    Checks the credentials on Zoho CRM and Zoho Books, the CRM edition (Professional or
    above), with CRM multi-currency on that both base currencies are equal, and that the
    --crm-owner user exists and is active; records created in the CRM afterwards are owned
    by that user. Nothing is stored unless every check passes. Secrets come from
    CRMBOOKS_CLIENT_SECRET and CRMBOOKS_REFRESH_TOKEN; passed as flags, they are saved as
    Prefect Secret blocks.

    Example: CRMBOOKS_CLIENT_SECRET=… CRMBOOKS_REFRESH_TOKEN=… crmbooks connect --dc eu
    --client-id 1000.ABC --books-org 20099001
    """
    import httpx

    from crmbooks.connect import ConnectError, store_connection, verify
    from crmbooks.connectors.config import ZohoConfig
    from crmbooks.connectors.errors import ZohoError
    from crmbooks.runtime import open_store, reset_runtime_cache
    from crmbooks.secrets import install_redaction, remember

    install_redaction()
    if dc and (api_url or accounts_url):
        fail("give either --dc or --api-url with --accounts-url, not both")
    dc = dc.strip().lower() if dc else None
    extras = [o.strip() for o in extra_books_org if o.strip()]
    try:
        settings = parse_connection({
            "dc": dc, "api_url": api_url, "accounts_url": accounts_url,
            "crm_api_url": crm_api_url, "books_api_url": books_api_url,
            "client_id": client_id, "books_org_id": books_org.strip(),
            "extra_books_org_ids": tuple(extras)})
    except SettingsError as exc:
        fail(f"{_flag_names(str(exc))}")
    if settings.books_org_id in settings.extra_books_org_ids:
        fail(f"--extra-books-org {settings.books_org_id} is already the main --books-org")
    if crm_owner is not None and not crm_owner.strip():
        fail("--crm-owner needs the email of an active CRM user")
    for extra in settings.extra_books_org_ids:
        if not extra.isdigit():
            fail(f"--extra-books-org {extra!r} is not a Books organization id (digits only)")

    secrets, sources = _resolve_secrets({"client_secret": client_secret,
                                         "refresh_token": refresh_token})
    for value in secrets.values():
        remember(value.get_secret_value())
    dc_api, dc_accounts = DC_HOSTS[dc] if dc else (None, None)
    config = ZohoConfig(
        accounts_url=accounts_url or dc_accounts, api_url=api_url or dc_api,
        crm_api_url=crm_api_url, books_api_url=books_api_url, client_id=settings.client_id,
        books_org_id=settings.books_org_id, **secrets)

    quiet = quiet_connector_logs()
    try:
        with console.status("Verifying Zoho CRM and Zoho Books…"):
            check = verify(config, settings.extra_books_org_ids, crm_owner)
    except ConnectError as exc:
        fail(f"{exc} (nothing was stored)")
    except ZohoError as exc:  # anything verify did not translate: still one sentence
        fail(f"{exc} (nothing was stored)")
    except httpx.HTTPError as exc:  # e.g. a URL httpx cannot use
        fail(f"the Zoho URLs could not be used ({type(exc).__name__}: {exc}); check --dc or "
             "--api-url/--accounts-url (nothing was stored)")
    finally:
        quiet()

    to_save = {name: secrets[name] for name, source in sources.items() if source == "flag"}
    where = {name: f"environment variable {SECRET_ENV[name]}" for name, s in sources.items()
             if s == "env"}
    where.update({name: "existing Prefect Secret block" for name, s in sources.items()
                  if s == "block"})
    if to_save:
        from crmbooks.secrets import save_secrets

        try:
            saved_in = save_secrets(to_save)
        except Exception as exc:  # Prefect API unreachable, etc.: the operator can use env
            fail(f"the secrets could not be saved to Prefect ({type(exc).__name__}: {exc}); "
                 "set CRMBOOKS_CLIENT_SECRET and CRMBOOKS_REFRESH_TOKEN instead (nothing was "
                 "stored)")
        where.update({name: saved_in for name in to_save})

    store = open_store()
    new = store.connection() is None
    store_connection(store, config, check, dc=dc,
                     extra_org_ids=list(settings.extra_books_org_ids))
    if new:
        from crmbooks.connect import seed_new_connection

        seed_new_connection(store, config.books_org_id)
    reset_runtime_cache()

    console.print("[bold green]Connected.[/] Verified:")
    console.print(check.summary(), highlight=False, markup=False)
    books = check.books_org
    console.print(f"Shared with the CRM side: {books.get('name')}, "
                  f"{books.get('email') or 'no email'}, {books.get('country') or '?'}",
                  highlight=False, markup=False)
    console.print(f"CRM edition {check.crm_org.get('edition')}: Professional or above, OK; "
                  + ("base currencies equal, OK" if check.crm_org.get("multi_currency")
                     else "CRM multi-currency off, no base-currency check needed"),
                  highlight=False, markup=False)
    for name, place in where.items():
        console.print(f"{name.replace('_', ' ')}: {place}", highlight=False, markup=False)
    row = store.connection()
    if row is not None and (row.paused or row.disabled):
        console.print("[yellow]Note:[/] the integration is still "
                      f"{'disabled' if row.disabled else 'paused'}; "
                      f"`crmbooks {'enable' if row.disabled else 'resume'}` turns it back on.")
    console.print("Next: `crmbooks configure customers --crm-module accounts` or "
                  "`crmbooks sync all --dry-run`.", highlight=False)


def _resolve_secrets(flags: dict[str, str | None]) -> tuple[dict[str, SecretStr], dict[str, str]]:
    """Each secret from its flag, else the environment, else an existing Prefect Secret block.

    Returns the values and where each came from (flag | env | block); fails with exit 2 when
    one is nowhere.
    """
    values, sources = {}, {}
    for name, flag in flags.items():
        env_value = os.environ.get(SECRET_ENV[name])
        if flag:
            values[name], sources[name] = SecretStr(flag), "flag"
        elif env_value:
            values[name], sources[name] = SecretStr(env_value), "env"
        else:
            block_value = _existing_block(name)
            if not block_value:
                fail(f"no {name.replace('_', ' ')} given: set {SECRET_ENV[name]} (or pass "
                     f"--{name.replace('_', '-')} in scripts)")
            values[name], sources[name] = SecretStr(block_value), "block"
    return values, sources


def _existing_block(name: str) -> str | None:
    """A secret already saved in a Prefect Secret block by an earlier connect, if any."""
    from crmbooks.secrets import block_name, load_block

    try:
        return load_block(block_name(name))
    except Exception:  # no Prefect API reachable: treat as absent, the message says what to set
        return None


def _flag_names(message: str) -> str:
    """Settings' field names in a validation message, rewritten as the CLI flags."""
    for field, flag in (("connection.books_org_id", "--books-org"),
                        ("connection.client_id", "--client-id"),
                        ("connection.dc", "--dc"), ("connection.", ""),
                        ("connection: ", ""),
                        ("api_url and accounts_url", "--api-url and --accounts-url"),
                        ("data centre (dc:", "data centre (--dc")):
        message = message.replace(field, flag)
    return message.replace("String should match pattern '^[0-9]+$'",
                           "must be the numeric organization id")
