"""Start a run: refuse when paused, load the active settings, check them against both sides.

Everything that can make a run fail as a whole is checked here, before anything is written:
the connection exists and is not paused or disabled, the settings parse, the CRM view exists,
and the mapping fits the live field metadata of both sides (F9). Metadata is cached for an hour
(`crmbooks.metadata`), so a run with nothing to do spends no request on it.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.context import get_run_context

from crmbooks.metadata import (
    ViewNotFound,
    books_custom_fields,
    crm_field_metadata,
    resolve_view,
)
from crmbooks.runtime import NotConnected, get_runtime
from crmbooks.settings import parse_module_settings
from crmbooks.sync.check import MappingCheckError, assert_mapping_ok
from crmbooks.sync.lifecycle import RunRefused
from crmbooks.sync.mapping import effective_mapping
from crmbooks.sync.modules import module_spec
from tasks.context import RunContext


def refuse_if_stopped(connection) -> None:
    """F22/F28: no run starts while the integration is paused or disabled (exit code 3)."""
    if connection.disabled:
        raise RunRefused("the integration is disabled: run `crmbooks enable` to sync again")
    if connection.paused:
        raise RunRefused("syncing is paused: run `crmbooks resume` to sync again")


def active_settings(runtime, module: str, connection_name: str = "default"):
    """The connection (refused when paused or disabled) and the module's active settings,
    parsed: (connection, settings version, settings); every run's start reads these first."""
    connection = runtime.store.connection(connection_name)
    refuse_if_stopped(connection)
    version, raw = runtime.store.active_settings(module) or (None, {})
    return connection, version, parse_module_settings(module, raw)


# Persisted like every step, so that a flow-run retry (the UI's Retry button) finds the same
# run context and therefore the cached results of every step that had already finished.
@task(name="start-run", persist_result=True)
def start_run(module: str, dry_run: bool, org_id: str | None = None,
              targets: dict[str, list[str]] | None = None,
              connection_name: str = "default") -> RunContext:
    """Check everything a run needs and open its history row; returns the run's context."""
    runtime = get_runtime(org_id, connection_name)
    store, logger = runtime.store, get_run_logger()
    connection, version, settings = active_settings(runtime, module, connection_name)
    one_way = _is_extra_org(connection, runtime.org_id)
    note = None
    if one_way and getattr(settings, "scope", "fetch") != "fetch":
        settings = settings.model_copy(update={"scope": "fetch"})
        note = (f"Books organization {runtime.org_id} is an extra organization: one-way sync "
                "(CRM → Books) whatever the settings say (F4)")
    flow_run = getattr(get_run_context(), "task_run", None)
    opened = {"dry_run": dry_run, "settings_version": version, "message": note,
              "flow_run_id": str(flow_run.flow_run_id) if flow_run else None}
    try:
        views = _check(runtime, module, settings)
    except (MappingCheckError, ViewNotFound) as exc:
        # Nothing was written, but the history must show the run and why it stopped (F21).
        refused = store.start_run(module, **opened)
        store.finish_run(refused, "failed", message=str(exc)[:2000])
        raise
    run_id = store.start_run(module, **opened)
    logger.info("run %s of %s (settings version %s, %s)", run_id, module, version,
                "dry run" if dry_run else "live")
    if note:
        logger.info(note)
    return RunContext(
        run_id=run_id, module=module, org_id=runtime.org_id, connection=connection_name,
        dry_run=dry_run,
        settings=settings.model_dump(mode="json"), settings_version=version,
        crm_cursor=store.cursor(module, "crm"), books_cursor=store.cursor(module, "books"),
        views=views, base_currency=_books_org(connection, runtime.org_id).get("currency"),
        calls_before=runtime.api_calls(), targets=targets or {}, one_way=one_way, note=note,
    )


def _is_extra_org(connection, org_id: str) -> bool:
    """True for an extra Books organization (F4); an org never connected is refused."""
    extras = [str(o) for o in connection.extra_books_org_ids or []]
    if not org_id or org_id == connection.books_org_id:
        return False
    if org_id not in extras:
        raise NotConnected(
            f"Books organization {org_id} is not connected (connected: "
            f"{', '.join([connection.books_org_id or '?', *extras])}): add it with "
            f"`crmbooks connect ... --extra-books-org {org_id}`")
    return True


def _books_org(connection, org_id: str) -> dict:
    """What connect verified of one Books organization (name, currency …)."""
    books_org = dict(connection.books_org or {})
    extras = books_org.pop("extra", [])
    if org_id and org_id != connection.books_org_id:
        return next((o for o in extras if str(o.get("organization_id")) == org_id), {})
    return books_org


def _check(runtime, module: str, settings) -> dict[str, str]:
    """The mapping against live metadata, then the views; returns the view ids (F8, F9)."""
    spec = module_spec(module)
    kinds = spec.active_kinds(settings)
    mapping = effective_mapping(spec, settings)
    assert_mapping_ok(
        spec, mapping, kinds,
        crm_fields={m: crm_field_metadata(runtime, m)
                    for m in sorted({k.crm_module for k in kinds})},
        books_custom_fields={r: books_custom_fields(runtime, r, spec.books_crm_id_field)
                             for r in sorted({k.books_resource for k in kinds})},
    )
    return _views(runtime, settings, kinds)


def _views(runtime, settings, kinds) -> dict[str, str]:
    """The custom view id per CRM module (F8); an unknown view stops the run (fatal)."""
    wanted = {}
    main = kinds[0].crm_module
    if getattr(settings, "view", None):
        wanted[main] = settings.view
    if getattr(settings, "contact_view", None):
        wanted["Contacts"] = settings.contact_view
    return {module: resolve_view(runtime, module, view) for module, view in wanted.items()}
