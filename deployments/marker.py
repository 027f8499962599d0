"""The marker a running `crmbooks up` leaves in CRMBOOKS_HOME: which Prefect API it serves.

`up` writes it once everything is started and removes it when it stops; `crmbooks pause` and
`resume` (deployments/control.py) read it to reach the server whose schedules they change.
Kept apart from both so that neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path


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
