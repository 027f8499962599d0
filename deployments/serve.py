"""The deployments, served from one process: the single-machine path (no work pool, no worker).

`DEPLOYMENTS` is the one table of what is deployed, on which schedule and with which limit.
prefect.yaml (the work-pool path, `prefect deploy --all`) declares the same deployments, and
tests/deployments checks that the two agree, so change both together.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve

serves every deployment against a running Prefect server until Ctrl-C; `crmbooks up` does the
same after starting the server (and the emulators when nothing is connected).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from crmbooks.schedules import TAG

TIMEZONE = "UTC"


def every_two_hours(minute: int) -> str:
    """Every two hours in UTC, `minute` past the hour (a cron, so runs are clock-aligned;
    an `interval` would be anchored at deploy time and first run two hours later)."""
    return f"{minute} */2 * * *"


#: The modules start ten minutes apart, in dependency order: each paces its Books calls under
#: the organization's 100 requests a minute on its own, so runs started together would add up
#: past it; and the transactions and deal-trigger catch-ups run after the records they need.
STAGGER = {"customers": 0, "vendors": 10, "items": 20, "transactions": 30, "deal-triggers": 40}
#: Two runs of one deployment never overlap: a run started while another is going is
#: Cancelled ("Deployment concurrency limit reached"), the next schedule picks the work up.
ONE_AT_A_TIME = {"limit": 1, "collision_strategy": "CANCEL_NEW"}
#: The process work pool of prefect.yaml (`prefect work-pool create crmbooks --type process`).
WORK_POOL = "crmbooks"


#: Every deployment carries exactly one of these tags, so the UI's deployments list (filtered
#: by tag) keeps the syncs, the operator's record actions, the settings actions and the
#: destructive ones apart.
GROUPS = {
    "sync": "syncs records: on a schedule, or now for chosen modules",
    "operator": "acts on single records: retry failed ones, refresh one, import one",
    "admin": "changes settings: pause, resume, edit, enable, list linked records",
    "destructive": "removes data: disable stops syncing and removes from the CRM what "
                   "crmbooks put there for transactions and figures",
}


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: `flow name/name` in Prefect, e.g. sync-customers/customers."""

    name: str
    entrypoint: str  # "path/to/file.py:function", relative to the repository root
    cron: str | None  # None: run on demand only
    tags: tuple[str, ...]
    description: str  # shown on the deployment's page and above its run form
    parameters: dict = field(default_factory=dict)

    @property
    def module_path(self) -> str:
        """The importable module of the entrypoint, e.g. flows.customers."""
        return self.entrypoint.split(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def group(self) -> str:
        """The one group tag of GROUPS the deployment carries."""
        [group] = [t for t in self.tags if t in GROUPS]
        return group

    def load_flow(self):
        """Import the entrypoint's flow object."""
        return getattr(importlib.import_module(self.module_path), self.entrypoint.split(":")[1])


def _scheduled(name: str, entrypoint: str, what: str) -> DeploymentSpec:
    """A module's sync every two hours (live, the primary organization)."""
    return DeploymentSpec(
        name, entrypoint, every_two_hours(STAGGER[name]), (TAG, "sync", "scheduled", name),
        f"Sync {what} between Zoho CRM and Zoho Books every two hours (UTC, "
        f"{STAGGER[name]} minutes past). Run it by hand for a sync now; dry_run only plans.",
        {"dry_run": False})


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    _scheduled("customers", "flows/customers.py:sync_customers", "customers"),
    _scheduled("vendors", "flows/vendors.py:sync_vendors", "vendors"),
    _scheduled("items", "flows/items.py:sync_items", "items (Books items, CRM products)"),
    # Transactions and deal triggers: events start runs within seconds (`crmbooks webhook`);
    # these are the catch-ups over every record changed since their cursors.
    _scheduled("transactions", "flows/transactions.py:sync_transactions",
               "transactions (catch-up of what events did not bring)"),
    _scheduled("deal-triggers", "flows/deal_triggers.py:sync_deal_triggers",
               "deal triggers (catch-up of what events did not bring)"),
    DeploymentSpec("on-demand", "flows/operations.py:sync_now", None, (TAG, "sync", "on-demand"),
                   "Sync now: the chosen modules (or all: customers, vendors, items, "
                   "transactions, deal triggers) in dependency order, one child run each; a "
                   "module turned off is skipped."),
    # Operator actions on single records (retry failed records, refresh one from the CRM,
    # import one never imported), run from the UI with parameters.
    DeploymentSpec("retry", "flows/records.py:retry_failed_records", None,
                   (TAG, "on-demand", "operator"),
                   "Retry failed records, after fixing them at their source: those of a run, "
                   "of a module, or given record keys."),
    DeploymentSpec("fetch-one", "flows/records.py:fetch_one", None,
                   (TAG, "on-demand", "operator"),
                   "Refresh one customer or vendor from the CRM now, by CRM id or exact name."),
    DeploymentSpec("import", "flows/records.py:import_from_crm", None,
                   (TAG, "on-demand", "operator"),
                   "Import a CRM record never imported, found by name."),
    # Settings actions (pause/resume, edit, enable, linked records), as their `crmbooks`
    # commands do; disable, which deletes data, is a group of its own.
    DeploymentSpec("pause", "flows/admin.py:pause_syncs", None, (TAG, "on-demand", "admin"),
                   "Pause every sync (scheduled and manual); a run already going completes."),
    DeploymentSpec("resume", "flows/admin.py:resume_syncs", None, (TAG, "on-demand", "admin"),
                   "Resume the syncs after a pause."),
    DeploymentSpec("edit", "flows/admin.py:edit_settings", None, (TAG, "on-demand", "admin"),
                   "Change a module's settings: a new version, applied from the next run."),
    DeploymentSpec("disable", "flows/admin.py:disable_integration", None,
                   (TAG, "on-demand", "destructive"),
                   "DESTRUCTIVE: stop all syncing and remove from the CRM what crmbooks put "
                   "there: the transaction records it created from Books (and so their deal "
                   "relations), the Books id, number and address on CRM-made ones, Books "
                   "quotes on deals, the customers' figures; Books is not touched. `enable` "
                   "and the next runs bring them back, once."),
    DeploymentSpec("enable", "flows/admin.py:enable_integration", None,
                   (TAG, "on-demand", "admin"), "Sync again after a disable; the next runs "
                   "bring back what it removed from the CRM."),
    DeploymentSpec("linked", "flows/admin.py:linked_records", None, (TAG, "on-demand", "admin"),
                   "List the customers or vendors linked to the CRM, as a table artifact."),
)


def build_deployments(paused: bool = False, specs=DEPLOYMENTS) -> list:
    """`flow.to_deployment(...)` for every spec: same names, schedules, limits and tags.

    `paused` starts the schedules paused (`crmbooks pause` in effect). Entrypoints are module
    paths, so the runs load the flows wherever crmbooks is installed, whatever the working
    directory.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    deployments = []
    for spec in specs:
        deployments.append(spec.load_flow().to_deployment(
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=TIMEZONE)] if spec.cron else None,
            concurrency_limit=ConcurrencyLimitConfig(**ONE_AT_A_TIME),
            parameters=dict(spec.parameters),
            tags=list(spec.tags),
            description=spec.description,
            paused=paused,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ))
    return deployments


def serve_all(paused: bool = False, pause_on_shutdown: bool = True, limit: int | None = None,
              print_starting_message: bool = True) -> None:
    """Register every deployment and run their flow runs (each in a subprocess) until stopped.

    On Ctrl-C or SIGTERM, runs in progress are cancelled and, with `pause_on_shutdown`, the
    schedules are paused, so no run piles up while nothing serves them; the next `serve_all`
    un-pauses them (unless `paused`).
    """
    from prefect import serve

    serve(*build_deployments(paused=paused), pause_on_shutdown=pause_on_shutdown, limit=limit,
          print_starting_message=print_starting_message)


if __name__ == "__main__":
    serve_all()
