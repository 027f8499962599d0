"""The Prefect schedules of crmbooks' deployments, paused and resumed with the integration.

`crmbooks pause`/`resume` (and the pause-syncs / resume-syncs flows) set the connection's
paused flag, which every run checks, and also pause or resume the schedules of every
deployment tagged `crmbooks` on the Prefect API crmbooks serves: the one a running
`crmbooks up` recorded in CRMBOOKS_HOME/up.json (its marker), else PREFECT_API_URL
(environment or Prefect profile, the work-pool path). When none is configured or it does not
answer, nothing else happens: the paused flag alone already makes every run refuse, and
`crmbooks up` applies the flag to the schedules when it starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from crmbooks.store.engine import crmbooks_home

#: The tag of every crmbooks deployment (schedules are paused and resumed by it).
TAG = "crmbooks"


def marker_path(home: Path) -> Path:
    """Where a running `up` says which Prefect API it serves (read by pause/resume)."""
    return home / "up.json"


def write_marker(home: Path, *, api_url: str, ui_url: str, pid: int,
                 server_pid: int | None) -> Path:
    """Record the Prefect API and UI a running `up` serves, and its process ids; returns the
    marker's path (the caller removes it on the way out)."""
    marker = marker_path(home)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"api_url": api_url, "ui_url": ui_url, "pid": pid,
                                  "server_pid": server_pid}))
    return marker


def marker_api_url(home: Path) -> str | None:
    """The Prefect API a running `up` recorded, or None (no marker, or one that is unreadable)."""
    marker = marker_path(home)
    if marker.exists():
        try:
            return json.loads(marker.read_text())["api_url"]
        except (OSError, ValueError, KeyError):
            pass
    return None


def prefect_api_url() -> str | None:
    """The Prefect API crmbooks' deployments live on, if one is configured."""
    recorded = marker_api_url(crmbooks_home())
    if recorded is not None:
        return recorded
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    return get_current_settings().api.url  # a Prefect profile's PREFECT_API_URL, or None


def set_schedules_paused(paused: bool, timeout: float = 3.0) -> str:
    """Pause (or resume) every deployment tagged `crmbooks`; returns a sentence for the operator.

    Never raises for an absent or unreachable server: the sentence says what happened.
    """
    url = prefect_api_url()
    if not url:
        return "No Prefect server configured: no deployment schedule to change."
    try:
        healthy = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        healthy = False
    if not healthy:
        return f"No Prefect server answers at {url}: deployment schedules unchanged."
    try:
        names = _apply(url, paused)
    except Exception as exc:  # the flag is set already; the schedules are a second line
        return f"Could not change the deployment schedules at {url}: {exc}"
    verb = "Paused" if paused else "Resumed"
    if not names:
        return f"No crmbooks deployment on the Prefect server at {url}."
    return f"{verb} the schedules of {len(names)} deployment(s) at {url}: {', '.join(names)}."


def _apply(url: str, paused: bool) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}), \
            get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[TAG])))
        names = []
        for deployment in found:
            if paused:
                client.pause_deployment(deployment.id)
            else:
                client.resume_deployment(deployment.id)
            names.append(deployment.name)
        return sorted(names)
