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


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: `flow name/name` in Prefect, e.g. sync-customers/customers."""

    name: str
    entrypoint: str  # "path/to/file.py:function", relative to the repository root
    cron: str | None  # None: run on demand only
    tags: tuple[str, ...]
    parameters: dict = field(default_factory=dict)

    @property
    def module_path(self) -> str:
        """The importable module of the entrypoint, e.g. flows.customers."""
        return self.entrypoint.split(":")[0].removesuffix(".py").replace("/", ".")

    def load_flow(self):
        """Import the entrypoint's flow object."""
        return getattr(importlib.import_module(self.module_path), self.entrypoint.split(":")[1])


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec("customers", "flows/customers.py:sync_customers",
                   every_two_hours(STAGGER["customers"]),
                   (TAG, "scheduled", "customers"), {"dry_run": False}),
    DeploymentSpec("vendors", "flows/vendors.py:sync_vendors", every_two_hours(STAGGER["vendors"]),
                   (TAG, "scheduled", "vendors"), {"dry_run": False}),
    DeploymentSpec("items", "flows/items.py:sync_items", every_two_hours(STAGGER["items"]),
                   (TAG, "scheduled", "items"), {"dry_run": False}),
    # Transactions and deal triggers: events start runs within seconds (`crmbooks webhook`);
    # these are the catch-ups over every record changed since their cursors.
    DeploymentSpec("transactions", "flows/transactions.py:sync_transactions",
                   every_two_hours(STAGGER["transactions"]),
                   (TAG, "scheduled", "transactions"), {"dry_run": False}),
    DeploymentSpec("deal-triggers", "flows/deal_triggers.py:sync_deal_triggers",
                   every_two_hours(STAGGER["deal-triggers"]), (TAG, "scheduled", "deal-triggers"),
                   {"dry_run": False}),
    DeploymentSpec("on-demand", "flows/operations.py:sync_now", None,
                   (TAG, "on-demand"), {}),
    # Operator actions on single records (retry failed records, refresh one from the CRM,
    # import one never imported), run from the UI with parameters.
    DeploymentSpec("retry", "flows/records.py:retry_failed_records", None,
                   (TAG, "on-demand", "operator"), {}),
    DeploymentSpec("fetch-one", "flows/records.py:fetch_one", None,
                   (TAG, "on-demand", "operator"), {}),
    DeploymentSpec("import", "flows/records.py:import_from_crm", None,
                   (TAG, "on-demand", "operator"), {}),
    # Settings actions (pause/resume, edit, disable/enable, linked records), as their
    # `crmbooks` commands do.
    *(DeploymentSpec(name, f"flows/admin.py:{function}", None, (TAG, "on-demand", "admin"))
      for name, function in (("pause", "pause_syncs"), ("resume", "resume_syncs"),
                             ("edit", "edit_settings"), ("disable", "disable_integration"),
                             ("enable", "enable_integration"), ("linked", "linked_records"))),
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
