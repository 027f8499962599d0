"""`crmbooks status`: the connection, paused/disabled, each module's settings and last run, and
the transaction custom fields that found no partner of the same label."""

from __future__ import annotations

import json
import os

import typer
from rich.table import Table

from crmbooks.app.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PAUSED,
    SECRET_ENV,
    console,
    counts_text,
    normalised,
    print_table,
    show,
    when,
)
from crmbooks.settings import MODULES, SettingsError, parse_module_settings


def status(json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Show the connection, paused/disabled, each module's settings and its last run.

    With transactions on, also lists per transaction module the custom fields paired by
    label and those that found no partner, with why (from the fields the last run read).

    Never shows a secret, only where it comes from. Exit code: 0 connected and active,
    2 not connected, 3 paused or disabled.

    Example: crmbooks status
    """
    from crmbooks.reporting import run_to_json
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

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
            last["started_at"] = when(runs[0].started_at)
            last["finished_at"] = when(runs[0].finished_at)
        modules[module] = {
            "version": active[0] if active else None,
            "settings": normalised(module, active[1]) if active
            else parse_module_settings(module).model_dump(mode="json"),
            "last_run": last,
        }
    modules["transactions"]["custom_fields"] = _transaction_fields(
        row.books_org_id, modules["transactions"]["settings"])
    connection = _connection_info(row)
    events = base.inbox_summary()
    code = EXIT_PAUSED if (row.paused or row.disabled) else EXIT_OK
    if json_out:
        typer.echo(json.dumps({"connection": connection, "modules": modules,
                               "events": events}, indent=2, default=str))
        raise typer.Exit(code)
    _print_connection(connection)
    _print_events(events)
    table = Table("module", "version", "settings", "last run", title="modules")
    for module, info in modules.items():
        settings = info["settings"]
        shown = "; ".join(f"{k}={show(v)}" for k, v in settings.items())
        table.add_row(module, str(info["version"] or "defaults"), shown,
                      _last_run_text(info["last_run"]))
    print_table(table)
    _print_transaction_fields(modules["transactions"]["custom_fields"])
    raise typer.Exit(code)


def _transaction_fields(org_id: str | None, settings: dict) -> dict:
    """Per synced transaction module (with transactions on): the custom fields paired by
    label, and those with no partner and why — worked out from the field metadata the last
    run cached, so `status` makes no request ({} when transactions are off)."""
    from crmbooks.metadata import books_fields_key, crm_fields_key, last_known
    from crmbooks.sync.label_pairs import pair_module
    from crmbooks.sync.registry import document_type

    try:
        parsed = parse_module_settings("transactions", settings)
    except SettingsError:  # stored settings no longer valid: the run says so, not status
        return {}
    if not parsed.enabled:
        return {}
    out = {}
    for resource in parsed.modules:
        module = document_type(resource).crm.module
        crm = last_known(org_id, crm_fields_key(module))
        books = last_known(org_id, books_fields_key(resource))
        if crm is None or books is None:
            out[module] = {"resource": resource, "known": False, "paired": [], "unpaired": []}
            continue
        pairs, unpaired = pair_module(module, resource, crm, books, parsed.maps)
        out[module] = {"resource": resource, "known": True,
                       "paired": [{k: p[k] for k in ("crm", "books", "label")} for p in pairs],
                       "unpaired": unpaired}
    return out


def _print_transaction_fields(fields: dict) -> None:
    """The transaction custom fields that found no partner of the same label, and why."""
    for module, info in fields.items():
        head = f"{module} ↔ Books {info['resource']} custom fields"
        if not info["known"]:
            console.print(f"{head}: not read yet (the next transactions run reads them)",
                          highlight=False, markup=False)
            continue
        paired = ", ".join(f"{p['crm']}={p['books']}" for p in info["paired"]) or "none"
        console.print(f"{head}: paired by label: {paired}; with no partner: "
                      f"{len(info['unpaired']) or 'none'}", highlight=False, markup=False)
        for u in info["unpaired"]:
            side = "CRM" if u["side"] == "crm" else "Books"
            console.print(f"  {side} {u['field']} ({u['label']!r}): {u['reason']}",
                          highlight=False, markup=False)


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
        "verified_at": when(row.updated_at),
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
    owner = crm.get("owner")
    chosen = (f"{owner.get('name')} <{owner.get('email')}>" if owner
              else "the connecting user (`crmbooks connect … --crm-owner EMAIL` to choose)")
    console.print(f"Owner of records created in the CRM: {chosen}", highlight=False,
                  markup=False)
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


def _print_events(events: dict) -> None:
    """The receiver's events not handled yet: pending (waiting for or between runs) and
    failed (given up after their retries)."""
    console.print(f"Events: {events['pending']} pending"
                  + (f" (oldest received {events['oldest_pending']})"
                     if events["oldest_pending"] else "")
                  + f", {events['failed']} failed", highlight=False, markup=False)
    for event in events["failed_events"]:
        console.print(f"  failed {event['worker']} {event['key']} after {event['attempts']} "
                      f"attempt(s): {event['error']}", highlight=False, markup=False)


def _last_run_text(run: dict | None) -> str:
    """A run in one cell: when, state, and what it did on each side."""
    if not run:
        return "never"
    books, crm = run["counts"]["books"], run["counts"]["crm"]
    return (f"{run['started_at']} {run['state']}{' (dry run)' if run['dry_run'] else ''}\n"
            f"Books {counts_text(books)}\nCRM {counts_text(crm)}")
