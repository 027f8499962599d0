"""The skeleton every module's run shares: start it, hold its lock, finish it.

* `start_run` checks everything a run needs before anything is written — the connection
  exists and is not paused or disabled, the settings parse, and the module's own checks
  (its mapping against both sides' live fields, its views, the unique fields exactly-once
  writes need) — opens the run's history row and returns its `RunContext` (or None when the
  module is turned off).
* `run_lock` makes the run the only live one of its module and organization: a second one is
  refused (RunInProgress, recorded as such), a run that stops on an error is closed as
  failed, and the lock is released whatever happens.
* `finish` turns the run's summary into its Prefect state: a run with failed records ends
  Failed, so the runs list shows it is not fully synced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect import get_run_logger
from prefect.context import get_run_context
from prefect.states import Completed, Failed

from crmbooks.metadata import ViewNotFound
from crmbooks.runtime import NotConnected, get_runtime
from crmbooks.settings import SettingsError, parse_module_settings
from crmbooks.store import RunLockHeld
from crmbooks.sync.check import MappingCheckError
from crmbooks.sync.lifecycle import RecordsFailed, RunInProgress, RunRefused
from crmbooks.sync.outcomes import counts_in_words
from tasks.context import RunContext
from tasks.families import family_of
from tasks.policy import step

#: Errors of the settings against the live systems: the run is recorded as failed with its
#: reason (the history must show why it stopped), and nothing is written.
SETUP_ERRORS = (MappingCheckError, ViewNotFound, SettingsError)


def refuse_if_stopped(connection) -> None:
    """No run starts while the integration is paused or disabled (exit code 3)."""
    if connection is None:
        raise NotConnected("crmbooks is not connected yet: run `crmbooks connect` first")
    if connection.disabled:
        raise RunRefused("the integration is disabled: run `crmbooks enable` to sync again")
    if connection.paused:
        raise RunRefused("syncing is paused: run `crmbooks resume` to sync again")


def active_settings(runtime, module: str, connection_name: str = "default"):
    """The connection (refused when paused or disabled) and the module's active settings,
    parsed: (connection, settings version, settings)."""
    connection = runtime.store.connection(connection_name)
    refuse_if_stopped(connection)
    version, raw = runtime.store.active_settings(module) or (None, {})
    return connection, version, parse_module_settings(module, raw)


def is_extra_org(connection, org_id: str) -> bool:
    """True for an extra Books organization; an organization never connected is refused."""
    extras = [str(o) for o in connection.extra_books_org_ids or []]
    if not org_id or org_id == connection.books_org_id:
        return False
    if org_id not in extras:
        raise NotConnected(
            f"Books organization {org_id} is not connected (connected: "
            f"{', '.join([connection.books_org_id or '?', *extras])}): add it with "
            f"`crmbooks connect ... --extra-books-org {org_id}`")
    return True


def books_org(connection, org_id: str) -> dict:
    """What connect verified of one Books organization (name, currency …)."""
    found = dict(connection.books_org or {})
    extras = found.pop("extra", [])
    if org_id and org_id != connection.books_org_id:
        return next((o for o in extras if str(o.get("organization_id")) == org_id), {})
    return found


# Persisted like every step, so that a flow-run retry (the UI's Retry button) finds the same
# run context and therefore the cached results of every step that had already finished.
@step("start-run")
def start_run(module: str, dry_run: bool, org_id: str | None = None,
              targets: dict[str, list[str]] | None = None,
              connection_name: str = "default", full: bool = False,
              preview: dict | None = None) -> RunContext | None:
    """Check everything a run needs and open its history row; returns the run's context, or
    None when the module is turned off (nothing to run).

    ``full`` reads every record from the start (the cursors are left where they are until
    the run settles them). ``preview``: settings about to be saved, planned instead of the
    active ones (a dry run only: what `crmbooks configure` says a change will do)."""
    family = family_of(module)
    runtime = get_runtime(org_id, connection_name)
    store, logger = runtime.store, get_run_logger()
    connection, version, settings = active_settings(runtime, module, connection_name)
    if preview is not None:
        if not dry_run:
            raise ValueError("settings are previewed by a dry run only")
        settings, full = parse_module_settings(module, preview), True
    one_way = is_extra_org(connection, runtime.org_id)
    settings, note = family.for_organization(settings, one_way, runtime.org_id)
    targets = targets or {}
    if not family.enabled(settings, targets):
        logger.info("%s: %s", module, family.off_message)
        return None
    flow_run = getattr(get_run_context(), "task_run", None)
    opened = {"dry_run": dry_run, "settings_version": version, "message": note,
              "flow_run_id": str(flow_run.flow_run_id) if flow_run else None}
    try:
        facts = family.start(runtime, settings, targets)
    except SETUP_ERRORS as exc:
        refused = store.start_run(module, **opened)
        store.finish_run(refused, "failed", message=str(exc)[:2000])
        raise
    cursors = family.cursors(store, settings, facts, targets)
    if full and not targets:
        cursors = dict.fromkeys(cursors)
        facts["read_note"] = "a full run: every record is read and compared"
    read_note = facts.pop("read_note", None)
    if preview is not None:
        read_note = "a preview of settings not saved yet: every record is read and compared"
    note = "; ".join(filter(None, (note, read_note))) or None
    opened["message"] = note
    run_id = store.start_run(module, **opened)
    logger.info("run %s of %s (settings version %s, %s)", run_id, module, version,
                "dry run" if dry_run else "live")
    if note:
        logger.info(note)
    return RunContext(
        run_id=run_id, module=module, org_id=runtime.org_id, connection=connection_name,
        dry_run=dry_run, settings=settings.model_dump(mode="json"), settings_version=version,
        cursors=cursors, views=facts.pop("views", {}),
        base_currency=books_org(connection, runtime.org_id).get("currency"),
        calls_before=runtime.api_calls(), targets=targets, one_way=one_way, note=note,
        facts=facts)


@contextlib.contextmanager
def run_lock(run: RunContext) -> Iterator[None]:
    """Hold the module's run lock for the body (a dry run writes nothing remote and takes
    none): a second live run is refused, a run that stops on an error is closed as failed
    (its history row must not stay 'running'), and the lock is released in every case."""
    if not run.dry_run:
        hold_run_lock(run)
    try:
        yield
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        run.runtime().store.finish_run(run.run_id, "failed", message=message[:2000])
        raise
    finally:
        if not run.dry_run:
            run.runtime().store.release_run_lock(run.module, run.run_id)


def hold_run_lock(run: RunContext) -> None:
    """Make this the only live run of its module and organization (RunInProgress otherwise).

    Prefect's deployment concurrency limit does not cover a manual `crmbooks sync`, an event
    run or sync-now's child runs: the store's lock does, across processes and workers."""
    store = run.runtime().store
    try:
        stale = store.acquire_run_lock(run.module, run.run_id)
    except RunLockHeld as exc:
        store.finish_run(run.run_id, "refused", message=str(exc))
        get_run_logger().warning("%s", exc)
        raise RunInProgress(str(exc)) from None
    if stale is not None:
        get_run_logger().warning(
            "run %s of %s had stopped without finishing (process %s on %s): took over its "
            "lock", stale.run_id, run.module, stale.pid, stale.host)


def finish(summary: dict):
    """The run's Prefect state: Failed when some records failed (with the summary), else
    Completed; its last log line says its counts in words.

    First the run's summary and failures tables, as artifacts of the flow run itself (this
    runs in the flow, not in a task): the UI's artifacts tab lists a run's own artifacts
    above those of its task runs."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    for artifact in summary.pop("artifacts", []):
        if "markdown" in artifact:
            create_markdown_artifact(**artifact)
        else:
            create_table_artifact(**artifact)
    for earlier in summary.pop("resolved", []):
        mark_resolved(earlier, summary["run_id"])
    reasons = summary.pop("reasons", [])
    words = counts_in_words(summary["counts"])
    failed = sum(side["failed"] for side in summary["counts"].values())
    if failed:
        message = (f"{failed} record(s) failed: see the failures artifact, fix them at the "
                   "source, then retry")
        get_run_logger().warning("%s. %s", words, message)
        # The state's message is what the runs list and an alert show: the counts and the
        # first reasons too, still on one line.
        said = f"{message}. {words}." + (f" First: {'; '.join(reasons)}" if reasons else "")
        return Failed(message=said, data=RecordsFailed(said, summary))
    get_run_logger().info("%s", words)
    return Completed(message="all records synced", data=summary)


def mark_resolved(earlier: dict, by_run: str) -> None:
    """Show on an earlier flow run that all its failed records are now resolved: a
    "resolved" artifact on it, and a Completed state named Resolved, so the runs list no
    longer shows it red (its Failed state stays in its state history)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.exceptions import ObjectNotFound

    said = (f"All failed records of run {earlier['run_id']} are resolved: run {by_run} "
            "synced them (or found them deleted at their source).")
    try:
        with get_client(sync_client=True) as client:
            client.read_flow_run(earlier["flow_run_id"])  # ObjectNotFound before writing
            client.create_artifact(ArtifactCreate(
                key="resolved", type="markdown", data=said, flow_run_id=earlier["flow_run_id"],
                description="its failed records are resolved"))
            client.set_flow_run_state(earlier["flow_run_id"],
                                      Completed(name="Resolved", message=said), force=True)
    except ObjectNotFound:  # that run is not on this Prefect server (retention, another one)
        get_run_logger().info("run %s is not in this Prefect server's history: not marked",
                              earlier["run_id"])
    except Exception as exc:  # noqa: BLE001 - the sync is done; only the UI's marker is lost
        get_run_logger().warning("could not mark run %s resolved in Prefect: %s",
                                 earlier["run_id"], exc)


def off_reason(store, module: str, org_id: str | None = None,
               connection_name: str = "default") -> str | None:
    """Why `module` is turned off in the active settings of a Books organization (the
    primary when None), in the words its run would use, or None when it would run.

    What a caller running several modules (`crmbooks sync`, sync-now) asks before starting a
    flow run that would only end "off"; the run checks again when it starts. Settings that do
    not parse, and a connection missing, paused or disabled, are the run's to report (it
    refuses): None. `store` is any store of the connection.
    """
    from crmbooks.store import Store

    connection = store.connection(connection_name)
    if connection is None or connection.paused or connection.disabled:
        return None
    primary = str(connection.books_org_id)
    scoped = Store(store.engine, org_id=org_id or primary)
    _version, raw = scoped.active_settings(module) or (None, {})
    try:
        settings = parse_module_settings(module, raw)
    except SettingsError:
        return None
    family = family_of(module)
    settings, _note = family.for_organization(settings, bool(org_id and org_id != primary),
                                              org_id or primary)
    return None if family.enabled(settings, {}) else family.off_message


def off(module: str):
    """The state of a run that did not start because its module is turned off."""
    return Completed(message=family_of(module).off_message, data={"state": "off",
                                                                 "run_id": None})
