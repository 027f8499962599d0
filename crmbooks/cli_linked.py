"""`crmbooks linked customers|vendors`: the Books contacts linked to the CRM (F25).

Read from the state store only (no API call): every Books customer or vendor that came from
the CRM or is linked to a CRM record, with how it was linked (sync, trigger, manual) and when
it last synced. Books' own "CRM" filter (`filter_by=Status.Crm`) lists the same contacts,
because every record crmbooks links carries Zoho's link field (zcrm_account_id …).
"""

from __future__ import annotations

import typer

#: What `linked` lists per kind of Books contact: (module, record kinds).
WHAT = {"customers": ("customers", ("accounts", "contacts")),
        "vendors": ("vendors", ("vendors",))}


def linked_rows(store, what: str) -> list[dict]:
    """The linked Books contacts of `customers` or `vendors`, by name then CRM id."""
    from crmbooks.sync.modules import module_spec

    module, kinds = WHAT[what]
    spec = module_spec(module)
    links = store.links(module)
    rows = []
    for link in links.to_dict("records") if not links.empty else []:
        if link["kind"] not in kinds:
            continue  # contact persons live inside their customer
        kind = spec.kind(link["kind"])
        name = (link["books_values"] or {}).get(kind.books_name_field) or kind.crm_name(
            link["crm_values"] or {})
        synced = link["updated_at"]
        rows.append({"crm_id": str(link["crm_id"]), "books_id": str(link["books_id"]),
                     "crm_module": link["crm_module"], "name": name or "",
                     "linked_by": link["made_by"] or "sync",
                     "last_synced": synced.isoformat() if synced is not None else None})
    return sorted(rows, key=lambda r: (r["name"].casefold(), r["crm_id"]))


def linked(
    what: str = typer.Argument(..., help="customers or vendors."),
    org: str = typer.Option(None, "--org", help="Books organization id (default: the primary)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """List the Books customers or vendors linked to the CRM (F25), from the state store.

    Example: crmbooks linked customers --json
    """
    import json

    from rich.table import Table

    from crmbooks.cli import console, fail
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    what = what.strip().lower()
    if what not in WHAT:
        fail(f"unknown kind {what!r}: use customers or vendors")
    base = open_store()
    row = base.connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first")
    org_id = org or row.books_org_id
    if org_id not in [row.books_org_id, *(row.extra_books_org_ids or [])]:
        fail(f"Books organization {org_id} is not connected: use one of "
             f"{', '.join([row.books_org_id, *(row.extra_books_org_ids or [])])}")
    rows = linked_rows(Store(base.engine, org_id=org_id), what)
    if json_out:
        print(json.dumps({"org_id": org_id, what: rows}, indent=2))
        return
    table = Table(title=f"{what} linked to the CRM (Books organization {org_id}): {len(rows)}")
    for column in ("name", "CRM id", "Books id", "CRM module", "linked by", "last synced"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["crm_id"], r["books_id"], r["crm_module"], r["linked_by"],
                      (r["last_synced"] or "")[:19].replace("T", " "))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `linked` to the crmbooks CLI."""
    app.command()(linked)
