"""`crmbooks linked customers|vendors`: the Books contacts linked to the CRM.

Read from the state store only (no API call): every Books customer or vendor that came from
the CRM or is linked to a CRM record, with how it was linked (sync, trigger, manual) and when
it last synced.
"""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import fail, print_table


def linked(
    what: str = typer.Argument(..., help="customers or vendors."),
    org: str = typer.Option(None, "--org", help="Books organization id (default: the primary)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """List the Books customers or vendors linked to the CRM, from the state store.

    Example: crmbooks linked customers --json
    """
    import json

    from rich.table import Table

    from crmbooks.reporting import LINKED_KINDS, linked_rows
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    what = what.strip().lower()
    if what not in LINKED_KINDS:
        fail(f"unknown kind {what!r}: use customers or vendors", wrap=True)
    base = open_store()
    row = base.connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first", wrap=True)
    org_id = org or row.books_org_id
    if org_id not in [row.books_org_id, *(row.extra_books_org_ids or [])]:
        fail(f"Books organization {org_id} is not connected: use one of "
             f"{', '.join([row.books_org_id, *(row.extra_books_org_ids or [])])}", wrap=True)
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
    print_table(table)
