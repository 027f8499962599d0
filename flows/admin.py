"""The operator's settings actions as flows, so the Prefect UI can run them with a form:
pause / resume, edit a module's settings, disable / enable and list the records linked to the
CRM. Each does what its `crmbooks` command does.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from crmbooks.runtime import get_runtime, open_store
from crmbooks.settings import parse_module_settings
from flows.forms import LinkedWhat, Module


def _set_flag(flag: str, value: bool) -> str:
    """Set paused/disabled on the connection; the schedules follow when a server answers."""
    from crmbooks.schedules import set_schedules_paused

    store = open_store()
    row = store.connection()
    if row is None:
        raise RuntimeError("crmbooks is not connected yet: run `crmbooks connect` first")
    store.save_connection(row.name, **{flag: value})
    row = store.connection()
    said = set_schedules_paused(bool(row.paused or row.disabled))
    get_run_logger().info("%s set to %s; %s", flag, value, said)
    return said


@flow(name="pause-syncs")
def pause_syncs() -> str:
    """Pause: scheduled and manual syncs refuse to start; a run already going completes."""
    return _set_flag("paused", True)


@flow(name="resume-syncs")
def resume_syncs() -> str:
    """Resume: syncs run again, on schedule and on demand."""
    return _set_flag("paused", False)


@flow(name="edit-settings")
def edit_settings(module: Module = "customers", changes: dict | None = None,
                  note: str | None = None, org_id: str | None = None) -> int:
    """Edit: merge `changes` over the module's active settings, check them, save a new version
    (kept with its history; it applies from the next run). Returns the version number.

    Args:
        module: The module whose settings change.
        changes: The settings to change and their new values, e.g.
            {"duplicates": "overwrite"} (`crmbooks status` shows the current ones).
        note: Why they change, kept with the version in the settings history.
        org_id: Books organization id; empty means the primary one.
    """
    store = get_runtime(org_id).store
    current = (store.active_settings(module) or (None, {}))[1]
    merged = {**current, **(changes or {})}
    checked = parse_module_settings(module, merged)  # SettingsError names what is wrong
    version = store.save_settings(module, checked.model_dump(mode="json"), note=note)
    get_run_logger().info("%s settings version %s saved: %s", module, version, changes)
    return version


@flow(name="disable-integration")
def disable_integration() -> dict:
    """Disable: stop all sync and remove from the CRM what crmbooks put there for transactions
    and figures (the records it created, the Books data on the others, the deals' quotes,
    the customers' figures); Books is untouched. Returns what was removed."""
    from crmbooks import disabling

    _set_flag("disabled", True)
    removed = disabling.remove(get_runtime())
    logger = get_run_logger()
    for line in removed.sentences(planned=False) or ["nothing of crmbooks' was left in the CRM"]:
        logger.info("removed: %s", line)
    for reason in removed.failed:
        logger.warning("not removed: %s", reason)
    return removed.as_dict()


@flow(name="enable-integration")
def enable_integration() -> str:
    """Enable: sync again (connect again first to switch Books organization or credentials).
    The next runs bring back what `disable` removed from the CRM, once. Refused while an
    interrupted disable left CRM records to remove: run it again first."""
    from crmbooks import disabling

    row = open_store().connection()
    left = disabling.unfinished(get_runtime().store) if row is not None and row.disabled else 0
    if left:
        raise RuntimeError(disabling.unfinished_message(left))
    return _set_flag("disabled", False)


@flow(name="linked-records")
def linked_records(what: LinkedWhat = "customers", org_id: str | None = None) -> int:
    """The customers or vendors linked to the CRM, as a table artifact.

    Args:
        what: Which records to list.
        org_id: Books organization id; empty means the primary one.
    """
    from crmbooks.reporting import linked_rows

    rows = linked_rows(get_runtime(org_id).store, what)
    create_table_artifact(rows or [{"note": f"no {what} linked to the CRM yet"}],
                          key=f"linked-{what}", description=f"{what} linked to the CRM")
    return len(rows)
