"""Operator commands around the sync: connect, configure, status, history, pause/resume,
disable/enable (cli.md; F1, F2, F5–F9, F21–F23).

They are registered on the `crmbooks` app by :func:`register`. Errors follow the CLI policy:
one sentence on stderr saying what is wrong and what to do, and an exit code (2 for
configuration, credentials or prerequisites, 3 for paused or disabled). Secrets never reach
the database or the terminal: `connect` stores only the non-secret connection and puts the
secrets in Prefect Secret blocks unless they came from the environment.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from crmbooks.settings import (
    DC_HOSTS,
    MODULES,
    TRANSACTION_RESOURCES,
    SettingsError,
    parse_connection,
    parse_module_settings,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_PAUSED = 0, 1, 2, 3

#: Which option of `configure` applies to which modules (others are refused, not ignored).
OPTION_MODULES: dict[str, tuple[str, ...]] = {
    "crm_module": ("customers",),
    "include_unassociated_contacts": ("customers",),
    "contact_view": ("customers",),
    "scope": ("customers", "vendors", "items"),
    "duplicates": ("customers", "vendors", "items"),
    "view": ("customers", "vendors", "items"),
    "maps": ("customers", "vendors", "items", "transactions"),
    "modules": ("transactions",),
    "mode": ("deals",),
    "create_stage": ("deals",),
    "accept_stage": ("deals",),
    "invoice_on_accept": ("deals",),
}
OPTION_FLAGS = {
    "crm_module": "--crm-module", "include_unassociated_contacts":
    "--include-unassociated-contacts", "contact_view": "--contact-view", "scope": "--scope",
    "duplicates": "--duplicates", "view": "--view", "maps": "--map/--unmap",
    "modules": "--types", "mode": "--mode", "create_stage": "--create-stage",
    "accept_stage": "--accept-stage", "invoice_on_accept": "--invoice-on-accept",
}
#: CRM module whose custom views a view setting names (F8).
VIEW_MODULES = {"accounts": "Accounts", "contacts": "Contacts", "accounts+contacts": "Accounts",
                "vendors": "Vendors", "items": "Products"}
SECRET_ENV = {"client_secret": "CRMBOOKS_CLIENT_SECRET", "refresh_token": "CRMBOOKS_REFRESH_TOKEN"}


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one clear sentence on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the operator commands to the `crmbooks` app."""
    app.command()(connect)
    app.command()(configure)
    app.command()(status)
    app.command()(history)
    app.command()(pause)
    app.command()(resume)
    app.command()(disable)
    app.command()(enable)


# ----------------------------------------------------------------------------------- connect
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
        [], "--extra-books-org", help="Further Books organization ids (F4: CRM → Books only)."),
    client_secret: str | None = typer.Option(
        None, "--client-secret", help="For scripts; prefer env CRMBOOKS_CLIENT_SECRET."),
    refresh_token: str | None = typer.Option(
        None, "--refresh-token", help="For scripts; prefer env CRMBOOKS_REFRESH_TOKEN."),
):
    """Verify both sides and the prerequisites, then store the connection.

    Checks the credentials on Zoho CRM and Zoho Books, the CRM edition (Professional or
    above) and, with CRM multi-currency on, that both base currencies are equal. Nothing is
    stored unless every check passes. Secrets come from CRMBOOKS_CLIENT_SECRET and
    CRMBOOKS_REFRESH_TOKEN; passed as flags, they are saved as Prefect Secret blocks.

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

    quiet = _quiet_connector_logs()
    try:
        with console.status("Verifying Zoho CRM and Zoho Books…"):
            check = verify(config, settings.extra_books_org_ids)
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
    store_connection(store, config, check, dc=dc,
                     extra_org_ids=list(settings.extra_books_org_ids))
    reset_runtime_cache()

    console.print("[bold green]Connected.[/] Verified:")
    console.print(check.summary(), highlight=False, markup=False)
    books = check.books_org
    console.print(f"Shared with the CRM side (F1): {books.get('name')}, "
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


def _quiet_connector_logs():
    """Hide the connectors' retry warnings during connect (the error says it all); returns
    a function that restores the level."""
    logger = logging.getLogger("crmbooks")
    before = logger.level
    logger.setLevel(logging.ERROR)
    return lambda: logger.setLevel(before)


# --------------------------------------------------------------------------------- configure
def configure(
    module: str = typer.Argument(..., help="customers, vendors, items, transactions or deals."),
    crm_module: str | None = typer.Option(
        None, "--crm-module", help="customers: accounts | contacts | accounts+contacts (F5)."),
    include_unassociated_contacts: bool | None = typer.Option(
        None, "--include-unassociated-contacts/--exclude-unassociated-contacts",
        help="customers with accounts+contacts: also sync contacts without an account."),
    scope: str | None = typer.Option(None, "--scope", help="fetch (CRM → Books) | both (F6)."),
    duplicates: str | None = typer.Option(
        None, "--duplicates", help="clone | overwrite | skip (F7)."),
    view: str | None = typer.Option(
        None, "--view", help="CRM custom view name or id (F8); \"\" clears it."),
    contact_view: str | None = typer.Option(
        None, "--contact-view", help="customers with accounts+contacts: the contacts view."),
    maps: list[str] = typer.Option(
        [], "--map", help="Extra field map BOOKS_FIELD=CRM_FIELD (F9); repeat for more. "
        "transactions: a Books custom field, both ways, e.g. cf_po_ref=PO_Ref__c, or "
        "invoices:cf_po_ref=PO_Ref__c for one type only."),
    unmap: list[str] = typer.Option(
        [], "--unmap", help="Remove the extra field map of this BOOKS_FIELD."),
    types: str | None = typer.Option(
        None, "--types",
        help="transactions: comma list of estimates,salesorders,invoices,purchaseorders."),
    mode: str | None = typer.Option(None, "--mode", help="deals: quote | invoice (F15/F16)."),
    create_stage: str | None = typer.Option(
        None, "--create-stage", help="deals, quote mode: stage that creates a draft quote."),
    accept_stage: str | None = typer.Option(
        None, "--accept-stage", help="deals, quote mode: stage that accepts the quote."),
    invoice_on_accept: bool | None = typer.Option(
        None, "--invoice-on-accept/--no-invoice-on-accept",
        help="deals, quote mode: turn an accepted quote into an invoice."),
    enabled: bool | None = typer.Option(
        None, "--enable/--disable",
        help="Turn syncing of this MODULE on or off (configuring deals turns them on)."),
    note: str | None = typer.Option(None, "--note", help="Why this change (kept in history)."),
    sync: bool = typer.Option(False, "--sync", help="Save and sync: run MODULE right away."),
    org: str | None = typer.Option(
        None, "--org", help="Books organization these settings are for (default: the primary; "
        "an extra one syncs CRM → Books only whatever its scope, F4)."),
):
    """Save a new version of a module's settings; it applies from the next run (F23).

    The options given are merged over the active settings, validated, and saved as a new
    version (earlier versions are kept); the change is printed as a diff. --sync also runs
    the module now ("save and sync").

    Example: crmbooks configure customers --crm-module accounts+contacts --duplicates skip
    --view "All Accounts" --map cf_tier=Tier --sync

    Example: crmbooks configure transactions --types estimates,invoices
    --map cf_po_ref=PO_Ref__c --enable

    Example: crmbooks configure deals --mode quote --create-stage "Proposal/Price Quote"
    --accept-stage "Closed Won" --invoice-on-accept
    """
    module = module.strip().lower()
    if module not in MODULES:
        fail(f"unknown module {module!r}: use one of {', '.join(MODULES)}")
    given: dict[str, Any] = {
        "crm_module": crm_module, "include_unassociated_contacts": include_unassociated_contacts,
        "scope": scope, "duplicates": duplicates, "view": view, "contact_view": contact_view,
        "mode": mode, "create_stage": create_stage, "accept_stage": accept_stage,
        "invoice_on_accept": invoice_on_accept,
        "modules": [t.strip() for t in types.split(",") if t.strip()] if types is not None
        else None,
        "maps": (maps or unmap) or None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    for key in given:
        if module not in OPTION_MODULES[key]:
            owners = " and ".join(OPTION_MODULES[key])
            fail(f"{OPTION_FLAGS[key]} applies only to {owners}, not to {module}")

    store = _settings_store(org)
    active = store.active_settings(module)
    base_version, base = active if active else (0, {})
    previous = _normalised(module, base)
    merged = _merge(module, dict(previous), given, maps, unmap, enabled)
    try:
        new = parse_module_settings(module, merged).model_dump(mode="json")
    except SettingsError as exc:
        fail(f"{exc} (nothing was saved)")
    if "view" in given or "contact_view" in given:
        _check_views(module, new)

    diff = _diff(previous, new)
    if active and not diff:
        console.print(f"No change: {module} settings version {base_version} stays active.")
    else:
        version = store.save_settings(module, new, note=note)
        kept = f"; version {base_version} is kept in history" if base_version else ""
        console.print(f"[bold green]Saved[/] {module} settings version {version} "
                      f"(applies from the next run{kept}).", highlight=False)
        if diff:
            console.print(_diff_table(diff))
        else:
            console.print("No setting differs from the defaults.")
    if sync:
        # Imported here: run_sync lives in crmbooks.cli, which imports this module.
        from crmbooks.cli import run_sync

        raise typer.Exit(run_sync([module], dry_run=False, json_out=False,
                                  **({"orgs": [store.org_id]} if org else {})))


def _settings_store(org: str | None = None):
    """The store scoped to a Books organization (default: the primary), where runs read
    their settings."""
    from crmbooks.runtime import open_store
    from crmbooks.store.repo import Store

    base = open_store()
    row = base.connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first (settings belong "
             "to a Books organization)")
    connected = [row.books_org_id, *[str(o) for o in row.extra_books_org_ids or []]]
    if org and org.strip() not in connected:
        fail(f"Books organization {org} is not connected: use one of {', '.join(connected)}")
    return Store(base.engine, org_id=org.strip() if org else row.books_org_id)


def _normalised(module: str, settings: dict) -> dict:
    """Stored settings with every default filled in (as JSON), or as stored if no longer valid."""
    try:
        return parse_module_settings(module, settings).model_dump(mode="json")
    except SettingsError:
        return dict(settings)


def _merge(module: str, current: dict, given: dict, maps: list[str], unmap: list[str],
           enabled: bool | None) -> dict:
    """The options given on the command line over the current settings.

    Options that only make sense with another value are dropped when that value changes
    (e.g. stages when deals switch to invoice mode), unless given again, so switching a mode
    does not fail on leftovers the operator did not type.
    """
    from crmbooks.settings import FieldMapSetting

    merged = dict(current)
    for key, value in given.items():
        if key == "maps":
            continue
        if key in ("view", "contact_view") and value.strip() == "":
            value = None  # "" clears a view: sync the whole module again
        merged[key] = value
    if module == "customers" and merged.get("crm_module") != "accounts+contacts":
        for key, default in (("include_unassociated_contacts", False), ("contact_view", None)):
            if key not in given:
                merged[key] = default
    if module == "deals":
        if merged.get("mode") == "invoice":
            for key, default in (("create_stage", None), ("accept_stage", None),
                                 ("invoice_on_accept", False)):
                if key not in given:
                    merged[key] = default
        if enabled is None and given:
            enabled = True  # configuring triggers means wanting them
    if enabled is not None:
        merged["enabled"] = enabled
    if maps or unmap:
        current_maps = {_map_key(m): m for m in merged.get("maps") or []}
        for text in maps:
            section, text = _map_section(module, text)
            try:
                pair = FieldMapSetting.parse(text).model_copy(update={"section": section})
            except SettingsError as exc:
                fail(str(exc))
            except ValueError as exc:
                fail(f"--map {text!r} is not valid: {exc}")
            current_maps[_map_key(pair.model_dump(mode="json"))] = pair.model_dump(mode="json")
        for books_field in unmap:
            section, key = _map_section(module, books_field.strip())
            key = f"custom_fields.{key}" if key.startswith("cf_") else key
            key = f"{section}:{key}" if section else key
            if current_maps.pop(key, None) is None:
                fail(f"--unmap {books_field!r}: there is no extra map for that Books field "
                     f"(extra maps: {', '.join(current_maps) or 'none'})")
        merged["maps"] = list(current_maps.values())
    return merged


def _map_section(module: str, text: str) -> tuple[str | None, str]:
    """transactions: `invoices:cf_x=Y__c` maps for invoices only → ("invoices", "cf_x=Y__c")."""
    head, sep, rest = text.partition(":")
    if module == "transactions" and sep and head.strip() in TRANSACTION_RESOURCES:
        return head.strip(), rest
    return None, text


def _map_key(m: dict) -> str:
    """An extra map's identity: its Books field (and, for transactions, its type)."""
    return f"{m['section']}:{m['books']}" if m.get("section") else m["books"]


def _check_views(module: str, settings: dict) -> None:
    """F8: refuse a view the CRM does not have; skipped (with a note) when CRM is unreachable."""
    from crmbooks.connectors.errors import ZohoError
    from crmbooks.runtime import get_runtime

    wanted = []
    if settings.get("view"):
        wanted.append(("--view", VIEW_MODULES[settings.get("crm_module") or module],
                       settings["view"]))
    if settings.get("contact_view"):
        wanted.append(("--contact-view", "Contacts", settings["contact_view"]))
    if not wanted:
        return
    quiet = _quiet_connector_logs()
    missing = []
    try:
        crm = get_runtime().crm
        for flag, crm_module, name in wanted:
            if crm.find_view(crm_module, name) is None:
                names = [v.get("display_value") or v.get("name")
                         for v in crm.custom_views(crm_module)]
                missing.append((flag, crm_module, name, names))
    except (ZohoError, LookupError, RuntimeError) as exc:  # not connected, no secret, offline
        console.print(f"[yellow]Note:[/] the view was not checked against the CRM ({exc}).",
                      highlight=False)
    finally:
        quiet()
    for flag, crm_module, name, names in missing[:1]:
        fail(f"{flag} {name!r}: the CRM has no such {crm_module} view; use one of: "
             f"{', '.join(str(n) for n in names[:15]) or 'none'} (nothing was saved)")


def _diff(before: dict, after: dict) -> list[tuple[str, Any, Any]]:
    """(setting, before, after) for every setting that changed, in a stable order."""
    keys = list(dict.fromkeys([*before, *after]))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def _diff_table(diff: list[tuple[str, Any, Any]]) -> Table:
    """The diff as a table: setting, before, after."""
    table = Table("setting", "before", "after", title="changes")
    for key, old, new in diff:
        table.add_row(key, _show(old), _show(new))
    return table


def _show(value: Any) -> str:
    """A setting value for the terminal (maps as BOOKS=CRM)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "books" in value[0]:
            return ", ".join(f"{_map_key(m)}={m['crm']}" for m in value)
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ------------------------------------------------------------------------------------ status
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Show the connection, paused/disabled, each module's settings and its last run.

    Never shows a secret, only where it comes from. Exit code: 0 connected and active,
    2 not connected, 3 paused or disabled.

    Example: crmbooks status
    """
    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.store.repo import Store

    base = open_store()
    row = base.connection()
    if row is None:
        if json_out:
            typer.echo(json.dumps({"connection": None, "modules": {}}))
        else:
            console.print("Not connected: run `crmbooks connect` (see `crmbooks connect "
                          "--help`).")
        raise typer.Exit(EXIT_CONFIG)
    store = Store(base.engine, org_id=row.books_org_id or "")
    modules = {}
    for module in MODULES:
        active = store.active_settings(module)
        runs = base.list_runs(module=module, limit=1)
        last = None
        if runs:
            last = run_to_json(base, runs[0])
            last["started_at"] = _when(runs[0].started_at)
            last["finished_at"] = _when(runs[0].finished_at)
        modules[module] = {
            "version": active[0] if active else None,
            "settings": _normalised(module, active[1]) if active
            else parse_module_settings(module).model_dump(mode="json"),
            "last_run": last,
        }
    connection = _connection_info(row)
    code = EXIT_PAUSED if (row.paused or row.disabled) else EXIT_OK
    if json_out:
        typer.echo(json.dumps({"connection": connection, "modules": modules}, indent=2,
                              default=str))
        raise typer.Exit(code)
    _print_connection(connection)
    table = Table("module", "version", "settings", "last run", title="modules")
    for module, info in modules.items():
        settings = info["settings"]
        shown = "; ".join(f"{k}={_show(v)}" for k, v in settings.items())
        table.add_row(module, str(info["version"] or "defaults"), shown,
                      _last_run_text(info["last_run"]))
    console.print(table)
    raise typer.Exit(code)


def _connection_info(row) -> dict:
    """The stored connection as a dict for display (non-secret by construction)."""
    secrets = {name: (f"environment variable {env}" if os.environ.get(env)
                      else "Prefect Secret block (not read here)")
               for name, env in SECRET_ENV.items()}
    books_org = dict(row.books_org or {})
    extra = books_org.pop("extra", [])
    return {
        "dc": row.dc, "api_url": row.api_url, "accounts_url": row.accounts_url,
        "crm_api_url": row.crm_api_url, "books_api_url": row.books_api_url,
        "client_id": row.client_id, "books_org_id": row.books_org_id,
        "extra_books_org_ids": list(row.extra_books_org_ids or []),
        "crm_org": row.crm_org or {}, "books_org": books_org, "extra_books_orgs": extra,
        "secrets": secrets, "paused": bool(row.paused), "disabled": bool(row.disabled),
        "verified_at": _when(row.updated_at),
    }


def _print_connection(info: dict) -> None:
    """The connection block of `status`."""
    state = ("[bold red]DISABLED[/] (`crmbooks enable` turns it on)" if info["disabled"]
             else "[bold yellow]PAUSED[/] (`crmbooks resume` turns it on)" if info["paused"]
             else "[green]active[/]")
    console.print(f"Sync: {state}")
    where = f"data centre {info['dc']}" if info["dc"] else f"API {info['api_url']}"
    console.print(f"Connection: {where}, accounts {info['accounts_url']}"
                  + (f", CRM {info['crm_api_url']}" if info["crm_api_url"] else "")
                  + (f", Books {info['books_api_url']}" if info["books_api_url"] else ""),
                  highlight=False, markup=False)
    console.print(f"Client id: {info['client_id']}; client secret: "
                  f"{info['secrets']['client_secret']}; refresh token: "
                  f"{info['secrets']['refresh_token']}", highlight=False, markup=False)
    crm = info["crm_org"]
    console.print(f"CRM: {crm.get('name')} ({crm.get('edition')} edition, {crm.get('currency')}, "
                  f"multi-currency {'on' if crm.get('multi_currency') else 'off'})",
                  highlight=False, markup=False)
    books = info["books_org"]
    console.print(f"Books: organization {info['books_org_id']}: {books.get('name')}, "
                  f"{books.get('email') or 'no email'}, {books.get('country') or '?'}, "
                  f"{books.get('currency')}", highlight=False, markup=False)
    extras = {str(o.get("organization_id")): o for o in info["extra_books_orgs"]}
    for org_id in info["extra_books_org_ids"]:
        org = extras.get(org_id, {})
        console.print(f"Books (extra, CRM → Books only): organization {org_id}: "
                      f"{org.get('name')}, {org.get('currency')}", highlight=False, markup=False)
    console.print(f"Verified at: {info['verified_at']}", highlight=False, markup=False)


def _last_run_text(run: dict | None) -> str:
    """A run in one cell: when, state, and what it did on each side."""
    if not run:
        return "never"
    books, crm = run["counts"]["books"], run["counts"]["crm"]
    return (f"{run['started_at']} {run['state']}{' (dry run)' if run['dry_run'] else ''}\n"
            f"Books {_counts_text(books)}\nCRM {_counts_text(crm)}")


def _counts_text(counts: dict) -> str:
    """+created ~updated -deleted, skipped, conflicts, failed."""
    return (f"+{counts['created']} ~{counts['updated']} -{counts['deleted']} "
            f"skip {counts['skipped']} conf {counts['conflicts']} fail {counts['failed']}")


def _when(moment) -> str | None:
    """A stored timestamp as 'YYYY-MM-DD HH:MM:SS UTC'."""
    from crmbooks.store.repo import as_utc

    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else None


# ----------------------------------------------------------------------------------- history
def history(
    module: str | None = typer.Option(None, "--module", help="Only this module's runs."),
    run_id: str | None = typer.Option(None, "--run", help="One run (id or its first characters):"
                                      " every record it changed and its failures."),
    failures: bool = typer.Option(False, "--failures", help="Unresolved failures, with hints."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {\"runs\": [...]}."),
):
    """Sync history (F21): runs newest first, one run's record changes (B4), or failures.

    Example: crmbooks history --module customers --limit 5

    Example: crmbooks history --run 3f2a9c1e    |    crmbooks history --failures
    """
    from crmbooks.reporting import failure_rows, run_to_json
    from crmbooks.runtime import open_store

    if module is not None and module not in MODULES:
        fail(f"unknown module {module!r}: use one of {', '.join(MODULES)}")
    store = open_store()
    if failures:
        rows = failure_rows(store.failures(module=module, unresolved_only=True))
        if json_out:
            typer.echo(json.dumps({"failures": rows}, indent=2))
            return
        _print_failures(rows, "unresolved failures")
        return
    if run_id:
        run = _find_run(store, run_id)
        report = run_to_json(store, run)
        events = _event_rows(store, run.id)
        if json_out:
            typer.echo(json.dumps({"runs": [report], "events": events}, indent=2, default=str))
            return
        _print_run(run, report, events)
        _print_failures(failure_rows(store.failures(run_id=run.id, unresolved_only=False)),
                        "failures of this run")
        return
    runs = store.list_runs(module=module, limit=limit)
    if json_out:
        typer.echo(json.dumps({"runs": [run_to_json(store, r) for r in runs]}, indent=2))
        return
    if not runs:
        console.print("No runs yet: `crmbooks sync all --dry-run` previews the first one.")
        return
    table = Table("started", "module", "run", "state", "Books", "CRM", "API calls",
                  title="sync history (newest first)")
    for run in runs:
        report = run_to_json(store, run)
        state = report["state"] + (" (dry run)" if report["dry_run"] else "")
        table.add_row(_when(run.started_at), run.module, run.id[:8], state,
                      _counts_text(report["counts"]["books"]),
                      _counts_text(report["counts"]["crm"]),
                      f"CRM {report['api_calls']['crm']}, Books {report['api_calls']['books']}")
    console.print(table)
    console.print("Details of one run: `crmbooks history --run RUN`.", highlight=False)


def _find_run(store, run_id: str):
    """A run by its id or a unique prefix of it; exit 2 when none or several match."""
    from sqlmodel import select

    from crmbooks.store.tables import Run

    run = store.run(run_id.strip())
    if run is not None:
        return run
    with store.session() as s:
        found = list(s.exec(select(Run).where(Run.id.startswith(run_id.strip())).limit(2)).all())
    if len(found) == 1:
        return found[0]
    if found:
        fail(f"--run {run_id!r} matches several runs: give more characters of the id")
    fail(f"no run {run_id!r}: `crmbooks history` lists the run ids")


def _event_rows(store, run_id: str) -> list[dict]:
    """A run's record events (B4) as plain dicts."""
    from crmbooks.reporting import text_or_none

    frame = store.events(run_id=run_id)
    rows = []
    for event in frame.to_dict("records"):
        rows.append({
            "record": event["record_key"], "name": text_or_none(event["name"]),
            "side": event["side"], "action": event["action"],
            "crm_id": text_or_none(event["crm_id"]), "books_id": text_or_none(event["books_id"]),
            "changes": event["changes"] if isinstance(event["changes"], list) else [],
            "conflicts": event["conflicts"] if isinstance(event["conflicts"], list) else [],
            "message": text_or_none(event["message"]),
        })
    return rows


def _print_run(run, report: dict, events: list[dict]) -> None:
    """One run: header, counts and each record's changed fields (from → to)."""
    state = report["state"] + (" (dry run)" if report["dry_run"] else "")
    console.print(f"Run {run.id} of {run.module}: {state}", highlight=False)
    console.print(f"Started {_when(run.started_at)}, finished {_when(run.finished_at) or '—'}, "
                  f"settings version {run.settings_version or '—'}", highlight=False)
    if run.message:
        console.print(run.message, highlight=False, markup=False)
    console.print(f"Books {_counts_text(report['counts']['books'])}; CRM "
                  f"{_counts_text(report['counts']['crm'])}; API calls CRM "
                  f"{report['api_calls']['crm']}, Books {report['api_calls']['books']}",
                  highlight=False)
    if not events:
        console.print("No record changes recorded for this run.")
        return
    table = Table("record", "side", "action", "fields (from → to)", title="record changes")
    for event in events:
        changes = [f"{c.get('field')}: {_show(c.get('before'))} → {_show(c.get('after'))}"
                   for c in event["changes"]]
        changes += [f"conflict {c.get('field')}: CRM {_show(c.get('crm'))} / Books "
                    f"{_show(c.get('books'))}, kept {c.get('winner')}" for c in event["conflicts"]]
        if event["message"]:
            changes.append(str(event["message"]))
        label = event["name"] or event["record"]
        if event["name"]:
            label = f"{event['name']} ({event['record']})"
        table.add_row(label, event["side"], event["action"], "\n".join(changes) or "—")
    console.print(table)


def _print_failures(rows: list[dict], title: str) -> None:
    """Failures with the field, the provider's code and message, and what to do."""
    if not rows:
        console.print(f"No {title}.")
        return
    table = Table("record", "module", "side", "field", "code", "message", "what to do",
                  title=title)
    for row in rows:
        table.add_row(row["record"] or "—", row["module"] or "—", row["side"] or "—",
                      row["field"] or "—", row["code"] or "—", row["message"],
                      row["hint"] or "—")
    console.print(table)


# ---------------------------------------------------------------------- pause, resume, ...
def pause():
    """Pause syncing (F22): scheduled and manual syncs refuse to start (exit 3).

    A run already in progress completes first. `crmbooks resume` turns syncing back on.

    Example: crmbooks pause
    """
    _set_flag("paused", True, "Paused: scheduled and manual syncs will not start (a run "
              "already in progress completes); `crmbooks resume` turns them back on.",
              "Already paused.")
    _schedules()


def resume():
    """Resume syncing after `crmbooks pause` (F22): scheduled and manual syncs run again.

    Example: crmbooks resume
    """
    _set_flag("paused", False, "Resumed: scheduled and manual syncs run again.",
              "Not paused: nothing to resume.")
    _schedules()


def _schedules() -> None:
    """The Prefect deployments' schedules follow the flags, when a server answers (F22, F28):
    paused while crmbooks is paused or disabled, active otherwise."""
    from crmbooks.runtime import open_store
    from deployments.control import set_schedules_paused

    row = open_store().connection()
    console.print(set_schedules_paused(bool(row.paused or row.disabled)), highlight=False)


def disable():
    """Disable the integration (F28): every sync refuses to start (exit 3) until `crmbooks
    enable`, and the transaction data crmbooks put on the CRM side is removed (the Books quote
    shown on each deal, the Books id on CRM transactions). Books is left untouched; settings
    and links are kept, so `enable` (or `connect` to another Books organization) goes on.

    Example: crmbooks disable
    """
    _set_flag("disabled", True, "Disabled: no sync will start until `crmbooks enable`.",
              "Already disabled.")
    _schedules()
    _remove_crm_transaction_data()


def _remove_crm_transaction_data() -> None:
    """The CRM side of F28 (a failure is reported; the integration stays disabled)."""
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
