"""`crmbooks configure MODULE`: save a new version of a module's settings.

The options given are merged over the active settings, validated and saved as a new version
that applies from the next run; `--sync` also runs the module ("save and sync").
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from crmbooks.app.cli.common import (
    console,
    fail,
    map_key,
    normalised,
    quiet_connector_logs,
    show,
)
from crmbooks.settings import (
    MODULES,
    SettingsError,
    parse_module_settings,
    transaction_resources,
)
from crmbooks.sync.cursors import READ_SETTINGS

#: Which option of `configure` applies to which modules (others are refused, not ignored).
OPTION_MODULES: dict[str, tuple[str, ...]] = {
    "crm_module": ("customers",),
    "include_unassociated_contacts": ("customers",),
    "contact_view": ("customers",),
    "scope": ("customers", "vendors", "items"),
    "duplicates": ("customers", "vendors", "items"),
    "clone_suffix": ("customers", "vendors", "items"),
    "on_delete_in_crm": ("customers", "vendors", "items"),
    "on_delete_in_books": ("customers", "vendors", "items"),
    "delete_brake_count": ("customers", "vendors", "items"),
    "delete_brake_share": ("customers", "vendors", "items"),
    "view": ("customers", "vendors", "items"),
    "maps": ("customers", "vendors", "items", "transactions"),
    "value_maps": ("customers", "vendors", "items"),
    "modules": ("transactions",),
    "mode": ("deals",),
    "create_stage": ("deals",),
    "accept_stage": ("deals",),
    "invoice_on_accept": ("deals",),
    "item": ("deals",),
}
OPTION_FLAGS = {
    "crm_module": "--crm-module", "include_unassociated_contacts":
    "--include-unassociated-contacts", "contact_view": "--contact-view", "scope": "--scope",
    "duplicates": "--duplicates", "clone_suffix": "--clone-suffix", "view": "--view",
    "maps": "--map/--unmap", "value_maps": "--value-map", "on_delete_in_crm": "--on-delete-in-crm",
    "on_delete_in_books": "--on-delete-in-books", "delete_brake_count": "--delete-brake",
    "delete_brake_share": "--delete-brake",
    "modules": "--types", "mode": "--mode", "create_stage": "--create-stage",
    "accept_stage": "--accept-stage", "invoice_on_accept": "--invoice-on-accept",
    "item": "--item",
}
#: The modules whose maps are checked when saved and whose changes are previewed (those of
#: transactions are checked by their runs, against each document type's fields).
RECORD_MODULES = ("customers", "vendors", "items")
#: CRM module whose custom views a view setting names.
VIEW_MODULES = {"accounts": "Accounts", "contacts": "Contacts", "accounts+contacts": "Accounts",
                "vendors": "Vendors", "items": "Products"}


def configure(
    module: str = typer.Argument(..., help="customers, vendors, items, transactions or deals."),
    crm_module: str | None = typer.Option(
        None, "--crm-module", help="customers: accounts | contacts | accounts+contacts "
        "(the CRM records sent to Books; two-way, an individual Books customer still goes "
        "to CRM Contacts)."),
    include_unassociated_contacts: bool | None = typer.Option(
        None, "--include-unassociated-contacts/--exclude-unassociated-contacts",
        help="customers with accounts+contacts: also sync contacts without an account."),
    scope: str | None = typer.Option(None, "--scope", help="fetch (CRM → Books) | both."),
    duplicates: str | None = typer.Option(
        None, "--duplicates", help="review | clone | overwrite | skip."),
    clone_suffix: str | None = typer.Option(
        None, "--clone-suffix", help="added to a copy's name where Books needs unique names "
                                     "after a space (default \"(2)\")."),
    view: str | None = typer.Option(
        None, "--view", help="CRM custom view name or id; \"\" clears it."),
    on_delete_in_crm: str | None = typer.Option(
        None, "--on-delete-in-crm",
        help="A record deleted in the CRM: its Books twin is kept (ignore), marked inactive "
             "(deactivate) or deleted (delete)."),
    on_delete_in_books: str | None = typer.Option(
        None, "--on-delete-in-books",
        help="A record deleted in Books: its CRM twin is kept (ignore) or deleted (delete)."),
    delete_brake: str | None = typer.Option(
        None, "--delete-brake",
        help="Hold a run's deletions for approval above N records or P% of the links "
             "(defaults 25 and 5%: held when both are exceeded)."),
    contact_view: str | None = typer.Option(
        None, "--contact-view", help="customers with accounts+contacts: the contacts view."),
    maps: list[str] = typer.Option(
        [], "--map", help="Extra field map BOOKS_FIELD=CRM_FIELD; repeat for more. "
        "transactions: a Books custom field, both ways, e.g. cf_po_ref=PO_Ref__c, or "
        "invoices:cf_po_ref=PO_Ref__c for one type only."),
    unmap: list[str] = typer.Option(
        [], "--unmap", help="Remove the extra field map of this BOOKS_FIELD (and its value "
        "map)."),
    value_map: list[str] = typer.Option(
        [], "--value-map", help="A CRM picklist value's Books value, BOOKS_FIELD:CRM_VALUE="
        "BOOKS_VALUE, e.g. product_type:Goods=goods; repeat for more."),
    types: str | None = typer.Option(
        None, "--types",
        help="transactions: comma list of estimates,salesorders,invoices,purchaseorders."),
    mode: str | None = typer.Option(None, "--mode", help="deals: quote | invoice."),
    create_stage: str | None = typer.Option(
        None, "--create-stage", help="deals, quote mode: stage that creates a draft quote."),
    accept_stage: str | None = typer.Option(
        None, "--accept-stage", help="deals, quote mode: stage that accepts the quote."),
    invoice_on_accept: bool | None = typer.Option(
        None, "--invoice-on-accept/--no-invoice-on-accept",
        help="deals, quote mode: turn an accepted quote into an invoice."),
    item: str | None = typer.Option(
        None, "--item", help="deals: Books item id of the quote's or invoice's line (its CRM "
        "product lets the CRM show the transaction in Quotes / Invoices); \"\" for none."),
    enabled: bool | None = typer.Option(
        None, "--enable/--disable",
        help="Turn syncing of this MODULE on or off (configuring deals turns them on)."),
    note: str | None = typer.Option(None, "--note", help="Why this change (kept in history)."),
    sync: bool = typer.Option(False, "--sync", help="Save and sync: run MODULE right away."),
    preview: bool = typer.Option(
        True, "--preview/--no-preview",
        help="customers, vendors, items: before saving a change of what is read or how it "
             "maps, plan it over every record (a dry run) and say what the next run will do."),
    org: str | None = typer.Option(
        None, "--org", help="Books organization these settings are for (default: the primary; "
        "an extra one syncs CRM → Books only whatever its scope)."),
):
    """Save a new version of a module's settings; it applies from the next run.

    The options given are merged over the active settings, validated, and saved as a new
    version (earlier versions are kept); the change is printed as a diff. --sync also runs
    the module now ("save and sync"). Maps are checked against both sides' fields before
    saving; a change of what is read or how it maps is first planned over every record and
    said (--no-preview skips that), and the next run reads every record once.

    Example: crmbooks configure customers --crm-module accounts+contacts --duplicates skip
    --view "All Accounts" --map cf_tier=Tier --sync

    Example: crmbooks configure vendors --map cf_segment=Category
    --value-map cf_segment:Hardware=hw --value-map cf_segment:Software=sw

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
        "scope": scope, "duplicates": duplicates, "clone_suffix": clone_suffix, "view": view,
        "contact_view": contact_view,
        "on_delete_in_crm": on_delete_in_crm, "on_delete_in_books": on_delete_in_books,
        **_brake(delete_brake),
        "mode": mode, "create_stage": create_stage, "accept_stage": accept_stage,
        "invoice_on_accept": invoice_on_accept,
        "item": item.strip() if item is not None else None,
        "modules": [t.strip() for t in types.split(",") if t.strip()] if types is not None
        else None,
        "maps": (maps or unmap) or None,
        "value_maps": value_map or None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    for key in given:
        if module not in OPTION_MODULES[key]:
            owners = " and ".join(OPTION_MODULES[key])
            fail(f"{OPTION_FLAGS[key]} applies only to {owners}, not to {module}")

    store = _settings_store(org)
    active = store.active_settings(module)
    base_version, base = active if active else (0, {})
    previous = normalised(module, base)
    merged = _merge(module, dict(previous), given, maps, unmap, enabled)
    if module in RECORD_MODULES:
        merged = _merge_value_maps(merged, value_map, unmap)
    try:
        parsed = parse_module_settings(module, merged)
    except SettingsError as exc:
        fail(f"{exc} (nothing was saved)")
    new = parsed.model_dump(mode="json")
    if ("maps" in given or "value_maps" in given) and module in RECORD_MODULES:
        _check_maps(module, parsed, store.org_id)
    if "view" in given or "contact_view" in given:
        _check_views(module, new)

    diff = _diff(previous, new)
    if preview and diff and {k for k, _, _ in diff} & set(READ_SETTINGS) \
            and module in RECORD_MODULES:
        _preview(module, new, store.org_id)
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
        from crmbooks.app.cli.common import run_sync

        raise typer.Exit(run_sync([module], dry_run=False, json_out=False,
                                  **({"orgs": [store.org_id]} if org else {})))


def _preview(module: str, settings: dict, org_id: str) -> None:
    """Say what the next run will do under these settings (a dry run over every record,
    planned before they are saved); a plan that cannot be made is said, and does not stop
    the save."""
    from crmbooks.app.cli.common import expected_errors, provider_errors, use_prefect_server
    from crmbooks.metadata import crm_field_metadata
    from crmbooks.runtime import get_runtime
    from crmbooks.sync.modules import module_spec

    quiet = quiet_connector_logs()
    try:
        # Zoho answering first (cached field metadata, or one request): without it there is
        # no plan to make, and no Prefect server need be started for it.
        crm_field_metadata(get_runtime(org_id), module_spec(module).kinds[0].crm_module)
        use_prefect_server()
        from flows.records import preview_settings

        state = preview_settings(module=module, settings=settings, org_id=org_id,
                                 return_state=True)
        summary = state.result(raise_on_failure=False)
        if isinstance(summary, BaseException):
            summary = getattr(summary, "summary", None)
        if not isinstance(summary, dict) or "counts" not in summary:
            raise RuntimeError(str(state.message or "the dry run did not finish"))
    except (*expected_errors(), *provider_errors(), RuntimeError, OSError,
            typer.Exit) as exc:
        console.print(f"[yellow]Note:[/] what the change will do could not be planned "
                      f"({exc or 'not connected'}); saving it anyway.", highlight=False)
        return
    finally:
        quiet()
    console.print(f"Under these settings the next run will {change_in_words(summary['counts'])}"
                  f" (planned over every record, nothing written).", highlight=False)


def change_in_words(counts: dict) -> str:
    """A dry run's counts as what the next run will do: "create 3 and update 12 records in
    Books, update 2 in the CRM, skip 1, fail 0" (sides with nothing to write left out)."""
    said = []
    for side, where in (("books", "in Books"), ("crm", "in the CRM")):
        tally = counts.get(side, {})
        verbs = [f"{verb} {n}" for verb, key in (("create", "created"), ("update", "updated"),
                                                 ("delete", "deleted"))
                 if (n := tally.get(key))]
        if verbs:
            noun = "records " if not said else ""
            said.append(f"{' and '.join(verbs)} {noun}{where}")
    skipped = sum(counts.get(s, {}).get("skipped", 0) for s in ("books", "crm"))
    failed = sum(counts.get(s, {}).get("failed", 0) for s in ("books", "crm"))
    text = ", ".join(said) or "write nothing"
    extra = [f"{n} {what}" for n, what in ((skipped, "skipped"), (failed, "failing"))
             if n]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _brake(value: str | None) -> dict[str, Any]:
    """`--delete-brake N` (a number of records) or `P%` (a share of the module's links)."""
    if value is None:
        return {}
    text = value.strip()
    try:
        if text.endswith("%"):
            return {"delete_brake_share": float(text[:-1])}
        return {"delete_brake_count": int(text)}
    except ValueError:
        fail(f"--delete-brake takes a number of records or a percentage (25 or 5%), "
             f"not {value!r} (nothing was saved)")


def _settings_store(org: str | None = None):
    """The store scoped to a Books organization (default: the primary), where runs read
    their settings."""
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    base = open_store()
    row = base.connection()
    if row is None or not row.books_org_id:
        fail("crmbooks is not connected yet: run `crmbooks connect` first (settings belong "
             "to a Books organization)")
    connected = [row.books_org_id, *[str(o) for o in row.extra_books_org_ids or []]]
    if org and org.strip() not in connected:
        fail(f"Books organization {org} is not connected: use one of {', '.join(connected)}")
    return Store(base.engine, org_id=org.strip() if org else row.books_org_id)


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
        if key in ("maps", "value_maps"):  # merged entry by entry, below and after
            continue
        if key in ("view", "contact_view", "item") and value.strip() == "":
            value = None  # "" clears a view (sync the whole module again), or the item
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
        current_maps = {map_key(m): m for m in merged.get("maps") or []}
        for text in maps:
            section, text = _map_section(module, text)
            try:
                pair = FieldMapSetting.parse(text).model_copy(update={"section": section})
            except SettingsError as exc:
                fail(str(exc))
            except ValueError as exc:
                fail(f"--map {text!r} is not valid: {exc}")
            current_maps[map_key(pair.model_dump(mode="json"))] = pair.model_dump(mode="json")
        for books_field in unmap:
            section, key = _map_section(module, books_field.strip())
            key = f"custom_fields.{key}" if key.startswith("cf_") else key
            key = f"{section}:{key}" if section else key
            if current_maps.pop(key, None) is None:
                fail(f"--unmap {books_field!r}: there is no extra map for that Books field "
                     f"(extra maps: {', '.join(current_maps) or 'none'})")
        merged["maps"] = list(current_maps.values())
    return merged


def _merge_value_maps(merged: dict, given: list[str], unmap: list[str]) -> dict:
    """`--value-map BOOKS:CRM=BOOKS_VALUE` entries over the stored value maps; `--unmap
    BOOKS` drops the field's value map with its map."""
    from crmbooks.settings import FieldMapSetting

    if not given and not unmap:
        return merged
    value_maps = {k: dict(v) for k, v in (merged.get("value_maps") or {}).items()}
    for text in unmap:
        key = text.strip()
        value_maps.pop(f"custom_fields.{key}" if key.startswith("cf_") else key, None)
    for text in given:
        try:
            books, crm_value, books_value = FieldMapSetting.parse_value(text)
        except SettingsError as exc:
            fail(f"{exc} (nothing was saved)")
        value_maps.setdefault(books, {})[crm_value] = books_value
    return {**merged, "value_maps": value_maps}


def _check_maps(module: str, settings, org_id: str) -> None:
    """Refuse extra maps and value maps no run could use, against the cached field metadata
    of both sides (exit 2, nothing saved); when it cannot be read, only the mapping schema
    checks them, and a note says so."""
    from crmbooks.connectors.errors import ZohoError
    from crmbooks.metadata import books_custom_fields, crm_field_metadata
    from crmbooks.runtime import get_runtime
    from crmbooks.sync.check import check_field_maps
    from crmbooks.sync.modules import module_spec

    spec = module_spec(module)
    if not settings.maps and not settings.value_maps:
        return
    # Only the kinds the maps name (a map without a section is the first kind's); value maps
    # may sit on any kind's map.
    named = {m.section or spec.kinds[0].section for m in settings.maps}
    kinds = [k for k in spec.kinds if k.books_resource != "contact_persons"
             and (settings.value_maps or k.section in named)]
    crm_meta = books_meta = None
    quiet = quiet_connector_logs()
    try:
        runtime = get_runtime(org_id)
        crm_meta = {k.crm_module: crm_field_metadata(runtime, k.crm_module) for k in kinds}
        books_meta = {k.books_resource: books_custom_fields(runtime, k.books_resource,
                                                            spec.books_crm_id_field)
                      for k in kinds}
    except (ZohoError, LookupError, RuntimeError) as exc:  # not connected, no secret, offline
        console.print(f"[yellow]Note:[/] the maps were checked against the mapping schema only, "
                      f"not against the fields of the CRM and Books ({exc}).", highlight=False)
    finally:
        quiet()
    problems = check_field_maps(spec, settings, crm_meta, books_meta)
    if problems:
        first = problems[0]
        fail(f"{first.message}: {first.hint} (nothing was saved)")


def _map_section(module: str, text: str) -> tuple[str | None, str]:
    """transactions: `invoices:cf_x=Y__c` maps for invoices only → ("invoices", "cf_x=Y__c")."""
    head, sep, rest = text.partition(":")
    if module == "transactions" and sep and head.strip() in transaction_resources():
        return head.strip(), rest
    return None, text


def _check_views(module: str, settings: dict) -> None:
    """Refuse a view the CRM does not have; skipped (with a note) when CRM is unreachable."""
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
    quiet = quiet_connector_logs()
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
        table.add_row(key, show(old), show(new))
    return table
