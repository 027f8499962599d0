"""The cost of a command around its flow: a quiet `crmbooks sync vendors`, timed as a user runs it.

The emulator runs as a subprocess with no limits; a fresh crmbooks home is connected with
`crmbooks connect` (so the Books pace is real Zoho's); a first sync imports the vendors. Then
the background Prefect server is stopped and quiet syncs (nothing changed) run one after the
other, each `crmbooks sync vendors` in a process of its own with no Prefect API configured:
the first starts the background server, the later ones reuse it. Per call: the command's wall
time, the flow run's own time (its start to end on the Prefect server) and the crmbooks run's
(its history row), and the ratio of the wall time to the flow's. `--baseline` adds what a
quiet run costs through Prefect's ephemeral server (started in the process, as every command
did before): one call.

    .venv/bin/python bench/bench_cli.py [--calls 5] [--baseline] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BOOKS_ORG,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH,
    machine,
    raise_limits,
    subprocess_emulator,
    table,
)

CRMBOOKS = Path(sys.executable).parent / "crmbooks"


def command(args: list[str], env: dict, cwd: Path) -> float:
    """Run `crmbooks ARGS`; its wall seconds (SystemExit with its output if it failed)."""
    t0 = time.perf_counter()
    done = subprocess.run([str(CRMBOOKS), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"crmbooks {' '.join(args)} exited {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
    return seconds


def last_run(home: Path) -> tuple[float, str | None]:
    """(seconds of the newest vendors run in the history, its flow run id)."""
    code = ("import json; from crmbooks.runtime import open_store; "
            "r = open_store().list_runs('vendors', limit=1)[0]; "
            "print(json.dumps([(r.finished_at - r.started_at).total_seconds(), "
            "r.flow_run_id]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "CRMBOOKS_HOME": str(home)}, check=True)
    import json

    seconds, flow_run_id = json.loads(out.stdout)
    return seconds, flow_run_id


def flow_seconds(api_url: str, flow_run_id: str | None) -> float | None:
    """The flow run's start to end on the Prefect server (what the UI shows as its time)."""
    from datetime import datetime

    if not flow_run_id:
        return None
    run = httpx.get(f"{api_url}/flow_runs/{flow_run_id}", timeout=10).json()
    if not run.get("start_time") or not run.get("end_time"):
        return None
    return (datetime.fromisoformat(run["end_time"]) -
            datetime.fromisoformat(run["start_time"])).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="quiet calls (first included)")
    parser.add_argument("--baseline", action="store_true",
                        help="also one quiet run through Prefect's ephemeral server")
    parser.add_argument("--markdown", help="write the table as Markdown to this file")
    args = parser.parse_args()
    from deployments.prefect_server import read_record, stop_background

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp, \
            subprocess_emulator(["--seed", "7"]) as base_url:
        raise_limits(base_url)
        home, prefect_home, cwd = Path(tmp) / "home", Path(tmp) / "prefect", Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({"CRMBOOKS_HOME": str(home), "PREFECT_HOME": str(prefect_home),
                    "CRMBOOKS_CLIENT_SECRET": CLIENT_SECRET,
                    "CRMBOOKS_REFRESH_TOKEN": REFRESH, "NO_COLOR": "1"})
        rows = []
        try:
            command(["connect", "--api-url", base_url, "--accounts-url", base_url,
                     "--client-id", CLIENT_ID, "--books-org", BOOKS_ORG], env, cwd)
            command(["sync", "vendors"], env, cwd)  # the import: not quiet, not timed
            stop_background(prefect_home)
            for call in range(1, args.calls + 1):
                wall = command(["sync", "vendors"], env, cwd)
                run_s, flow_run_id = last_run(home)
                api = read_record(prefect_home)["api_url"]
                flow_s = flow_seconds(api, flow_run_id)
                rows.append({"call": call, "server": "started" if call == 1 else "reused",
                             "wall s": round(wall, 2),
                             "flow run s": round(flow_s, 2) if flow_s else "-",
                             "crmbooks run s": round(run_s, 2),
                             "wall / flow": round(wall / flow_s, 2) if flow_s else "-"})
        finally:
            stop_background(prefect_home)
        if args.baseline:
            code = "from flows.vendors import sync_vendors; sync_vendors()"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1],
                           check=True, capture_output=True, timeout=600)
            rows.append({"call": "ephemeral", "server": "ephemeral (before)",
                         "wall s": round(time.perf_counter() - t0, 2),
                         "crmbooks run s": round(last_run(home)[0], 2)})
    later = [r["wall s"] for r in rows if r["server"] == "reused"]
    print(f"machine: {machine()}; load average: {os.getloadavg()}")
    text = table(rows, markdown=False, text_columns=("server",))
    print(text)
    if later:
        print(f"second and later calls: median {statistics.median(later):.2f} s wall")
    if args.markdown:
        Path(args.markdown).write_text(table(rows, markdown=True, text_columns=("server",)))


if __name__ == "__main__":
    main()
